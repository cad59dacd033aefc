//! The headsets registry: `GET /api/v1/headsets` (staff) and `PATCH /api/v1/headsets/{device_key}`
//! (admin) to name one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::{day_start, iso, HeadsetState, LiveState};
use crate::auth::{Admin, Staff};
use crate::error::{AppError, FieldError, Result};
use crate::store::headsets::{self, Headset};
use crate::store::now_ms;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// A headset's name, trimmed, in characters.
const MAX_NAME_CHARS: usize = 64;

pub(super) async fn list(
    State(state): State<LiveState>,
    Staff(_): Staff,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let limit = number(&query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = number(&query, "offset", 0, 0, i64::MAX)?;
    let now = now_ms();
    let today = day_start(state.tz, now);
    let (total, rows) = state
        .store
        .read(move |c| headsets::list(c, today, limit, offset))
        .await?;
    let data: Vec<Value> = rows.into_iter().map(|h| headset(h, now)).collect();
    Ok(Json(json!({
        "success": true,
        "data": data,
        "total": total,
        "page": offset / limit + 1,
        "limit": limit,
        "total_pages": (total + limit - 1) / limit,
    })))
}

pub(super) async fn rename(
    State(state): State<LiveState>,
    Admin(_): Admin,
    Path(device_key): Path<String>,
    body: Bytes,
) -> Result<Json<Value>> {
    let name = new_name(&body)?;
    let key = device_key.clone();
    let found = state
        .store
        .write(move |c| headsets::rename(c, &key, name.as_deref()))
        .await?;
    if !found {
        return Err(AppError::NotFound(format!(
            "no headset has the device key {device_key:?}"
        )));
    }
    let now = now_ms();
    let today = day_start(state.tz, now);
    let key = device_key.clone();
    let headset_row = state
        .store
        .read(move |c| headsets::get(c, &key, today))
        .await?;
    let headset_row = headset_row.ok_or_else(|| {
        AppError::NotFound(format!("no headset has the device key {device_key:?}"))
    })?;
    Ok(Json(
        json!({"success": true, "data": headset(headset_row, now)}),
    ))
}

fn headset(h: Headset, now: i64) -> Value {
    json!({
        "device_key": h.device_key,
        "name": h.name,
        "first_seen_at": iso(h.first_seen_at),
        "last_seen_at": iso(h.last_seen_at),
        "state": HeadsetState::of(h.current_tour.is_some(), h.last_seen_at, now),
        "tours_today": h.tours_today,
        "current_tour": h.current_tour,
    })
}

/// The body's `name`: a string of 1 to 64 characters once trimmed, or `null` to clear it.
fn new_name(body: &[u8]) -> Result<Option<String>> {
    let usage = r#"send a JSON object such as {"name": "Showroom headset 1"} (or {"name": null} to clear the name)"#;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("the body is not JSON ({e}); {usage}")))?;
    let Value::Object(fields) = value else {
        return Err(AppError::bad_request(format!(
            "the body is not a JSON object; {usage}"
        )));
    };
    let invalid = |reason: String| {
        AppError::Validation(vec![FieldError {
            field: "name".into(),
            reason,
        }])
    };
    match fields.get("name") {
        None => Err(invalid(format!("name is required; {usage}"))),
        Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => {
            let name = name.trim();
            let chars = name.chars().count();
            if chars == 0 {
                Err(invalid(
                    "name is empty; give 1 to 64 characters, or null to clear the name".into(),
                ))
            } else if chars > MAX_NAME_CHARS {
                Err(invalid(format!(
                    "name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"
                )))
            } else {
                Ok(Some(name.to_owned()))
            }
        }
        Some(other) => Err(invalid(format!(
            "name must be a string or null, not {other}"
        ))),
    }
}

/// A whole-number query parameter within `min..=max`; a bad value is refused naming it.
fn number(
    query: &HashMap<String, String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    match text.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(AppError::BadRequest {
            message: format!("{name} must be a whole number from {min} to {max}, not {text:?}"),
            field: Some(name.into()),
            received_keys: vec![],
        }),
    }
}
