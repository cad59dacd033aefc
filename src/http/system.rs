//! Service-level routes: the service document at `/` (a browser gets the dashboard there),
//! `/health`, the OpenAPI document and the offline docs page (also at `/redoc`, where the old
//! backend had its docs).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::compression::CompressionLayer;

use super::assets;
use crate::auth::AuthState;
use crate::dashboard::pages;
use crate::store::{now_ms, Store};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// A health check that cannot write within this time reports the database as failing.
const HEALTH_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Below this much free space the disk is full whatever `min_free_disk_mb` says (it may be 0):
/// SQLite cannot grow the file or its WAL, so the database is not writable.
const DISK_FULL_BYTES: u64 = 1024 * 1024;
/// The paths of these routes (the router maps other spellings of them onto these).
pub const ROUTES: [&str; 5] = ["/", "/health", "/openapi.json", "/docs", "/redoc"];

/// What the service routes need.
#[derive(Clone)]
pub struct SystemState {
    pub store: Store,
    pub started: Instant,
    pub data_dir: PathBuf,
    pub min_free_bytes: u64,
    /// Cloud sync's status (never the endpoint's key).
    pub sync: crate::sync::SyncHandle,
}

pub fn router<S>() -> Router<S>
where
    SystemState: axum::extract::FromRef<S>,
    AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(root).layer(CompressionLayer::new()))
        .route("/health", get(health))
        .route("/openapi.json", get(|| async { assets::serve("openapi.json") }))
        .route("/docs", get(|| async { assets::serve("docs.html") }))
        .route("/redoc", get(|| async { Redirect::temporary("/docs") }))
}

/// The dashboard for a browser (a request that accepts HTML), the service document for others.
async fn root(State(auth): State<AuthState>, uri: Uri, headers: HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let mut response =
        if browser { pages::app_shell(&auth, &headers, &uri).await } else { service_info().await.into_response() };
    response.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
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
    // Cloud sync: its state, the queue, the last success and the last error in plain words.
    let sync = json!(state.sync.refreshed().await);
    // Free space under the floor is a problem even when the probe's few bytes still fit.
    let floor = state.min_free_bytes.max(DISK_FULL_BYTES);
    let free = facts.as_ref().ok().and_then(|facts| facts.free_disk_bytes);
    let low_disk = free.is_some_and(|free| free < floor);
    match (write_error, facts) {
        (None, Ok(facts)) => {
            let status = if low_disk { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            let mut body = json!({
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
            if low_disk {
                body["error"] = json!(format!(
                    "low disk space: {} bytes free, under the floor of {floor} bytes (min_free_disk_mb, and at least 1 MiB); free some space",
                    free.unwrap_or(0)
                ));
                return (status, [(header::RETRY_AFTER, "5")], Json(body)).into_response();
            }
            (status, Json(body)).into_response()
        }
        (write_error, facts) => {
            let error = write_error.or_else(|| facts.err().map(|e| e.to_string()));
            let body = json!({"status": "unhealthy", "database": "error", "writable": false, "low_disk": low_disk,
                              "error": error, "version": VERSION, "timestamp": timestamp, "sync": sync});
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], Json(body)).into_response()
        }
    }
}
