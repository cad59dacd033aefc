//! `GET /api/v1/live/state`: the headsets seen in the last hour and what each is doing now.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{iso, HeadsetState, LiveState};
use crate::auth::Staff;
use crate::error::Result;
use crate::store::live::{self, LiveHeadset};
use crate::store::now_ms;

/// How far back a headset counts as in use for the live view.
const RECENT_MS: i64 = 3_600_000;

pub(super) async fn live_state(
    State(state): State<LiveState>,
    Staff(_): Staff,
) -> Result<Json<Value>> {
    let now = now_ms();
    let headsets = state
        .store
        .read(move |c| live::headsets_since(c, now - RECENT_MS))
        .await?;
    let headsets: Vec<Value> = headsets.into_iter().map(|h| headset(h, now)).collect();
    Ok(Json(
        json!({"success": true, "data": {"generated_at": iso(now), "headsets": headsets}}),
    ))
}

fn headset(h: LiveHeadset, now: i64) -> Value {
    let state = HeadsetState::of(h.tour.is_some(), h.last_seen_at, now);
    let tour = h.tour.map(|t| {
        json!({
            "id": t.uuid,
            "external_id": t.external_id,
            "started_at": iso(t.started_at),
            "seconds_so_far": (now - t.started_at).max(0) / 1000,
            "event_count": t.event_count,
            "current_view": t.current_view,
            "current_poi": t.current_poi,
            "current_zone": t.current_zone,
            "last_event_at": iso(t.last_event_at),
        })
    });
    json!({
        "device_key": h.device_key,
        "name": h.name,
        "state": state,
        "last_seen_at": iso(h.last_seen_at),
        "tour": tour,
    })
}
