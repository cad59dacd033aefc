//! Service-level routes: the service document at `/`, `/health`, the OpenAPI document and the
//! offline docs page.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::assets;
use crate::store::{now_ms, Store};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A health check that cannot write within this time reports the database as failing.
const HEALTH_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the service routes need.
#[derive(Clone)]
pub struct SystemState {
    pub store: Store,
    pub started: Instant,
    pub data_dir: PathBuf,
    pub min_free_bytes: u64,
    /// Whether `[sync]` names a cloud endpoint (never the endpoint's key).
    pub sync_configured: bool,
}

pub fn router<S>() -> Router<S>
where
    SystemState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(service_info))
        .route("/health", get(health))
        .route("/openapi.json", get(|| async { assets::serve("openapi.json") }))
        .route("/docs", get(|| async { assets::serve("docs.html") }))
}

async fn service_info() -> Json<Value> {
    Json(json!({
        "service": "Nexero Showroom",
        "version": VERSION,
        "status": "running",
        "description": "VR tour analytics appliance for real-estate sales offices",
        "endpoints": {"docs": "/docs", "openapi": "/openapi.json", "health": "/health", "api": "/api/v1/unreal"},
    }))
}

/// Really writes through the writer queue and reads back facts about the file and the disk.
async fn health(State(state): State<SystemState>) -> Response {
    let write = tokio::time::timeout(HEALTH_WRITE_TIMEOUT, state.store.probe_write()).await;
    let write_error = match write {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no write completed within {} s", HEALTH_WRITE_TIMEOUT.as_secs())),
    };
    let facts = state.store.health_facts().await;
    let timestamp = chrono::DateTime::from_timestamp_millis(now_ms()).map(|t| t.to_rfc3339());
    // Cloud sync arrives in a later version; until then say plainly that nothing is sent.
    let sync = json!({
        "configured": state.sync_configured,
        "state": "not available in this version",
        "last_success": null,
    });
    match (write_error, facts) {
        (None, Ok(facts)) => {
            let low_disk = facts.free_disk_bytes.is_some_and(|free| free < state.min_free_bytes);
            let status = if low_disk { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            let body = json!({
                "status": if low_disk { "unhealthy" } else { "healthy" },
                "database": "connected",
                "writable": !low_disk,
                "low_disk": low_disk,
                "version": VERSION,
                "timestamp": timestamp,
                "uptime_seconds": state.started.elapsed().as_secs(),
                "data_dir": state.data_dir,
                "facts": facts,
                "sync": sync,
            });
            (status, Json(body)).into_response()
        }
        (write_error, facts) => {
            let error = write_error.or_else(|| facts.err().map(|e| e.to_string()));
            let body = json!({"status": "unhealthy", "database": "error", "writable": false, "error": error,
                              "version": VERSION, "timestamp": timestamp, "sync": sync});
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], Json(body)).into_response()
        }
    }
}
