//! Driving sync by hand: `GET /api/v1/sync/status` (staff, or the local control token),
//! `POST /api/v1/sync/now` and `POST /api/v1/sync/retry-quarantined` (a signed-in admin, or the
//! control token — see `auth::control`). The dashboard's sync panel and `nexero sync …` use them;
//! [`describe`] is the plain-words reading of a status that `nexero sync status` and
//! `nexero service status` print.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::SyncHandle;
use crate::auth::control::{ControlOrAdmin, ControlOrStaff, ControlState};
use crate::auth::AuthState;
use crate::error::AppError;

pub const PATH_STATUS: &str = "/api/v1/sync/status";
pub const PATH_NOW: &str = "/api/v1/sync/now";
pub const PATH_RETRY: &str = "/api/v1/sync/retry-quarantined";

/// What the control routes need: the sync job's handle (a disabled one when `[sync]` names no
/// cloud).
#[derive(Clone)]
pub struct SyncControlState {
    pub handle: SyncHandle,
}

pub fn router<S>() -> Router<S>
where
    SyncControlState: axum::extract::FromRef<S>,
    AuthState: axum::extract::FromRef<S>,
    ControlState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(PATH_STATUS, get(status))
        .route(PATH_NOW, post(now))
        .route(PATH_RETRY, post(retry_quarantined))
}

async fn status(_: ControlOrStaff, State(state): State<SyncControlState>) -> Json<Value> {
    Json(json!({"success": true, "data": state.handle.refreshed().await}))
}

async fn now(_: ControlOrAdmin, State(state): State<SyncControlState>) -> Response {
    if let Some(refusal) = not_running(&state.handle) {
        return refusal;
    }
    state.handle.wake();
    accepted(json!({"started": true}), "a sync round starts now")
}

async fn retry_quarantined(_: ControlOrAdmin, State(state): State<SyncControlState>) -> Result<Response, AppError> {
    if let Some(refusal) = not_running(&state.handle) {
        return Ok(refusal);
    }
    let requeued = state.handle.retry_quarantined().await?;
    let message = match requeued {
        0 => "nothing was quarantined".to_owned(),
        1 => "1 quarantined row is queued again; a sync round starts now".to_owned(),
        n => format!("{n} quarantined rows are queued again; a sync round starts now"),
    };
    Ok(accepted(json!({"requeued": requeued}), &message))
}

fn accepted(data: Value, message: &str) -> Response {
    (StatusCode::ACCEPTED, Json(json!({"success": true, "data": data, "message": message}))).into_response()
}

/// 409 (in the error body every route answers with) when no sync job runs: no cloud is
/// configured, or `[sync] enabled = false`.
fn not_running(handle: &SyncHandle) -> Option<Response> {
    let status = handle.status();
    let message = if !status.configured {
        "cloud sync is not configured, so there is nothing to send. Fix: set url and key in the [sync] section of \
         nexero.toml (or NEXERO_SYNC_URL / NEXERO_SYNC_KEY) and restart the appliance"
    } else if !status.enabled {
        "cloud sync is switched off ([sync] enabled = false), so nothing is sent. Fix: set enabled = true in the \
         [sync] section of nexero.toml and restart the appliance"
    } else {
        return None;
    };
    let body = json!({"code": "SYNC_NOT_CONFIGURED", "message": message, "detail": message});
    Some((StatusCode::CONFLICT, Json(body)).into_response())
}

/// A status (as JSON, maybe from another version of the appliance) as labelled lines in plain
/// words, with times in `tz` and relative to `now` (unix ms).
pub fn describe(status: &Value, tz: chrono_tz::Tz, now: i64) -> Vec<(&'static str, String)> {
    let state = status["state"].as_str().unwrap_or("unknown");
    let mut lines = vec![("state", state_words(state, status).to_owned())];
    if state == "disabled" {
        return lines;
    }
    if let Some(target) = status["target"].as_str() {
        let site = status["site_id"].as_str().map(|id| format!(", as site {id}")).unwrap_or_default();
        lines.push(("target", format!("{target}{site}")));
    }
    let depth = status["queue_depth"].as_i64().unwrap_or(0);
    lines.push(("queue", plural(depth, "tour", "tours") + " waiting"));
    lines.push(("oldest unsynced", moment(&status["oldest_unsynced"], tz, now, "none")));
    lines.push(("last success", moment(&status["last_success"], tz, now, "never")));
    let error = status["last_error"].as_str().filter(|e| !e.is_empty());
    lines.push(("last error", error.unwrap_or("none").to_owned()));
    if matches!(state, "retrying" | "stopped") {
        lines.push(("next attempt", moment(&status["next_attempt"], tz, now, "at the next round")));
    }
    if let Some(quarantined) = status["quarantined"].as_i64().filter(|n| *n > 0) {
        lines.push((
            "quarantined",
            format!(
                "{} the cloud refused, kept aside; after fixing the cloud side: `nexero sync retry-quarantined`",
                plural(quarantined, "row", "rows")
            ),
        ));
    }
    lines
}

/// The words for a state: what it means to the admin.
fn state_words<'a>(state: &'a str, status: &Value) -> &'a str {
    match state {
        "disabled" if status["configured"].as_bool() == Some(true) => {
            "disabled ([sync] enabled = false: completed tours are queued, nothing is sent)"
        }
        "disabled" => "disabled (no cloud configured: set url and key in the [sync] section of nexero.toml)",
        "idle" => "idle (everything completed is in the cloud)",
        "sending" => "sending",
        "retrying" => "retrying (the last send failed; it tries again by itself)",
        "stopped" => "stopped (the cloud refuses this appliance's settings; fix them, see the last error)",
        other => other,
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2026-01-02 10:11 IST (5 min ago)` from unix ms or RFC 3339 text; `none` when absent.
pub fn moment(value: &Value, tz: chrono_tz::Tz, now: i64, none: &str) -> String {
    let ms = value.as_i64().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok().map(|t| t.timestamp_millis())
    });
    let Some(ms) = ms else { return none.to_owned() };
    let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else { return none.to_owned() };
    let local = at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
    format!("{local} ({})", ago(now - ms))
}

/// "just now", "5 min ago", "3 h ago", "2 days ago"; "in 5 min" for the future.
fn ago(ms: i64) -> String {
    let (seconds, future) = (ms.abs() / 1000, ms < 0);
    let span = match seconds {
        0..45 if future => return "in a moment".into(),
        0..45 => return "just now".into(),
        45..3600 => format!("{} min", (seconds + 30) / 60),
        3600..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_in_plain_words() {
        let tz = chrono_tz::Asia::Kolkata;
        let now = 1_767_225_600_000; // 2026-01-01 00:00 UTC
        let status = json!({"state": "retrying", "target": "postgrest", "queue_depth": 3,
            "oldest_unsynced": "2025-12-31T23:55:00.000Z", "last_success": null,
            "last_error": "the cloud could not be reached"});
        let lines = describe(&status, tz, now);
        let text = |label| lines.iter().find(|(l, _)| *l == label).map(|(_, t)| t.clone()).unwrap();
        assert!(text("state").starts_with("retrying"));
        assert_eq!(text("queue"), "3 tours waiting");
        assert_eq!(text("oldest unsynced"), "2026-01-01 05:25 IST (5 min ago)");
        assert_eq!(text("last success"), "never");
        assert_eq!(text("last error"), "the cloud could not be reached");
        assert_eq!(text("next attempt"), "at the next round");
        let disabled = describe(&json!({"state": "disabled"}), tz, now);
        assert_eq!(disabled.len(), 1);
        assert_eq!(ago(-120_000), "in 2 min");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }
}
