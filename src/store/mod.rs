//! The SQLite store: one WAL file, one writer thread with group commit, a pool of readers.
//!
//! Every write goes through the writer (`store::writer`), which commits many concurrent requests
//! in one transaction and answers each only after the commit. Reads use an r2d2 pool on the
//! blocking thread pool, never the async executor threads.

pub mod analytics;
mod migrate;
mod queries;
pub mod synthetic;
mod upload;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use migrate::latest_version as schema_version;
pub use queries::HealthFacts;
use writer::Writer;
pub use writer::WriterOptions;

use crate::config::Durability;
use crate::model::{Action, Applied, TourInfo, UploadMeta};

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes right now (busy, disk full, I/O error): retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// More writes are queued than the writer can take: retry shortly.
    #[error("too many uploads queued; retry shortly")]
    Overloaded,
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
    pub writer: WriterOptions,
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    writer: Writer,
    path: PathBuf,
}

/// Where upgrades put a copy of the database before migrating it: `backups/` beside the file.
fn backup_dir(database: &Path) -> PathBuf {
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
    /// Opens (creating if needed) and migrates the database, then starts the writer thread.
    /// Blocking: call before serving or from a blocking thread.
    pub fn open(options: StoreOptions) -> Result<Store, StoreError> {
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
        let durability = options.durability;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |c| configure(c, durability));
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let writer = Writer::start(conn, options.writer, options.path.clone())?;
        Ok(Store { pool, writer, path: options.path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on the blocking pool.
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
    pub async fn apply(&self, meta: UploadMeta, action: Action) -> Result<Applied, StoreError> {
        self.writer.submit(move |ctx| upload::apply(ctx, meta, action)).await
    }

    /// Proves the database takes a write, through the same queue as uploads.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.writer.submit(upload::probe).await
    }

    /// Re-applies a new parse of an upload already in the inbox (`nexero reprocess`).
    pub async fn reapply(&self, inbox_id: i64, meta: UploadMeta, action: Action) -> Result<Applied, StoreError> {
        self.writer.submit(move |ctx| upload::reapply(ctx, inbox_id, meta, action)).await
    }

    /// A page of the uploads that were refused as not understood, oldest first.
    pub async fn rejected_uploads(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, UploadMeta)>, StoreError> {
        self.read(move |c| queries::rejected_uploads(c, after_id, limit)).await
    }

    pub async fn session_status(&self, id: String) -> Result<Option<TourInfo>, StoreError> {
        self.read(move |c| queries::session_status(c, &id)).await
    }

    pub async fn tours_per_day(&self, since_ms: i64, utc_offset_secs: i64) -> Result<Vec<analytics::DayCount>, StoreError> {
        self.read(move |c| analytics::tours_per_day(c, since_ms, utc_offset_secs)).await
    }

    pub async fn zone_dwell(&self, property_id: String, from_day: String, to_day: String) -> Result<Vec<analytics::ZoneDwell>, StoreError> {
        self.read(move |c| analytics::zone_dwell(c, &property_id, &from_day, &to_day)).await
    }

    pub async fn top_names(&self, kind: String, from_day: String, to_day: String, limit: usize) -> Result<Vec<analytics::NameCount>, StoreError> {
        self.read(move |c| analytics::top_names(c, &kind, &from_day, &to_day, limit)).await
    }

    pub async fn tour_timeline(&self, tour_uuid: String) -> Result<Vec<analytics::TimelineEvent>, StoreError> {
        self.read(move |c| analytics::tour_timeline(c, &tour_uuid)).await
    }

    pub async fn health_facts(&self) -> Result<HealthFacts, StoreError> {
        let path = self.path.clone();
        let queued = self.writer.queued();
        self.read(move |c| queries::health_facts(c, &path, queued)).await
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
