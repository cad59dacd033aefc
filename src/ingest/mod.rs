//! The headset API under `/api/v1/unreal`, compatible with every Nexero headset build.
//!
//! Each handler reads the raw body, parses it (pure code in `payload` and `tracking`), and hands
//! the upload to the store, which keeps the raw body in the inbox in the same transaction as what
//! was parsed from it — a body we cannot understand is kept too. The answer comes after the commit.

pub mod parse;
pub mod payload;
pub mod timefmt;
pub mod tracking;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::{AppError, Result};
use crate::model::{Action, Applied, DwellInput, NewEvent, TourInfo, UploadMeta};
use crate::store::now_ms;

/// Headers a headset may use to identify itself; without one, its address is its identity.
const DEVICE_HEADERS: &[&str] = &["x-device-key", "x-device-id"];
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", post(universal))
        .route("/sessions", post(universal))
        .route("/event", post(flexible_event))
        .route("/tracking/event", post(tracking_event))
        .route("/events", post(tracking_event))
        .route("/tracking/batch", post(tracking_batch))
        .route("/batch", post(tracking_batch))
        .route("/session/start", post(session_start))
        .route("/session/end", post(session_end))
        .route("/session/{id}/status", get(session_status))
        .route("/session/{id}/heartbeat", post(heartbeat))
        .route("/heartbeat/{id}", post(heartbeat))
}

/// An upload read off the wire, before parsing.
struct Received {
    meta: UploadMeta,
}

/// Reads the body within the configured limit; an oversized body is refused with 413 and its
/// start is kept in the inbox like any other refused upload.
impl FromRequest<AppState> for Received {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let headers = &parts.headers;
        let header_text =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let client_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let device_key = DEVICE_HEADERS
            .iter()
            .find_map(|name| header_text(name))
            .map(|key| key.chars().take(128).collect())
            .or_else(|| client_addr.map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let meta = UploadMeta {
            received_at: now_ms(),
            endpoint: format!("{} {}", parts.method, parts.uri.path()),
            client_addr: client_addr.map(|a| a.to_string()).unwrap_or_default(),
            device_key,
            content_type: header_text(header::CONTENT_TYPE.as_str()).map(str::to_string),
            body: Vec::new(),
            idempotency_key: header_text(IDEMPOTENCY_HEADER).map(str::to_string),
            ok_status: 0,
        };
        let limit = state.settings.max_body_bytes;
        let declared = header_text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
        match read_body(body, declared, limit).await? {
            BodyRead::Within(body) => Ok(Received { meta: UploadMeta { body, ..meta } }),
            BodyRead::TooLarge { sample, size } => {
                let error = AppError::PayloadTooLarge { limit };
                let reason = format!("{error}: {size}; the first {} bytes are kept", sample.len());
                Err(refuse(state, UploadMeta { body: sample, ..meta }, error, reason).await)
            }
        }
    }
}

/// How far past the limit an oversized body is still read (and discarded) before the connection
/// is closed instead.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How much of an oversized body the inbox keeps: enough to see what sent it.
const OVERSIZED_SAMPLE: usize = 64 * 1024;

enum BodyRead {
    Within(Vec<u8>),
    /// `size` says how large it was, as far as it was read.
    TooLarge { sample: Vec<u8>, size: String },
}

/// Reads the body within `limit` bytes. An oversized body is read to its end (keeping its start),
/// so the client has finished sending when the 413 comes and reads it instead of a broken pipe.
async fn read_body(mut body: Body, declared: Option<usize>, limit: usize) -> Result<BodyRead> {
    if let Some(declared) = declared.filter(|n| *n > DRAIN_LIMIT) {
        return Ok(BodyRead::TooLarge { sample: Vec::new(), size: format!("Content-Length {declared}, not read") });
    }
    // Trust Content-Length for the first allocation only up to 1 MiB: it is the client's claim.
    let mut data = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20));
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| AppError::bad_request(format!("could not read the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        received += chunk.len();
        if received <= limit {
            data.extend_from_slice(&chunk);
        } else if received > DRAIN_LIMIT {
            data.truncate(OVERSIZED_SAMPLE);
            return Ok(BodyRead::TooLarge { sample: data, size: format!("over {DRAIN_LIMIT} bytes, not read to the end") });
        } else {
            // Past the limit: keep only the sample while draining the rest.
            let room = OVERSIZED_SAMPLE.saturating_sub(data.len());
            data.extend_from_slice(&chunk[..room.min(chunk.len())]);
            data.truncate(OVERSIZED_SAMPLE);
            data.shrink_to_fit();
        }
    }
    if received > limit {
        return Ok(BodyRead::TooLarge { sample: data, size: format!("{received} bytes sent") });
    }
    Ok(BodyRead::Within(data))
}

/// Stores the upload; a refused upload is kept in the inbox before its error is answered.
async fn store(
    state: &AppState,
    received: Received,
    ok_status: StatusCode,
    action: std::result::Result<Action, AppError>,
) -> Result<Applied> {
    let meta = UploadMeta { ok_status: ok_status.as_u16(), ..received.meta };
    match action {
        Ok(action) => Ok(state.store.apply(meta, action).await?),
        Err(error) => {
            let reason = error.summary();
            Err(refuse(state, meta, error, reason).await)
        }
    }
}

/// Keeps a refused upload in the inbox and gives back the error to answer (or the storage error,
/// when even the refusal could not be kept).
async fn refuse(state: &AppState, meta: UploadMeta, error: AppError, reason: String) -> AppError {
    let rejected = Action::Rejected { status: error.status().as_u16(), reason };
    match state.store.apply(meta, rejected).await {
        Ok(_) => error,
        Err(storage) => storage.into(),
    }
}

fn iso(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)))
        .unwrap_or(Value::Null)
}

fn seconds(ms: Option<i64>) -> Value {
    ms.map(|ms| json!(ms / 1000)).unwrap_or(Value::Null)
}

/// `POST /session` (+ `/sessions`): every generation of headset payload.
async fn universal(State(state): State<AppState>, received: Received) -> Result<Response> {
    let action = parse::universal(&received.meta.body, received.meta.idempotency_key.as_deref(), state.parse);
    let described = action.as_ref().ok().cloned();
    let applied = store(&state, received, StatusCode::CREATED, action).await?;
    Ok((StatusCode::CREATED, Json(universal_answer(&state, described, &applied))).into_response())
}

fn universal_answer(state: &AppState, action: Option<Action>, applied: &Applied) -> Value {
    let tour = applied.tour.as_ref();
    let mut answer = match action {
        Some(Action::Startup) => {
            return json!({"status": "ignored", "event_type": "empty_payload", "processed": false,
                          "message": "startup packet received"})
        }
        Some(Action::Summary(summary)) => json!({
            "status": "success", "data_type": "session", "event_type": "session_summary",
            "message": "Session data validated and processed", "processed": true,
            "duration_seconds": seconds(tour.and_then(|t| t.duration_ms)),
            "started_at": tour.map(|t| iso(t.started_at)),
            "ended_at": tour.and_then(|t| t.ended_at).map(iso),
            "warnings": summary.warnings,
        }),
        Some(Action::Events { events, .. }) => event_answer(state, &events[0], applied),
        _ => json!({"status": "success", "processed": true}),
    };
    answer["session_id"] = json!(tour.map(|t| &t.uuid));
    answer["external_session_id"] = json!(tour.and_then(|t| t.external_id.as_ref()));
    answer["received_at"] = iso(now_ms());
    answer
}

/// The answer for one headset event, with the fields each headset generation reads.
fn event_answer(state: &AppState, event: &NewEvent, applied: &Applied) -> Value {
    use crate::model::EventKind::*;
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
    if let Some(dwell) = &event.dwell {
        let (text, ms) = match dwell {
            DwellInput::Duration { text, parsed } => (text, parsed.as_ref().ok().copied().filter(|ms| *ms <= state.max_dwell_ms())),
            DwellInput::EndedAt { text, .. } => (text, None),
        };
        answer["duration"] = json!(text);
        answer["duration_seconds"] = seconds(ms);
        answer["duration_valid"] = json!(ms.is_some() || matches!(dwell, DwellInput::EndedAt { .. }));
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

/// `POST /event`: a flexible event; `event_type` is required, every other key is kept.
async fn flexible_event(State(state): State<AppState>, received: Received) -> Result<Response> {
    let action = parse::flexible(&received.meta.body, received.meta.idempotency_key.as_deref(), state.parse);
    let event_type = match &action {
        Ok(Action::Events { events, .. }) => events[0].event_type.clone(),
        _ => String::new(),
    };
    let applied = store(&state, received, StatusCode::CREATED, action).await?;
    let tour = applied.tour.as_ref();
    Ok((
        StatusCode::CREATED,
        Json(json!({"status": "received", "event_type": event_type, "timestamp": iso(now_ms()),
                    "session_id": tour.map(|t| &t.uuid), "processed": applied.stored + applied.duplicates,
                    "duplicate": applied.duplicates > 0})),
    )
        .into_response())
}

/// `POST /tracking/event` (+ `/events`): one structured tracking event.
async fn tracking_event(State(state): State<AppState>, received: Received) -> Result<Response> {
    let action = parse::tracking_event(&received.meta.body, state.parse);
    let applied = store(&state, received, StatusCode::ACCEPTED, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "received", "timestamp": iso(now_ms()),
                    "session_id": applied.tour.as_ref().map(|t| &t.uuid),
                    "processed": applied.stored + applied.duplicates, "duplicate": applied.duplicates > 0})),
    )
        .into_response())
}

/// `POST /tracking/batch` (+ `/batch`): many events; valid ones are stored, invalid ones are
/// counted as failed with their field paths (the whole body stays in the inbox).
async fn tracking_batch(State(state): State<AppState>, received: Received) -> Result<Response> {
    let (action, errors, total) = match parse::tracking_batch(&received.meta.body, state.parse) {
        Ok(batch) => (Ok(batch.action), batch.errors, batch.total),
        Err(e) => (Err(e), vec![], 0),
    };
    let applied = store(&state, received, StatusCode::ACCEPTED, action).await?;
    let processed = applied.stored + applied.duplicates;
    let success_rate = if total == 0 { 0.0 } else { (processed as f64 * 10000.0 / total as f64).round() / 100.0 };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "received", "total_events": total, "processed": processed, "failed": errors.len(),
                    "stored": applied.stored, "duplicates": applied.duplicates, "success_rate": success_rate,
                    "errors": errors, "session_id": applied.tour.as_ref().map(|t| &t.uuid),
                    "timestamp": iso(now_ms())})),
    )
        .into_response())
}

/// The tour as the boundary endpoints report it.
fn tour_answer(tour: Option<&TourInfo>) -> Value {
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

/// `POST /session/start`: opens a tour explicitly (documented upstream, never implemented there).
async fn session_start(State(state): State<AppState>, received: Received) -> Result<Response> {
    let action = parse::session_start(&received.meta.body, state.parse);
    let applied = store(&state, received, StatusCode::CREATED, action).await?;
    Ok((StatusCode::CREATED, Json(tour_answer(applied.tour.as_ref()))).into_response())
}

/// `POST /session/end`: closes the named tour like a summary would.
async fn session_end(State(state): State<AppState>, received: Received) -> Result<Response> {
    let action = parse::session_end(&received.meta.body, state.parse);
    let applied = store(&state, received, StatusCode::OK, action).await?;
    Ok(Json(tour_answer(applied.tour.as_ref())).into_response())
}

/// `GET /session/{id}/status`: by our UUID or the headset's own id; 200 `not_found` otherwise,
/// as the old backend answered.
async fn session_status(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let now = now_ms();
    let Some(s) = state.store.session_status(id.clone()).await? else {
        return Ok(Json(json!({"session_id": id, "status": "not_found", "started_at": null, "duration_so_far": null})).into_response());
    };
    let mut answer = json!({
        "session_id": id, "uuid": s.uuid, "external_id": s.external_id, "status": s.status,
        "started_at": iso(s.started_at), "last_event_at": iso(s.last_event_at), "event_count": s.event_count,
        "customer_id": s.customer_id, "property_id": s.property_id,
        "duration_so_far": if s.status == "active" { json!((now - s.started_at).max(0) / 1000) } else { Value::Null },
    });
    if let Some(ended) = s.ended_at {
        answer["ended_at"] = iso(ended);
        answer["duration_seconds"] = seconds(s.duration_ms);
    }
    Ok(Json(answer).into_response())
}

/// `POST /session/{id}/heartbeat` (+ `/heartbeat/{id}`): keeps an active tour from timing out.
async fn heartbeat(State(state): State<AppState>, Path(id): Path<String>, received: Received) -> Result<Response> {
    let applied = store(&state, received, StatusCode::OK, Ok(Action::Heartbeat { session_ref: id.clone() })).await?;
    if applied.session_missing {
        return Err(AppError::NotFound(format!("Session not found: {id}")));
    }
    Ok(Json(json!({"status": "alive", "session_id": id, "timestamp": iso(now_ms())})).into_response())
}
