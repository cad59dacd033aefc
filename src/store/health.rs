//! Facts about the database file for `/health`.

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Serialize)]
pub struct HealthFacts {
    pub journal_mode: String,
    pub schema_version: i64,
    pub database_bytes: u64,
    pub free_disk_bytes: Option<u64>,
    pub tours: i64,
    pub active_tours: i64,
    /// Uploads refused as not understood (400, 422): what `nexero reprocess` reads again.
    pub unrecognised_uploads: i64,
    /// Every refused upload, those too (413, heartbeats to unknown tours, reused keys).
    pub refused_uploads: i64,
    pub queued_writes: usize,
}

pub fn health_facts(conn: &Connection, path: &Path, queued_writes: usize) -> Result<HealthFacts, StoreError> {
    let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let (tours, active_tours): (i64, i64) = conn.query_row(
        "SELECT (SELECT count(*) FROM tour_sessions), (SELECT count(*) FROM tour_sessions WHERE status = 'active')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (unrecognised_uploads, refused_uploads): (i64, i64) = conn.query_row(
        "SELECT count(*) FILTER (WHERE status IN (400, 422)), count(*) FROM inbox WHERE outcome = 'rejected'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let file_size = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::fs::metadata(name).map(|m| m.len()).unwrap_or(0)
    };
    Ok(HealthFacts {
        journal_mode,
        schema_version,
        database_bytes: file_size("") + file_size("-wal"),
        free_disk_bytes: path.parent().and_then(|dir| fs4::available_space(dir).ok()),
        tours,
        active_tours,
        unrecognised_uploads,
        refused_uploads,
        queued_writes,
    })
}
