//! The answer shapes of the old cloud backend, per endpoint, so every headset build and client
//! written for it keeps working. Built after the commit, from what was stored.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::parse::Parsed;
use crate::error::{AppError, FieldError, Result};
use crate::model::{Action, Applied, EventKind, Refusal, TourInfo};
use crate::model::{DwellInput, Endpoint};
use crate::store::now_ms;

/// What the answer needs of an upload, taken before the upload is handed to the store.
pub struct Gist {
    shape: Shape,
    event: Option<EventGist>,
    /// An event upload's parse warnings (a summary's come back from the store).
    warnings: Vec<String>,
    errors: Vec<FieldError>,
    total: usize,
}

enum Shape {
    Startup,
    Summary,
    Events,
    Other,
}

struct EventGist {
    kind: EventKind,
    event_type: String,
    name: Option<String>,
    zone: Option<String>,
    dwell_text: Option<String>,
}

impl Gist {
    /// Takes what the answer needs; the batch's failures move into the gist.
    pub fn of(parsed: &mut Parsed) -> Gist {
        let shape = match &parsed.action {
            Action::Startup => Shape::Startup,
            Action::Summary(_) => Shape::Summary,
            Action::Events { .. } => Shape::Events,
            _ => Shape::Other,
        };
        let event = match &parsed.action {
            Action::Events { events, .. } => events.first().map(|e| EventGist {
                kind: e.kind,
                event_type: e.event_type.clone(),
                name: e.name.clone(),
                zone: e.zone.clone(),
                dwell_text: e.dwell.as_ref().map(|d| match d {
                    DwellInput::Duration { text, .. } | DwellInput::EndedAt { text, .. } => text.clone(),
                }),
            }),
            _ => None,
        };
        let warnings = std::mem::take(&mut parsed.warnings);
        Gist { shape, event, warnings, errors: std::mem::take(&mut parsed.errors), total: parsed.total }
    }
}

pub fn iso(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)))
        .unwrap_or(Value::Null)
}

pub fn seconds(ms: Option<i64>) -> Value {
    ms.map(|ms| json!(ms / 1000)).unwrap_or(Value::Null)
}

/// The answer to a stored upload, with the endpoint's success status; the error for one the
/// store refused (kept in the inbox).
pub fn answer(endpoint: Endpoint, gist: Gist, applied: &Applied, route_id: Option<&str>) -> Result<Response> {
    match &applied.refusal {
        None => {}
        Some(Refusal::UnknownTour) => return Err(AppError::NotFound(format!("Session not found: {}", route_id.unwrap_or_default()))),
        Some(Refusal::Invalid(fields)) => {
            let errors = fields.iter().map(|(field, reason)| FieldError { field: field.clone(), reason: reason.clone() });
            return Err(AppError::Validation(errors.collect()));
        }
    }
    let tour = applied.tour.as_ref();
    let session_id = json!(tour.map(|t| &t.uuid));
    let processed = applied.stored + applied.duplicates;
    let body = match endpoint {
        Endpoint::Session | Endpoint::Sessions => universal(gist, applied),
        Endpoint::Event => json!({
            "status": "received", "event_type": gist.event.map(|e| e.event_type).unwrap_or_default(),
            "timestamp": iso(now_ms()), "session_id": session_id, "processed": processed,
            "duplicate": applied.duplicates > 0,
        }),
        Endpoint::TrackingEvent | Endpoint::Events => json!({
            "status": "received", "timestamp": iso(now_ms()), "session_id": session_id,
            "processed": processed, "duplicate": applied.duplicates > 0,
        }),
        Endpoint::TrackingBatch | Endpoint::Batch => {
            let success_rate =
                if gist.total == 0 { 0.0 } else { (processed as f64 * 10000.0 / gist.total as f64).round() / 100.0 };
            json!({
                "status": "received", "total_events": gist.total, "processed": processed, "failed": gist.errors.len(),
                "stored": applied.stored, "duplicates": applied.duplicates, "success_rate": success_rate,
                "errors": gist.errors, "session_id": session_id, "timestamp": iso(now_ms()),
            })
        }
        Endpoint::SessionStart | Endpoint::SessionEnd => boundary(tour),
        Endpoint::SessionHeartbeat | Endpoint::Heartbeat => {
            // "alive" while the tour is open; an ended tour says how it ended.
            let status = tour.map_or("alive", |t| if t.status == "active" { "alive" } else { t.status.as_str() });
            json!({"status": status, "session_id": route_id.unwrap_or_default(), "timestamp": iso(now_ms())})
        }
    };
    let status = StatusCode::from_u16(endpoint.success_status()).expect("a valid status");
    Ok((status, Json(body)).into_response())
}

/// `/session`: the shape each headset generation reads for what it sent.
fn universal(gist: Gist, applied: &Applied) -> Value {
    let tour = applied.tour.as_ref();
    let mut answer = match (gist.shape, gist.event) {
        (Shape::Startup, _) => {
            return json!({"status": "ignored", "event_type": "empty_payload", "processed": false,
                          "message": "startup packet received"})
        }
        (Shape::Summary, _) => json!({
            "status": "success", "data_type": "session", "event_type": "session_summary",
            "message": "Session data validated and processed", "processed": true,
            "duration_seconds": seconds(tour.and_then(|t| t.duration_ms)),
            "started_at": tour.map(|t| iso(t.started_at)),
            "ended_at": tour.and_then(|t| t.ended_at).map(iso),
            "warnings": applied.warnings,
        }),
        (Shape::Events, Some(event)) => {
            let mut answer = event_answer(event, applied);
            if !gist.warnings.is_empty() {
                answer["warnings"] = json!(gist.warnings);
            }
            answer
        }
        _ => json!({"status": "success", "processed": true}),
    };
    answer["session_id"] = json!(tour.map(|t| &t.uuid));
    answer["external_session_id"] = json!(tour.and_then(|t| t.external_id.as_ref()));
    answer["received_at"] = iso(now_ms());
    answer
}

/// One headset event, with the fields each headset generation reads; the dwell time as stored.
fn event_answer(event: EventGist, applied: &Applied) -> Value {
    use EventKind::*;
    let (data_type, event_type, message) = match event.kind {
        View => ("view", "view_mode", "View data validated and received"),
        Poi => ("poi", "poi", "POI data validated and received"),
        UnitSelection => ("unit_selection", "unit_selection", "Unit selection received"),
        Connect => ("connect", "connect", "Connect event received"),
        Custom | Tracking => ("event", event.event_type.as_str(), "Event data received"),
    };
    let mut answer = json!({
        "status": "success", "data_type": data_type, "event_type": event_type, "message": message,
        "processed": true, "duplicate": applied.duplicates > 0,
    });
    if let Some(text) = event.dwell_text {
        let verdict = applied.first_dwell;
        answer["duration"] = json!(text);
        answer["duration_seconds"] = seconds(verdict.and_then(|v| v.ms));
        answer["duration_valid"] = json!(verdict.is_some_and(|v| v.valid));
    }
    match event.kind {
        View => answer["view"] = json!(event.name),
        Poi => {
            answer["poi"] = json!(event.name);
            answer["parent"] = json!(event.zone);
        }
        _ => {}
    }
    answer
}

/// `/session/start` and `/session/end`: the tour as it stands.
fn boundary(tour: Option<&TourInfo>) -> Value {
    json!({
        "status": "success",
        "session_id": tour.map(|t| &t.uuid),
        "external_session_id": tour.and_then(|t| t.external_id.as_ref()),
        "started_at": tour.map(|t| iso(t.started_at)),
        "ended_at": tour.and_then(|t| t.ended_at).map(iso),
        "duration_seconds": seconds(tour.and_then(|t| t.duration_ms)),
        "received_at": iso(now_ms()),
    })
}
