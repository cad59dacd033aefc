//! Cloud sync's outbox (`sync_outbox`, `sync_quarantine`): what is still to send, and progress.
//!
//! A tour is queued in the transaction that ends it ([`queue`] from `tours::complete`) and again
//! by any later change (a late event). The sync engine reads on the reader pool and records
//! progress with small writes: the events high-water mark after each accepted batch, the tour's
//! synced version once the cloud holds all of it. Rows are never deleted here.

use rusqlite::{params, Connection, OptionalExtension};

pub use super::event_record::EventRecord;
use super::event_record::{from_row, COLUMNS};
use super::StoreError;

/// Queues a tour (again): one more change the cloud has not seen. Called inside the write that
/// makes the change, so the change and its queueing commit together.
pub(crate) fn queue(conn: &Connection, session_id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_outbox (session_id, queued_at) VALUES (?1, ?2)
         ON CONFLICT(session_id) DO UPDATE SET
             queued_at = CASE WHEN synced_version >= version THEN excluded.queued_at ELSE queued_at END,
             version = version + 1, next_attempt_at = 0",
    )?
    .execute(params![session_id, now])?;
    Ok(())
}

/// A tour waiting for the cloud.
#[derive(Clone, Debug)]
pub struct Pending {
    pub session_id: i64,
    pub version: i64,
    /// The highest events.id of this tour the cloud already has.
    pub events_synced_to: i64,
}

/// Up to `limit` pending tours due at `now` (oldest first).
pub fn pending(conn: &Connection, now: i64, limit: usize) -> Result<Vec<Pending>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT session_id, version, events_synced_to FROM sync_outbox
             WHERE synced_version < version AND quarantined = 0 AND next_attempt_at <= ?1
             ORDER BY queued_at, session_id LIMIT ?2",
        )?
        .query_map(params![now, limit as i64], |r| Ok(Pending { session_id: r.get(0)?, version: r.get(1)?, events_synced_to: r.get(2)? }))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A tour row as the cloud gets it.
#[derive(Clone, Debug)]
pub struct TourRecord {
    pub id: i64,
    pub uuid: String,
    pub external_id: Option<String>,
    pub device_key: String,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub customer_id: Option<String>,
    pub property_id: Option<String>,
    pub device_type: Option<String>,
    pub event_count: i64,
    pub time_warnings: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn tour(conn: &Connection, id: i64) -> Result<TourRecord, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, uuid, external_id, device_key, status, started_at, ended_at, duration_ms, customer_id,
                    property_id, device_type, event_count, time_warnings, created_at, updated_at
             FROM tour_sessions WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(TourRecord {
                id: r.get(0)?,
                uuid: r.get(1)?,
                external_id: r.get(2)?,
                device_key: r.get(3)?,
                status: r.get(4)?,
                started_at: r.get(5)?,
                ended_at: r.get(6)?,
                duration_ms: r.get(7)?,
                customer_id: r.get(8)?,
                property_id: r.get(9)?,
                device_type: r.get(10)?,
                event_count: r.get(11)?,
                time_warnings: r.get(12)?,
                created_at: r.get(13)?,
                updated_at: r.get(14)?,
            })
        })?)
}

/// Up to `limit` events of a tour after `after` (an events.id), in id order.
pub fn events_after(conn: &Connection, session_id: i64, after: i64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    let rows = conn.prepare_cached(&sql)?.query_map(params![session_id, after, limit as i64], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The cloud holds these tours' events up to the given events.id.
pub fn mark_events(conn: &Connection, marks: &[(i64, i64)]) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached("UPDATE sync_outbox SET events_synced_to = max(events_synced_to, ?2) WHERE session_id = ?1")?;
    for (session_id, mark) in marks {
        update.execute(params![session_id, mark])?;
    }
    Ok(())
}

/// The cloud holds these tours as they stood at the given versions.
pub fn mark_synced(conn: &Connection, versions: &[(i64, i64)], now: i64) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached(
        "UPDATE sync_outbox SET synced_version = max(synced_version, ?2), synced_at = ?3, attempts = 0,
             last_error = NULL, next_attempt_at = 0
         WHERE session_id = ?1",
    )?;
    for (session_id, version) in versions {
        update.execute(params![session_id, version, now])?;
    }
    Ok(())
}

/// A send for these tours failed: count it, say why, and not before `next_attempt_at`.
pub fn record_failure(conn: &Connection, ids: &[i64], error: &str, next_attempt_at: i64) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached(
        "UPDATE sync_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE session_id = ?1",
    )?;
    for id in ids {
        update.execute(params![id, error, next_attempt_at])?;
    }
    Ok(())
}

/// A row the cloud refuses for what it holds.
#[derive(Clone, Debug)]
pub struct Quarantined {
    pub session_id: i64,
    /// None: the tour's own row (the tour then waits whole, events included).
    pub event_id: Option<i64>,
    pub table: String,
    pub code: Option<String>,
    pub error: String,
    pub payload: String,
}

/// Puts a refused row aside. A refused tour row stops its tour; a refused event is passed over
/// (the high-water mark moves past it when its batch's other rows are in).
pub fn quarantine(conn: &Connection, row: &Quarantined, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_quarantine (session_id, event_id, target_table, code, error, payload, quarantined_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![row.session_id, row.event_id, row.table, row.code, row.error, row.payload, now])?;
    if row.event_id.is_none() {
        conn.prepare_cached("UPDATE sync_outbox SET quarantined = 1, last_error = ?2 WHERE session_id = ?1")?
            .execute(params![row.session_id, row.error])?;
    }
    Ok(())
}

/// Queues every quarantined row again (their tours' events from the first refused one are sent
/// again; the cloud ignores the ones it has). Returns how many rows.
pub fn retry_quarantined(conn: &Connection, now: i64) -> Result<usize, StoreError> {
    let rows: Vec<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT session_id, min(event_id) FROM sync_quarantine GROUP BY session_id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (session_id, first_event) in &rows {
        conn.prepare_cached(
            "UPDATE sync_outbox SET quarantined = 0, attempts = 0,
                 events_synced_to = CASE WHEN ?2 IS NULL THEN events_synced_to ELSE min(events_synced_to, ?2 - 1) END
             WHERE session_id = ?1",
        )?
        .execute(params![session_id, first_event])?;
        queue(conn, *session_id, now)?;
    }
    Ok(conn.execute("DELETE FROM sync_quarantine", [])?)
}

/// The outbox at a glance, for /health and `nexero sync status`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct QueueFacts {
    /// Tours not yet (fully) in the cloud, quarantined ones included.
    pub pending_tours: i64,
    /// Since when the oldest of them waits (unix ms).
    pub oldest_queued_at: Option<i64>,
    /// Rows put aside because the cloud refused them.
    pub quarantined_rows: i64,
    /// When the cloud last took a whole tour (unix ms).
    pub last_synced_at: Option<i64>,
}

pub fn queue_facts(conn: &Connection) -> Result<QueueFacts, StoreError> {
    let (pending_tours, oldest_queued_at, last_synced_at) = conn.query_row(
        "SELECT count(*) FILTER (WHERE synced_version < version),
                min(queued_at) FILTER (WHERE synced_version < version), max(synced_at)
         FROM sync_outbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let quarantined_rows = conn.query_row("SELECT count(*) FROM sync_quarantine", [], |r| r.get(0))?;
    Ok(QueueFacts { pending_tours, oldest_queued_at, quarantined_rows, last_synced_at })
}

/// This appliance's cloud id: the one kept in `meta`, else `candidate`, kept from now on.
pub fn site_id(conn: &Connection, candidate: &str) -> Result<String, StoreError> {
    conn.prepare_cached("INSERT INTO meta (key, value) VALUES ('site_id', ?1) ON CONFLICT(key) DO NOTHING")?
        .execute([candidate])?;
    let kept: Option<String> =
        conn.prepare_cached("SELECT value FROM meta WHERE key = 'site_id'")?.query_row([], |r| r.get(0)).optional()?;
    Ok(kept.unwrap_or_else(|| candidate.to_owned()))
}
