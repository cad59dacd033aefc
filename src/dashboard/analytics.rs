//! The old API's view, POI and zone analytics, from the daily roll-ups. Unlike the old backend's
//! (empty: events were never attributed), they count every view, POI and zone event stored, and
//! average only dwell times that are real (flagged timers are left out rather than counted as 0).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::api::{ok, Answer};
use super::period::day;
use super::query::Params;
use super::shapes::{mean_seconds, or_unknown, whole_seconds};
use super::DashboardState;
use crate::auth::Staff;
use crate::error::Result;
use crate::store::dashboard::rollups::{self, Days, RankBy, Ranked, Ranking};

/// Ranks events of `kind` over the period asked for, most visited first; `name_param` and
/// `zone_param` name the parameters that narrow to one name or zone.
async fn ranked(
    state: &DashboardState,
    params: &Params,
    kind: &'static str,
    by_zone: bool,
    (name_param, zone_param): (Option<&str>, Option<&str>),
) -> Result<Vec<Ranked>> {
    let window = params.window(state.tz, "30d")?;
    let (from, to) = (day(window.from), day(window.to));
    let (property, name, zone) =
        (params.owned("property_id"), name_param.and_then(|p| params.owned(p)), zone_param.and_then(|p| params.owned(p)));
    Ok(state
        .store
        .read(move |c| {
            let days = Days { from: &from, to: &to, property: property.as_deref() };
            let ranking = Ranking {
                kind,
                by_zone,
                name: name.as_deref(),
                zone: zone.as_deref(),
                named_only: false,
                order: RankBy::Visits,
                limit: None,
            };
            rollups::ranked(c, days, &ranking)
        })
        .await?)
}

/// `GET /api/v1/analytics/views?period&view_name`
pub async fn views(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let rows = ranked(&state, &params, "view", false, (Some("view_name"), None)).await?;
    Ok(ok(rows
        .iter()
        .map(|r| {
            json!({"view_name": or_unknown(&r.name), "view_count": r.events, "avg_duration": mean_seconds(r.dwell_ms, r.dwell_events),
                   "total_duration": whole_seconds(r.dwell_ms)})
        })
        .collect()))
}

/// `GET /api/v1/analytics/poi?period&parent_zone`
pub async fn poi(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let rows = ranked(&state, &params, "poi", true, (None, Some("parent_zone"))).await?;
    Ok(ok(rows
        .iter()
        .map(|r| {
            json!({"poi_name": or_unknown(&r.name), "parent_zone": or_unknown(&r.zone), "total_visits": r.events,
                   "total_duration_seconds": whole_seconds(r.dwell_ms), "avg_duration_seconds": mean_seconds(r.dwell_ms, r.dwell_events)})
        })
        .collect()))
}

/// `GET /api/v1/analytics/zones?period&property_id`
pub async fn zones(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "30d")?;
    let (from, to) = (day(window.from), day(window.to));
    let property = params.owned("property_id");
    let rows = state.store.read(move |c| rollups::zones(c, Days { from: &from, to: &to, property: property.as_deref() })).await?;
    Ok(ok(rows
        .iter()
        .map(|z| {
            let average = if z.dwell_events == 0 { 0 } else { z.dwell_ms / z.dwell_events };
            json!({"zone_name": or_unknown(&z.zone), "total_visits": z.events, "total_dwell_time_ms": z.dwell_ms,
                   "avg_dwell_time_ms": average, "entry_count": z.entries, "exit_count": z.exits})
        })
        .collect()))
}
