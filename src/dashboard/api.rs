//! The dashboard's JSON API under `/api/v1`: the route table and the answer envelopes. Every
//! route wants a signed-in user or an API token (`auth::Staff`); the old cloud dashboard's paths,
//! envelopes and field names are kept, so clients written for it keep working.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{analytics, export, overview, sessions, DashboardState};
use crate::error::AppError;
use crate::store::StoreError;

pub fn router<S>() -> Router<S>
where
    DashboardState: axum::extract::FromRef<S>,
    crate::auth::AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/overview", get(overview::overview))
        .route("/api/v1/sessions", get(sessions::list))
        .route("/api/v1/sessions.csv", get(export::sessions_csv))
        .route("/api/v1/sessions/stats", get(overview::stats))
        .route("/api/v1/sessions/active/count", get(sessions::active_count))
        .route("/api/v1/sessions/{id}", get(sessions::detail))
        .route("/api/v1/sessions/{id}/events", get(sessions::events))
        .route("/api/v1/sessions/{id}/events.csv", get(export::events_csv))
        .route("/api/v1/analytics/dashboard", get(overview::dashboard))
        .route("/api/v1/analytics/views", get(analytics::views))
        .route("/api/v1/analytics/poi", get(analytics::poi))
        .route("/api/v1/analytics/zones", get(analytics::zones))
        .route("/api/v1/analytics/engagement-trends", get(overview::engagement))
        .route("/api/v1/analytics/engagement", get(overview::engagement))
        .route("/api/v1/analytics/funnel", get(overview::funnel))
}

/// `{"success": true, "data": …}`
#[derive(Serialize)]
pub struct Answer<T> {
    success: bool,
    data: T,
}

pub fn ok<T: Serialize>(data: T) -> Json<Answer<T>> {
    Json(Answer { success: true, data })
}

/// A page of a list: the old API's envelope (page = offset / limit + 1).
#[derive(Serialize)]
pub struct Page<T> {
    success: bool,
    data: Vec<T>,
    total: i64,
    page: i64,
    limit: i64,
    total_pages: i64,
}

pub fn page<T: Serialize>(data: Vec<T>, total: i64, limit: i64, offset: i64) -> Page<T> {
    Page { success: true, data, total, page: offset / limit + 1, limit, total_pages: (total + limit - 1) / limit }
}

/// JSON made on the blocking pool (a tour's detail, a page of its events) as the answer.
pub fn json_body(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Serializes an answer on the blocking pool.
pub fn to_json<T: Serialize>(answer: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(answer).map_err(|e| StoreError::Internal(format!("an answer could not be written as JSON: {e}")))
}

/// An unknown tour id, as the old API said it.
pub fn session_not_found() -> AppError {
    AppError::NotFound("Session not found".into())
}
