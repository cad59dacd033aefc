//! Read-side queries used by the headset endpoints and the health check.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;
use crate::model::{TourInfo, UploadMeta};

pub(super) const TOUR_INFO_COLUMNS: &str =
    "uuid, external_id, status, started_at, ended_at, last_event_at, duration_ms, event_count, customer_id, property_id";

pub(super) fn tour_info_row(r: &rusqlite::Row) -> rusqlite::Result<TourInfo> {
    Ok(TourInfo {
        uuid: r.get(0)?,
        external_id: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        last_event_at: r.get(5)?,
        duration_ms: r.get(6)?,
        event_count: r.get(7)?,
        customer_id: r.get(8)?,
        property_id: r.get(9)?,
    })
}

/// A tour by its row id.
pub fn tour_info(conn: &Connection, id: i64) -> Result<TourInfo, StoreError> {
    let sql = format!("SELECT {TOUR_INFO_COLUMNS} FROM tour_sessions WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], tour_info_row)?)
}

/// A tour by our UUID or by the headset's own id.
pub fn session_status(conn: &Connection, id: &str) -> Result<Option<TourInfo>, StoreError> {
    let sql = format!(
        "SELECT {TOUR_INFO_COLUMNS} FROM tour_sessions WHERE uuid = ?1
         UNION ALL SELECT {TOUR_INFO_COLUMNS} FROM tour_sessions WHERE external_id = ?1 LIMIT 1"
    );
    Ok(conn.prepare_cached(&sql)?.query_row([id], tour_info_row).optional()?)
}

#[derive(Debug, Serialize)]
pub struct HealthFacts {
    pub journal_mode: String,
    pub schema_version: i64,
    pub database_bytes: u64,
    pub free_disk_bytes: Option<u64>,
    pub tours: i64,
    pub active_tours: i64,
    pub unrecognised_uploads: i64,
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
    let unrecognised_uploads: i64 =
        conn.query_row("SELECT count(*) FROM inbox WHERE outcome = 'rejected'", [], |r| r.get(0))?;
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
        queued_writes,
    })
}

/// Uploads we could not understand (answered 400 or 422), oldest first, after `after_id`.
pub fn rejected_uploads(conn: &Connection, after_id: i64, limit: usize) -> Result<Vec<(i64, UploadMeta)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, received_at, endpoint, client_addr, device_key, content_type, body, idempotency_key FROM inbox
         WHERE outcome = 'rejected' AND status IN (400, 422) AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(rusqlite::params![after_id, limit as i64], |r| {
        Ok((
            r.get(0)?,
            UploadMeta {
                received_at: r.get(1)?,
                endpoint: r.get(2)?,
                client_addr: r.get(3)?,
                device_key: r.get(4)?,
                content_type: r.get(5)?,
                body: r.get(6)?,
                idempotency_key: r.get(7)?,
                ok_status: 0,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
