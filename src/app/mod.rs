//! The application: shared state, the router, and `launch` — the seam tests and the service
//! wrapper use (bind a listener, pass a shutdown future; the atuin pattern).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use tokio::net::TcpListener;

use crate::config::{ConfigError, Settings};
use crate::ingest::payload::ParseContext;
use crate::store::{Store, StoreError, StoreOptions, WriterOptions};
use crate::{ingest, web};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub parse: ParseContext,
    pub started: Instant,
}

impl AppState {
    pub fn max_dwell_ms(&self) -> i64 {
        self.settings.max_dwell_secs as i64 * 1000
    }
}

/// Why the appliance could not start; each kind has its own process (and service) exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}. Fix: stop the program using that port or choose another with --port / NEXERO_PORT")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("database {path}: {source}")]
    Database { path: String, source: StoreError },
    #[error("cannot create the data directory {path}: {source}. Fix: create it or choose a writable --data-dir")]
    DataDir { path: String, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

impl StartError {
    /// Process exit code; also the Windows service-specific exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            StartError::Bind { .. } => 3,
            StartError::Database { .. } | StartError::DataDir { .. } => 4,
            StartError::Serve(_) => 5,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1/unreal", ingest::router())
        .merge(web::router())
        .with_state(state)
}

/// Opens the data directory and database (blocking work, off the async threads).
pub async fn open_store(settings: &Settings) -> Result<Store, StartError> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| StartError::DataDir {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
        let path = settings.database_path();
        Store::open(StoreOptions {
            path: path.clone(),
            durability: settings.durability,
            writer: WriterOptions {
                tz: settings.timezone()?,
                max_dwell_ms: settings.max_dwell_secs as i64 * 1000,
                idle_timeout_ms: settings.session_idle_timeout_secs as i64 * 1000,
                min_free_bytes: settings.min_free_disk_mb * 1_000_000,
                queue_capacity: settings.max_queued_uploads,
            },
        })
        .map_err(|source| StartError::Database { path: path.display().to_string(), source })
    })
    .await
    .expect("opening the store does not panic")
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight uploads finish, stops the
/// writer and checkpoints the WAL.
pub async fn launch(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = open_store(&settings).await?;
    run(settings, store, listener, shutdown).await
}

/// Binds the configured address, opens the database, calls `on_ready` (the service reports
/// Running there), and serves until `shutdown`.
pub async fn serve(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    let addr = settings.listen_addr();
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let store = open_store(&settings).await?;
    on_ready(listener.local_addr().unwrap_or(addr));
    run(settings, store, listener, shutdown).await
}

async fn run(
    settings: Settings,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = AppState {
        parse: ParseContext { tz: settings.timezone()? },
        settings: Arc::new(settings),
        store: store.clone(),
        started: Instant::now(),
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, database = %store.path().display(), "Nexero Showroom is listening");
    }
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    tracing::info!("stopped accepting requests; finishing queued writes");
    store.shutdown().await;
    tracing::info!("database closed cleanly");
    served.map_err(StartError::Serve)
}
