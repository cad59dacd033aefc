//! The live view: which headsets are touring now, pushed to browsers as Server-Sent Events, and
//! the headsets registry staff name their headsets in.
//!
//! - `GET /api/v1/live` (staff): the event stream (`stream.rs`);
//! - `GET /api/v1/live/state` (staff): the snapshot the page refetches on each event (`snapshot.rs`);
//! - `GET /api/v1/headsets` (staff), `PATCH /api/v1/headsets/{device_key}` (admin): `headsets.rs`.

mod headsets;
mod snapshot;
mod stream;

use axum::routing::{get, patch};
use axum::Router;
use chrono::{LocalResult, TimeZone};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// A headset with no open tour counts as idle (switched on, between buyers) this long after its
/// last upload; after that it is offline.
pub const IDLE_FOR_MS: i64 = 5 * 60_000;

#[derive(Clone)]
pub struct LiveState {
    pub store: Store,
    /// The site's time zone: "today" is the showroom's day.
    pub tz: chrono_tz::Tz,
    /// Cancelled when the appliance starts shutting down: every event stream ends, so open
    /// browsers do not hold up the ordered shutdown.
    pub shutdown: CancellationToken,
}

pub fn router<S>() -> Router<S>
where
    LiveState: axum::extract::FromRef<S>,
    crate::auth::AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/live", get(stream::live))
        .route("/api/v1/live/state", get(snapshot::live_state))
        .route("/api/v1/headsets", get(headsets::list))
        .route("/api/v1/headsets/{device_key}", patch(headsets::rename))
}

/// What a headset is doing, as the live view and the registry show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadsetState {
    /// A tour is open.
    Touring,
    /// No open tour, seen within the last five minutes.
    Idle,
    Offline,
}

impl HeadsetState {
    pub fn of(touring: bool, last_seen_at: i64, now: i64) -> HeadsetState {
        if touring {
            HeadsetState::Touring
        } else if now - last_seen_at < IDLE_FOR_MS {
            HeadsetState::Idle
        } else {
            HeadsetState::Offline
        }
    }
}

/// A time as the dashboard's JSON gives it: ISO 8601 UTC with milliseconds and `Z`.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// The start (unix ms) of the site's day that contains `now`: local midnight, or the first
/// moment of the day when a clock change skips midnight.
pub fn day_start(tz: chrono_tz::Tz, now: i64) -> i64 {
    let Some(utc) = chrono::DateTime::from_timestamp_millis(now) else {
        return now;
    };
    let mut local = utc
        .with_timezone(&tz)
        .date_naive()
        .and_time(chrono::NaiveTime::MIN);
    for _ in 0..8 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.timestamp_millis(),
            LocalResult::None => local += chrono::Duration::minutes(30),
        }
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_milliseconds_and_z() {
        assert_eq!(iso(1_796_404_098_123), "2026-12-04T17:08:18.123Z");
    }

    #[test]
    fn the_day_starts_at_local_midnight() {
        let tz: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        // 2026-12-04T17:08:18Z is 22:38 in India; the day began at 2026-12-03T18:30:00Z.
        assert_eq!(
            iso(day_start(tz, 1_796_404_098_123)),
            "2026-12-03T18:30:00.000Z"
        );
        // Sao Paulo skipped midnight on 2018-11-04: the day began at 01:00 local (03:00 UTC).
        let tz: chrono_tz::Tz = "America/Sao_Paulo".parse().unwrap();
        let noon = chrono::DateTime::parse_from_rfc3339("2018-11-04T15:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(iso(day_start(tz, noon)), "2018-11-04T03:00:00.000Z");
    }

    #[test]
    fn states_follow_the_tour_and_the_last_upload() {
        assert_eq!(
            HeadsetState::of(true, 0, IDLE_FOR_MS * 10),
            HeadsetState::Touring
        );
        assert_eq!(
            HeadsetState::of(false, 1_000, 1_000 + IDLE_FOR_MS - 1),
            HeadsetState::Idle
        );
        assert_eq!(
            HeadsetState::of(false, 1_000, 1_000 + IDLE_FOR_MS),
            HeadsetState::Offline
        );
    }
}
