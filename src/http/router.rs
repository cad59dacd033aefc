//! The one router: every surface's routes, and the one fallback for everything else.

use axum::http::Uri;
use axum::Router;

use crate::error::AppError;
use super::{system, AppState};
use crate::ingest;

pub fn router(state: AppState) -> Router {
    Router::new().merge(ingest::router()).merge(system::router()).fallback(not_found).with_state(state)
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}; see /docs for the API", uri.path()))
}
