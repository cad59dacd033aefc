//! From raw body to what it means, per endpoint. Pure and synchronous: the handlers use it on
//! arrival, and `nexero reprocess` uses it again on bodies kept in the inbox.

use serde_json::Value;

use super::payload::{self, ParseContext, Rejection};
use super::tracking;
use crate::error::{AppError, FieldError};
use crate::model::{Action, Endpoint, SessionSummary};

/// What an upload means, with what a batch's answer reports beyond it.
pub struct Parsed {
    pub action: Action,
    /// Events of a batch that failed validation (the rest are stored).
    pub errors: Vec<FieldError>,
    /// Events a batch held, valid or not.
    pub total: usize,
    /// What did not stop the upload from being stored, each naming its field.
    pub warnings: Vec<String>,
}

impl From<Action> for Parsed {
    fn from(action: Action) -> Parsed {
        Parsed { action, errors: Vec::new(), total: 0, warnings: Vec::new() }
    }
}

impl Endpoint {
    /// Reads a body as this endpoint takes it. `route_id` is the session id in the path of the
    /// heartbeat routes.
    pub fn parse(self, body: &[u8], idempotency_key: Option<&str>, route_id: Option<&str>, ctx: ParseContext) -> Result<Parsed, AppError> {
        let action = match self {
            Endpoint::Session | Endpoint::Sessions => return universal(body, idempotency_key, ctx),
            Endpoint::Event => flexible(body, idempotency_key, ctx),
            Endpoint::TrackingEvent | Endpoint::Events => tracking_event(body, ctx),
            Endpoint::TrackingBatch | Endpoint::Batch => return tracking_batch(body, ctx),
            Endpoint::SessionStart => session_start(body, ctx),
            Endpoint::SessionEnd => session_end(body, ctx),
            Endpoint::SessionHeartbeat | Endpoint::Heartbeat => match route_id {
                Some(id) => Ok(Action::Heartbeat { session_ref: id.to_owned() }),
                None => Err(required("id")),
            },
        };
        action.map(Parsed::from)
    }
}

fn text(body: &[u8]) -> Result<&str, AppError> {
    std::str::from_utf8(body).map_err(|e| {
        AppError::bad_request(format!("the request body is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()))
    })
}

fn json(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_str(text(body)?).map_err(|e| AppError::bad_request(format!("malformed JSON: {e}")))
}

fn rejection(r: Rejection) -> AppError {
    AppError::BadRequest { message: r.reason, field: r.field, received_keys: r.received_keys }
}

fn required(field: &str) -> AppError {
    AppError::Validation(vec![FieldError { field: field.into(), reason: "field required".into() }])
}

/// `POST /session`: any generation of headset payload. An empty body is a startup packet too.
fn universal(body: &[u8], idempotency_key: Option<&str>, ctx: ParseContext) -> Result<Parsed, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Action::Startup.into());
    }
    let (action, warnings) = payload::universal_with_warnings(json(body)?, ctx, idempotency_key).map_err(rejection)?;
    Ok(Parsed { warnings, ..action.into() })
}

/// `POST /event`: a flexible event; a missing `event_type` is a validation error (422).
fn flexible(body: &[u8], idempotency_key: Option<&str>, ctx: ParseContext) -> Result<Action, AppError> {
    payload::flexible(json(body)?, ctx, idempotency_key).map_err(|r| match r.field {
        Some(field) if r.reason.ends_with("field required") => required(&field),
        _ => rejection(r),
    })
}

fn tracking_event(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    let event = tracking::event(text(body)?, ctx.tz).map_err(|e| AppError::Validation(vec![e]))?;
    Ok(Action::Events { session_ref: None, events: vec![event] })
}

/// `POST /tracking/batch`: valid events are kept even when others fail; all failing is a 422.
fn tracking_batch(body: &[u8], ctx: ParseContext) -> Result<Parsed, AppError> {
    let batch = tracking::batch(text(body)?, ctx.tz).map_err(|e| AppError::Validation(vec![e]))?;
    if batch.total > 0 && batch.events.is_empty() {
        return Err(AppError::Validation(batch.errors));
    }
    Ok(Parsed {
        action: Action::Events { session_ref: batch.session_ref, events: batch.events },
        errors: batch.errors,
        total: batch.total,
        warnings: Vec::new(),
    })
}

fn boundary(body: &[u8], ctx: ParseContext) -> Result<SessionSummary, AppError> {
    payload::tour_boundary(json(body)?, ctx).map_err(|r| {
        AppError::Validation(vec![FieldError { field: r.field.unwrap_or_else(|| "body".into()), reason: r.reason }])
    })
}

fn session_start(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    boundary(body, ctx).map(Action::StartTour)
}

fn session_end(body: &[u8], ctx: ParseContext) -> Result<Action, AppError> {
    let summary = boundary(body, ctx)?;
    match summary.session_ref {
        Some(_) => Ok(Action::Summary(summary)),
        None => Err(required("session_id")),
    }
}
