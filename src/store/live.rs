//! What the live view hears and reads: the updates the store publishes after each commit (an
//! upload, a tour that ended) and the snapshot of the headsets in use now.
//!
//! The writer thread only notes what a request did ([`Notes`]); [`super::Store`] publishes after
//! the writer has answered, i.e. after the commit, so a browser never hears of a write that was
//! rolled back.

use rusqlite::{params, Connection};
use tokio::sync::broadcast;

use super::StoreError;
use crate::model::Applied;

/// Updates a slow browser may fall behind by before it is told to refetch (`resync`).
pub const LIVE_CAPACITY: usize = 1024;

/// One thing that happened, published after its commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveUpdate {
    /// An upload was stored (and answered 2xx).
    Upload {
        device_key: String,
        headset_name: Option<String>,
        tour: Option<String>,
        at: i64,
        events_stored: usize,
    },
    /// A tour ended: its summary came, it went idle, or the headset started again.
    TourEnded {
        device_key: String,
        headset_name: Option<String>,
        tour: String,
        status: &'static str,
        ended_at: i64,
    },
}

/// A tour that a write ended.
#[derive(Clone, Debug)]
pub(crate) struct EndedTour {
    pub device_key: String,
    pub headset_name: Option<String>,
    pub tour: String,
    pub status: &'static str,
    pub ended_at: i64,
}

/// What one writer request did that the live view hears of; taken by the request's own closure
/// once it succeeded, dropped otherwise.
#[derive(Default, Debug)]
pub(crate) struct Notes {
    /// The upload's headset, when it was recorded as seen: its name (`None` when unnamed).
    pub headset: Option<Option<String>>,
    pub ended: Vec<EndedTour>,
}

pub(crate) fn channel() -> broadcast::Sender<LiveUpdate> {
    broadcast::channel(LIVE_CAPACITY).0
}

/// Publishes what a committed upload did. Nobody listening is no error.
pub(crate) fn publish_upload(
    live: &broadcast::Sender<LiveUpdate>,
    device_key: String,
    at: i64,
    applied: &Applied,
    notes: Notes,
) {
    if live.receiver_count() == 0 {
        return;
    }
    if let (Some(headset_name), None) = (notes.headset, &applied.refusal) {
        let tour = applied.tour.as_ref().map(|t| t.uuid.clone());
        let _ = live.send(LiveUpdate::Upload {
            device_key,
            headset_name,
            tour,
            at,
            events_stored: applied.stored,
        });
    }
    publish_ended(live, notes.ended);
}

/// Publishes the tours a committed write ended.
pub(crate) fn publish_ended(live: &broadcast::Sender<LiveUpdate>, ended: Vec<EndedTour>) {
    for EndedTour {
        device_key,
        headset_name,
        tour,
        status,
        ended_at,
    } in ended
    {
        let _ = live.send(LiveUpdate::TourEnded {
            device_key,
            headset_name,
            tour,
            status,
            ended_at,
        });
    }
}

/// A headset seen recently, with its open tour if it has one.
#[derive(Clone, Debug)]
pub struct LiveHeadset {
    pub device_key: String,
    pub name: Option<String>,
    pub last_seen_at: i64,
    pub tour: Option<LiveTour>,
}

/// A tour in progress, with what the buyer is looking at.
#[derive(Clone, Debug)]
pub struct LiveTour {
    pub uuid: String,
    pub external_id: Option<String>,
    pub started_at: i64,
    pub last_event_at: i64,
    pub event_count: i64,
    pub current_view: Option<String>,
    pub current_poi: Option<String>,
    pub current_zone: Option<String>,
}

/// The headsets seen since `since`, touring ones first, then by last seen. The headsets table is
/// small (one row a device); each one's open tour comes from the partial index of active tours
/// and its latest view, POI and zone from the tour's events in time order, read backwards.
pub fn headsets_since(conn: &Connection, since: i64) -> Result<Vec<LiveHeadset>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT h.device_key, h.name, h.last_seen_at, t.uuid, t.external_id, t.started_at, t.last_event_at, t.event_count,
             (SELECT e.name FROM events e WHERE e.session_id = t.id AND e.kind = 'view'
                  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1),
             (SELECT e.name FROM events e WHERE e.session_id = t.id AND e.kind = 'poi'
                  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1),
             (SELECT e.zone FROM events e WHERE e.session_id = t.id AND e.zone IS NOT NULL
                  ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1)
         FROM headsets h
         LEFT JOIN tour_sessions t ON t.id =
             (SELECT max(a.id) FROM tour_sessions a WHERE a.device_key = h.device_key AND a.status = 'active')
         WHERE h.last_seen_at >= ?1
         ORDER BY t.id IS NULL, h.last_seen_at DESC, h.device_key",
    )?;
    let rows = statement.query_map(params![since], |r| {
        let tour = match r.get::<_, Option<String>>(3)? {
            None => None,
            Some(uuid) => Some(LiveTour {
                uuid,
                external_id: r.get(4)?,
                started_at: r.get(5)?,
                last_event_at: r.get(6)?,
                event_count: r.get(7)?,
                current_view: r.get(8)?,
                current_poi: r.get(9)?,
                current_zone: r.get(10)?,
            }),
        };
        Ok(LiveHeadset {
            device_key: r.get(0)?,
            name: r.get(1)?,
            last_seen_at: r.get(2)?,
            tour,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
