//! Service-level routes: service info, health, the OpenAPI document and the offline docs page.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rust_embed::RustEmbed;
use serde_json::json;

use crate::app::AppState;
use crate::error::AppError;
use crate::store::now_ms;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A health check that cannot write within this time reports the database as failing.
const HEALTH_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(service_info))
        .route("/health", get(health))
        .route("/openapi.json", get(|| asset("openapi.json")))
        .route("/docs", get(|| asset("docs.html")))
        .fallback(not_found)
}

async fn service_info() -> Json<serde_json::Value> {
    Json(json!({
        "service": "Nexero Showroom",
        "version": VERSION,
        "status": "running",
        "description": "VR tour analytics appliance for real-estate sales offices",
        "endpoints": {"docs": "/docs", "openapi": "/openapi.json", "health": "/health", "api": "/api/v1/unreal"},
    }))
}

/// Really writes through the writer queue and reads back facts about the file and the disk.
async fn health(State(state): State<AppState>) -> Response {
    let write = tokio::time::timeout(HEALTH_WRITE_TIMEOUT, state.store.probe_write()).await;
    let write_error = match write {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no write completed within {} s", HEALTH_WRITE_TIMEOUT.as_secs())),
    };
    let facts = state.store.health_facts().await;
    let timestamp = chrono::DateTime::from_timestamp_millis(now_ms()).map(|t| t.to_rfc3339());
    let min_free = state.settings.min_free_disk_mb * 1_000_000;
    match (write_error, facts) {
        (None, Ok(facts)) => {
            let low_disk = facts.free_disk_bytes.is_some_and(|free| free < min_free);
            let status = if low_disk { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            let body = json!({
                "status": if low_disk { "unhealthy" } else { "healthy" },
                "database": "connected",
                "writable": !low_disk,
                "low_disk": low_disk,
                "version": VERSION,
                "timestamp": timestamp,
                "uptime_seconds": state.started.elapsed().as_secs(),
                "data_dir": state.settings.data_dir,
                "facts": facts,
            });
            (status, Json(body)).into_response()
        }
        (write_error, facts) => {
            let error = write_error.or_else(|| facts.err().map(|e| e.to_string()));
            let body = json!({"status": "unhealthy", "database": "error", "writable": false, "error": error,
                              "version": VERSION, "timestamp": timestamp});
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], Json(body)).into_response()
        }
    }
}

async fn asset(name: &str) -> Response {
    match Assets::get(name) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache".to_string())], file.data).into_response()
        }
        None => AppError::NotFound(format!("{name} is missing from this build")).into_response(),
    }
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}; see /docs for the API", uri.path()))
}
