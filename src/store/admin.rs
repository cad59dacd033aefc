//! The database as the `nexero user` and `nexero token` commands open it: a plain read-write
//! connection beside a running appliance. They do not take the writer lock (`lock.rs`): SQLite's
//! own locking and a busy timeout keep their few small writes apart from the appliance's writer.
//! Only a database that is missing or older than this binary is opened the appliance's way
//! (locked, WAL, migrated), which needs the appliance to be stopped.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::lock::{self, FileLock};
use super::{backup_dir, configure, migrate, schema_version, StoreError};
use crate::config::Durability;

/// How long a command waits for the appliance's writer to finish a group commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// An open database for an admin command; holds the writer lock only when it had to create or
/// upgrade the file.
pub struct AdminDb {
    conn: Connection,
    _lock: Option<FileLock>,
}

impl Deref for AdminDb {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// Opens the database at `path` for an admin command (see the module's description).
pub fn open(path: &Path, durability: Durability) -> Result<AdminDb, StoreError> {
    if path.exists() {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| cannot_open(path, e))?;
        configure(&conn, durability)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let latest = schema_version();
        if version == latest {
            return Ok(AdminDb { conn, _lock: None });
        }
        if version > latest {
            return Err(StoreError::Incompatible(format!(
                "{} was written by a newer Nexero (schema version {version}; this binary knows up to {latest}). \
                 Fix: run this command with the newer nexero",
                path.display()
            )));
        }
        drop(conn);
        let lock = lock::acquire(path).map_err(|e| match e {
            StoreError::Locked(holder) => StoreError::Locked(format!(
                "{holder}\nThe database is older than this nexero (schema version {version}, this binary writes \
                 {latest}) and is upgraded only when no other Nexero has it open. Fix: stop the running appliance, \
                 start this version once (it upgrades the file), then run this command again"
            )),
            other => other,
        })?;
        return create_or_upgrade(path, durability, lock);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data directory {}: {e}. Fix: create it or choose a writable --data-dir",
                dir.display()
            ))
        })?;
    }
    let lock = lock::acquire(path)?;
    create_or_upgrade(path, durability, lock)
}

/// The appliance's way in: WAL, settings, migrations, all under the writer lock.
fn create_or_upgrade(path: &Path, durability: Durability, lock: FileLock) -> Result<AdminDb, StoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| cannot_open(path, e))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "{} cannot use WAL mode (got {mode}). Fix: keep the data directory on a local disk",
            path.display()
        )));
    }
    configure(&conn, durability)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    migrate(&mut conn, &backup_dir(path))?;
    Ok(AdminDb { conn, _lock: Some(lock) })
}

fn cannot_open(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot open {}: {e}. Fix: check that the data directory exists and is writable",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn creates_a_new_database_then_opens_it_without_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("nexero.db");
        let db = super::open(&path, crate::config::Durability::Full).unwrap();
        assert!(db._lock.is_some(), "a new file is created under the lock");
        drop(db);
        let _held = super::lock::acquire(&path).unwrap();
        let db = super::open(&path, crate::config::Durability::Full).unwrap();
        assert!(db._lock.is_none());
        let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, super::schema_version());
    }
}
