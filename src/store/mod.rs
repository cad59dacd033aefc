//! The SQLite store: one WAL file, one writer thread with group commit, a pool of read-only
//! readers.
//!
//! Every write goes through the writer (`writer`), which commits many concurrent requests in one
//! transaction and answers each only after the commit. Reads run on the blocking thread pool
//! through [`Store::read`], never on the async executor threads. The domain is split by table:
//! `inbox`, `tours`, `events`, `rollup`; `upload` says what an upload means for each.

pub mod admin;
pub mod dashboard;
pub mod event_record;
mod events;
pub mod headsets;
mod health;
pub mod inbox;
pub mod live;
mod lock;
mod migrate;
mod resends;
pub mod staff;
pub(crate) mod rollup;
pub mod sync;
pub mod tours;
mod upload;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use health::HealthFacts;
pub(crate) use inbox::INSERT_INBOX;
pub(crate) use events::INSERT_EVENT;
pub use migrate::latest_version as schema_version;
pub(crate) use migrate::migrate;
pub use upload::IngestOptions;
use upload::{IngestState, WriteCtx};
use writer::{Size, Writer};
pub use writer::WriterOptions;

use crate::config::Durability;
use crate::model::{Action, Applied, UploadMeta};

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// A batch of more events than this is a large request: the writer takes at most one per group
/// commit, so small uploads never wait behind several.
const LARGE_BATCH_EVENTS: usize = 500;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes right now (busy, disk full, I/O error): retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// More writes are queued than the writer can take: retry shortly.
    #[error("too many uploads queued; retry shortly")]
    Overloaded,
    /// Another process has the database open for writing.
    #[error("{0}")]
    Locked(String),
    /// The file cannot be used by this binary (newer schema, not a database).
    #[error("{0}")]
    Incompatible(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::OutOfMemory,
            ) => StoreError::Unavailable(e.to_string()),
            Some(ErrorCode::NotADatabase) => {
                StoreError::Incompatible(format!("{e}. Fix: point --data-dir at a folder holding a Nexero database"))
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub struct StoreOptions {
    pub path: PathBuf,
    pub durability: Durability,
    pub ingest: IngestOptions,
    pub writer: WriterOptions,
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    writer: Writer<IngestState>,
    path: PathBuf,
    /// What was just committed, for the live view (published after each commit).
    live: tokio::sync::broadcast::Sender<live::LiveUpdate>,
}

/// Where upgrades put a copy of the database before migrating it: `backups/` beside the file.
pub(crate) fn backup_dir(database: &Path) -> PathBuf {
    database.parent().unwrap_or(Path::new(".")).join("backups")
}

/// Settings every connection gets: WAL, foreign keys, a busy timeout.
pub(crate) fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(())
}

impl Store {
    /// Locks, opens (creating if needed) and migrates the database, then starts the writer
    /// thread. Blocking: call before serving or from a blocking thread.
    pub fn open(options: StoreOptions) -> Result<Store, StoreError> {
        let lock = lock::acquire(&options.path)?;
        let mut conn = Connection::open_with_flags(
            &options.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open {}: {e}. Fix: check that the data directory exists and is writable",
                options.path.display()
            ))
        })?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} cannot use WAL mode (got {mode}). Fix: keep the data directory on a local disk",
                options.path.display()
            )));
        }
        configure(&conn, options.durability)?;
        migrate::migrate(&mut conn, &backup_dir(&options.path))?;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| c.busy_timeout(Duration::from_secs(5)));
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let db_dir = options.path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        let writer = Writer::start(conn, IngestState::new(options.ingest), options.writer, db_dir, lock)?;
        Ok(Store { pool, writer, path: options.path, live: live::channel() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hears every upload and tour ending from now on, each after its commit.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<live::LiveUpdate> {
        self.live.subscribe()
    }

    /// Runs a read on the blocking pool: `store.read(move |c| tours::by_reference(c, &id))`.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&*pool.get()?))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// Stores an upload (raw body in the inbox plus what it means) and returns after the commit.
    /// `existing` is the upload's inbox row when `nexero reprocess` applies a new reading of it.
    pub async fn apply(&self, meta: UploadMeta, existing: Option<i64>, action: Action) -> Result<Applied, StoreError> {
        // Identifying the body is parsing work: done here, not on the writer thread.
        let fingerprint = meta.idempotency_key.is_some().then(|| meta.fingerprint());
        let size = match &action {
            Action::Events { events, .. } if events.len() > LARGE_BATCH_EVENTS => Size::Large,
            _ => Size::Small,
        };
        let (device_key, at) = (meta.device_key.clone(), meta.received_at);
        let (applied, notes) = self
            .writer
            .submit(size, move |conn, state| {
                let applied = upload::apply(&mut WriteCtx::new(conn, state), &meta, existing, action, fingerprint)?;
                Ok((applied, state.take_notes()))
            })
            .await?;
        // Committed: now the live view may hear of it.
        live::publish_upload(&self.live, device_key, at, &applied, notes);
        Ok(applied)
    }

    /// Runs a small write (a sign-in, a headset's new name) through the writer queue: its own
    /// savepoint in the next group commit, answered after the commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.submit(Size::Small, move |conn, _| f(conn)).await
    }

    /// Forgets the `Idempotency-Key`s older than the resend window; returns how many.
    pub async fn forget_old_resend_keys(&self) -> Result<usize, StoreError> {
        self.writer.submit(Size::Small, |conn, state| upload::forget_old_resend_keys(&mut WriteCtx::new(conn, state))).await
    }

    /// Ends the tours that have been idle for longer than the timeout; returns how many.
    pub async fn close_idle_tours(&self) -> Result<usize, StoreError> {
        let (closed, notes) = self
            .writer
            .submit(Size::Small, |conn, state| {
                let closed = tours::close_idle(&mut WriteCtx::new(conn, state))?;
                Ok((closed, state.take_notes()))
            })
            .await?;
        live::publish_ended(&self.live, notes.ended);
        Ok(closed)
    }

    /// Proves the database takes a write, through the same queue as uploads.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.writer.submit(Size::Small, |conn, _| upload::probe(conn)).await
    }

    pub async fn health_facts(&self) -> Result<HealthFacts, StoreError> {
        let path = self.path.clone();
        let queued = self.writer.queued();
        self.read(move |c| health::health_facts(c, &path, queued)).await
    }

    /// Resolves when the writer thread has ended: at shutdown, or because it failed.
    pub async fn writer_stopped(&self) {
        self.writer.stopped().await
    }

    /// Stops the writer after the queued writes and checkpoints the WAL.
    pub async fn shutdown(&self) {
        self.writer.shutdown().await;
    }
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
