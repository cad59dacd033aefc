//! The one error type of the HTTP surface. Every error answers with a JSON body naming a code,
//! a human-readable message and, where it applies, the offending fields; internals are logged,
//! never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::store::StoreError;

/// One invalid field: where (a JSON path such as `events[3].timestamp`) and why.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not what this endpoint takes (malformed JSON, unknown shape).
    #[error("{message}")]
    BadRequest { message: String, field: Option<String>, received_keys: Vec<String> },
    /// A typed endpoint's body failed validation.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No signed-in user or token (the dashboard's routes).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The path exists, but not for this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request body did not arrive within `body_read_timeout_secs`.
    #[error("{0}")]
    RequestTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    /// What clients written for the old backend read: an object (`error`, `message`,
    /// `received_keys`) on a 400, FastAPI's list of `{loc, msg, type}` on a 422, else the text.
    detail: serde_json::Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    received_keys: Vec<String>,
}

impl AppError {
    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::BadRequest { message: message.into(), field: None, received_keys: vec![] }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::Store(StoreError::Overloaded | StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(StoreError::Internal(_) | StoreError::Incompatible(_) | StoreError::Locked(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } => "BAD_REQUEST",
            AppError::Validation(_) => "VALIDATION_ERROR",
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            AppError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            AppError::RequestTimeout(_) => "REQUEST_TIMEOUT",
            AppError::Store(StoreError::Overloaded) => "OVERLOADED",
            AppError::Store(StoreError::Unavailable(_)) => "STORAGE_UNAVAILABLE",
            AppError::Store(_) => "INTERNAL_ERROR",
        }
    }

    /// A short description safe to store in the inbox alongside the raw body.
    pub fn summary(&self) -> String {
        match self {
            AppError::Validation(errors) => {
                errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ")
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let (message, errors, received_keys) = match self {
            AppError::BadRequest { message, field, received_keys } => {
                let errors = field.map(|field| vec![FieldError { field, reason: message.clone() }]).unwrap_or_default();
                (message, errors, received_keys)
            }
            AppError::Validation(errors) => {
                let message = format!("the request body is invalid: {}", AppError::Validation(errors.clone()).summary());
                (message, errors, vec![])
            }
            AppError::Store(e @ (StoreError::Internal(_) | StoreError::Incompatible(_) | StoreError::Locked(_))) => {
                tracing::error!(error = %e, "internal error");
                ("an internal error occurred; the details are in the appliance log".to_string(), vec![], vec![])
            }
            AppError::Store(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "storage unavailable; upload refused with 503");
                (format!("storage is unavailable ({reason}); nothing was stored, retry later"), vec![], vec![])
            }
            other => (other.to_string(), vec![], vec![]),
        };
        let detail = match status {
            StatusCode::BAD_REQUEST => serde_json::json!({
                "error": if received_keys.is_empty() { "Bad request" } else { "Unknown data type" },
                "message": message,
                "received_keys": received_keys,
            }),
            StatusCode::UNPROCESSABLE_ENTITY => errors.iter().map(fastapi_error).collect(),
            _ => serde_json::Value::String(message.clone()),
        };
        let body = ErrorBody { code, detail, message, errors, received_keys };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let wait = if code == "OVERLOADED" { "1" } else { "5" };
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(wait));
        }
        response
    }
}

/// One field error as FastAPI wrote it: `events[3].timestamp` is `loc: ["body", "events", 3,
/// "timestamp"]`.
fn fastapi_error(error: &FieldError) -> serde_json::Value {
    let mut loc = vec![serde_json::json!("body")];
    for part in error.field.split('.').filter(|p| !p.is_empty() && *p != "body") {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            loc.push(serde_json::json!(name));
        }
        for index in indexes.split(['[', ']']).filter(|i| !i.is_empty()) {
            loc.push(index.parse::<u64>().map(serde_json::Value::from).unwrap_or_else(|_| serde_json::json!(index)));
        }
    }
    let kind = if error.reason.contains("required") { "missing" } else { "value_error" };
    serde_json::json!({"loc": loc, "msg": error.reason, "type": kind})
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
