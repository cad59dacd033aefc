//! The application: opens the store, builds the HTTP state, starts the background jobs on the
//! supervisor, and serves — `launch` is the seam tests and the service wrapper use (bind a
//! listener, pass a shutdown future; the atuin pattern).
//!
//! Shutdown is ordered: HTTP stops taking requests and answers those in flight → background
//! jobs stop at a safe point → the writer drains its queue → WAL checkpoint.

mod jobs;
mod supervisor;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::config::{ConfigError, Settings};
use crate::http::system::SystemState;
use crate::auth::AuthState;
use crate::dashboard::DashboardState;
use crate::http::{self, AppState};
use crate::live::LiveState;
use crate::ingest::payload::ParseContext;
use crate::ingest::{BodyBudget, IngestState};
use crate::store::{IngestOptions, Store, StoreError, StoreOptions, WriterOptions};
use supervisor::Supervisor;

/// How long uploads in flight may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Why the appliance could not start or had to stop; each kind has its own process (and
/// service) exit code, so the service manager restarts it and the admin can tell why.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}. Fix: stop the program using that port or choose another with --port / NEXERO_PORT")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("database {path}: {source}")]
    Database { path: String, source: StoreError },
    /// Another Nexero writes this database (the message names it and the fix).
    #[error("{0}")]
    Locked(String),
    #[error("cannot create the data directory {path}: {source}. Fix: create it or choose a writable --data-dir")]
    DataDir { path: String, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("the database writer stopped unexpectedly; exiting so the service manager restarts the appliance (see the lines above)")]
    WriterFailed,
}

impl StartError {
    /// Process exit code; also the Windows service-specific exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            StartError::Bind { .. } => 3,
            StartError::Database { .. } | StartError::Locked(_) | StartError::DataDir { .. } => 4,
            StartError::Serve(_) => 5,
            StartError::WriterFailed => 6,
        }
    }
}

/// Creates the data directory and opens the database (blocking work, off the async threads).
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
            ingest: IngestOptions {
                tz: settings.timezone(),
                max_dwell_ms: settings.max_dwell_ms(),
                idle_timeout_ms: settings.idle_timeout_ms(),
                resend_window_ms: settings.resend_window_ms(),
            },
            writer: WriterOptions { min_free_bytes: settings.min_free_bytes(), queue_capacity: settings.max_queued_uploads },
        })
        .map_err(|source| match source {
            StoreError::Locked(message) => StartError::Locked(message),
            source => StartError::Database { path: path.display().to_string(), source },
        })
    })
    .await
    .expect("opening the store does not panic")
}

/// Serves on `listener` until `shutdown` resolves (or the writer fails), then shuts down in order.
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

/// `nexero reprocess`: re-reads the refused uploads with this version's parser. It holds the
/// database's writer lock while it runs, like `serve`.
pub async fn reprocess(settings: &Settings) -> Result<crate::ingest::reprocess::Report, StartError> {
    let store = open_store(settings).await?;
    let report = crate::ingest::reprocess::run(&store, ParseContext { tz: settings.timezone() }).await;
    store.shutdown().await;
    report.map_err(|source| StartError::Database { path: settings.database_path().display().to_string(), source })
}

/// What ended the serving.
enum Stop {
    Requested,
    WriterFailed,
}

async fn run(
    settings: Settings,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // Cancelled when shutdown starts: the live view's event streams end instead of holding it up.
    let live_streams = tokio_util::sync::CancellationToken::new();
    // Cloud sync: a handle for /health and the control routes always; the job only when a cloud
    // is configured (and enabled).
    let sync_config = crate::sync::SyncConfig::from_settings(&settings.sync);
    let sync = crate::sync::SyncHandle::new(store.clone(), sync_config.as_ref());
    let control = crate::auth::control::ControlState::create(&settings.data_dir).unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot write the local control token; `nexero sync status|now|retry-quarantined` will not work until it can (the dashboard's sync panel still does)");
        crate::auth::control::ControlState::default()
    });
    let state = AppState {
        ingest: IngestState {
            store: store.clone(),
            parse: ParseContext { tz: settings.timezone() },
            max_body_bytes: settings.max_body_bytes,
            body_read_timeout: Duration::from_secs(settings.body_read_timeout_secs),
            body_budget: BodyBudget::new(settings.max_buffered_body_bytes(), settings.max_body_bytes),
        },
        system: SystemState {
            store: store.clone(),
            started: Instant::now(),
            data_dir: settings.data_dir.clone(),
            min_free_bytes: settings.min_free_bytes(),
            sync: sync.clone(),
        },
        auth: AuthState { store: store.clone() },
        dashboard: DashboardState { store: store.clone(), tz: settings.timezone() },
        live: LiveState { store: store.clone(), tz: settings.timezone(), shutdown: live_streams.clone() },
        control,
        sync: crate::sync::control::SyncControlState { handle: sync.clone() },
    };
    let mut supervisor = Supervisor::new();
    supervisor.spawn("idle-tour sweep", {
        let store = store.clone();
        move |token| jobs::close_idle_tours(store.clone(), token)
    });
    supervisor.spawn("resend-key expiry", {
        let store = store.clone();
        move |token| jobs::forget_old_resend_keys(store.clone(), token)
    });
    supervisor.spawn("staff-session expiry", {
        let store = store.clone();
        move |token| jobs::forget_expired_sessions(store.clone(), token)
    });
    if let Some(config) = sync_config.filter(|c| c.enabled) {
        supervisor.spawn("cloud sync", move |token| crate::sync::run(sync.clone(), config.clone(), token));
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, database = %store.path().display(), "Nexero Showroom is listening");
        // With no staff accounts yet: the one-time link that creates the first admin.
        crate::auth::setup::announce(&store, addr).await;
    }

    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let graceful = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if settings.max_buffered_body_bytes() < BodyBudget::least_total(settings.max_body_bytes) {
        tracing::warn!(
            max_body_bytes = settings.max_body_bytes,
            max_buffered_body_mb = settings.max_buffered_body_mb,
            least_mb = BodyBudget::least_total(settings.max_body_bytes).div_ceil(1 << 20),
            "max_buffered_body_mb is less than one largest upload takes to read, parse and store; uploads may use more memory than it says"
        );
    }
    let limits = http::server::Limits {
        header_read_timeout: Duration::from_secs(settings.header_read_timeout_secs),
        write_stall_timeout: Duration::from_secs(settings.body_read_timeout_secs),
        max_connections: settings.max_connections,
    };
    let server = http::server::serve(listener, http::router(state), limits, graceful);
    tokio::pin!(server);
    let why = tokio::select! {
        served = &mut server => {
            // The server ended by itself: only an accept error does that.
            supervisor.shutdown().await;
            store.shutdown().await;
            return served.map_err(StartError::Serve);
        }
        () = shutdown => Stop::Requested,
        () = store.writer_stopped() => Stop::WriterFailed,
    };
    if matches!(why, Stop::WriterFailed) {
        tracing::error!("the database writer stopped unexpectedly; shutting down so the service manager restarts the appliance");
    }
    live_streams.cancel();
    let _ = stopping.send(true);
    let served = match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(served) => served,
        Err(_) => {
            tracing::warn!(seconds = SHUTDOWN_GRACE.as_secs(), "closing the connections still open after the grace period");
            Ok(())
        }
    };
    tracing::info!("stopped accepting requests; stopping background jobs");
    supervisor.shutdown().await;
    tracing::info!("finishing queued writes");
    store.shutdown().await;
    tracing::info!("database closed cleanly");
    match why {
        Stop::WriterFailed => Err(StartError::WriterFailed),
        Stop::Requested => served.map_err(StartError::Serve),
    }
}
