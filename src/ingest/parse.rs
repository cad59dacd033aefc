//! From raw body to what it means, per endpoint. Pure and synchronous: the handlers use it on
//! arrival, and `nexero reprocess` uses it again on bodies kept in the inbox.

use serde_json::Value;

use super::payload::{self, ParseContext, Rejection};
use super::tracking;
use crate::error::{AppError, FieldError};
use crate::model::{Action, SessionSummary};

pub fn text(body: &[u8]) -> Result<&str, AppError> {
    std::str::from_utf8(body).map_err(|e| {
        AppError::bad_request(format!("the request body is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()))
    })
}

pub fn json(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_str(text(body)?).map_err(|e| AppError::bad_request(format!("malformed JSON: {e}")))
}

fn rejection(r: Rejection) -> AppError {
    AppError::BadRequest { message: r.reason, field: r.field, received_keys: r.received_keys }
}

fn required(field: &str) -> AppError {
    AppError::Validation(vec![FieldError { field: field.into(), reason: "field required".into() }])
}

/// `POST /session`: any generation of headset payload. An empty body is a startup packet too.
pub fn universal(body: &[u8], idempotency_key: Option<&str>, ctx: ParseContext) -> Result<Action, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Action::Startup);
    }
    payload::universal(json(body)?, ctx, idempotency_key).map_err(rejection)
}

/// `POST /event`: a flexible event; a missing `event_type` is a validation error (422).
pub fn flexible(body: &[u8], idempotency_key: Option<&str>, ctx: ParseContext) -> Result<Action, AppError> {
    payload::flexible(json(body)?, ctx, idempotency_key).map_err(|r| match r.field {
        Some(field) if r.reason.ends_with("field required") => required(&field),
        _ => rejection(r),
    })
}

pub fn tracking_event(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    let event = tracking::event(text(body)?, ctx.tz).map_err(|e| AppError::Validation(vec![e]))?;
    Ok(Action::Events { session_ref: None, events: vec![event] })
}

/// A batch whose events partly failed validation: what to store, and the failures.
pub struct BatchParse {
    pub action: Action,
    pub errors: Vec<FieldError>,
    pub total: usize,
}

/// `POST /tracking/batch`: valid events are kept even when others fail; all failing is a 422.
pub fn tracking_batch(body: &[u8], ctx: ParseContext) -> Result<BatchParse, AppError> {
    let batch = tracking::batch(text(body)?, ctx.tz).map_err(|e| AppError::Validation(vec![e]))?;
    if batch.total > 0 && batch.events.is_empty() {
        return Err(AppError::Validation(batch.errors));
    }
    Ok(BatchParse {
        action: Action::Events { session_ref: batch.session_ref, events: batch.events },
        errors: batch.errors,
        total: batch.total,
    })
}

fn boundary(body: &[u8], ctx: ParseContext) -> Result<SessionSummary, AppError> {
    payload::tour_boundary(json(body)?, ctx).map_err(|r| {
        AppError::Validation(vec![FieldError { field: r.field.unwrap_or_else(|| "body".into()), reason: r.reason }])
    })
}

pub fn session_start(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    boundary(body, ctx).map(Action::StartTour)
}

pub fn session_end(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    let summary = boundary(body, ctx)?;
    match summary.session_ref {
        Some(_) => Ok(Action::Summary(summary)),
        None => Err(required("session_id")),
    }
}

/// Parses a body kept in the inbox as its endpoint would; `None` for endpoints with nothing to
/// re-read (heartbeats, status).
pub fn reparse(endpoint: &str, body: &[u8], idempotency_key: Option<&str>, ctx: ParseContext) -> Option<Result<Action, AppError>> {
    let path = endpoint.strip_prefix("POST ")?.strip_prefix("/api/v1/unreal")?;
    Some(match path {
        "/session" | "/sessions" => universal(body, idempotency_key, ctx),
        "/event" => flexible(body, idempotency_key, ctx),
        "/tracking/event" | "/events" => tracking_event(body, ctx),
        "/tracking/batch" | "/batch" => tracking_batch(body, ctx).map(|b| b.action),
        "/session/start" => session_start(body, ctx),
        "/session/end" => session_end(body, ctx),
        _ => return None,
    })
}
