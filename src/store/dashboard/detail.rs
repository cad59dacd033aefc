//! One tour's events, in order, on `events(session_id, occurred_at)`, and the uploads behind it.

use rusqlite::{params, Connection};

use super::super::event_record::{from_row, EventRecord, COLUMNS};
use super::super::StoreError;

/// The condition on one tour's events, optionally of one `event_type`.
fn condition(event_type: Option<&str>) -> &'static str {
    match event_type {
        Some(_) => "session_id = ?1 AND event_type = ?2",
        None => "session_id = ?1 AND ?2 IS NULL",
    }
}

/// A page of a tour's events in time order (optionally of one `event_type`).
pub fn events(conn: &Connection, tour_id: i64, event_type: Option<&str>, limit: i64, offset: i64) -> Result<Vec<EventRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE {} ORDER BY occurred_at, id LIMIT ?3 OFFSET ?4", condition(event_type));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![tour_id, event_type, limit, offset], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many events a tour has (optionally of one `event_type`).
pub fn count_events(conn: &Connection, tour_id: i64, event_type: Option<&str>) -> Result<i64, StoreError> {
    let sql = format!("SELECT count(*) FROM events WHERE {}", condition(event_type));
    Ok(conn.prepare_cached(&sql)?.query_row(params![tour_id, event_type], |r| r.get(0))?)
}

/// Every event of a tour in time order, to `row` until it answers `false`.
pub fn each_event(conn: &Connection, tour_id: i64, row: impl FnMut(EventRecord) -> Result<bool, StoreError>) -> Result<(), StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE session_id = ?1 ORDER BY occurred_at, id");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query([tour_id])?;
    super::each(&mut rows, from_row, row)
}

/// An upload behind a tour, its body cut to `body_limit` bytes.
#[derive(Clone, Debug)]
pub struct Upload {
    pub id: i64,
    pub received_at: i64,
    pub endpoint: String,
    pub status: i64,
    pub outcome: String,
    pub detail: Option<String>,
    pub events_stored: i64,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The whole body's size in bytes.
    pub body_bytes: i64,
}

/// The uploads that opened, named or fed a tour (its events' inbox rows), oldest first, at most
/// `limit`.
pub fn uploads(conn: &Connection, tour_id: i64, limit: i64, body_limit: i64) -> Result<Vec<Upload>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, received_at, endpoint, status, outcome, detail, events_stored, content_type,
             CAST(substr(body, 1, ?3) AS BLOB), length(body)
         FROM inbox WHERE id IN (SELECT id FROM inbox WHERE session_id = ?1 UNION SELECT inbox_id FROM events WHERE session_id = ?1)
         ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![tour_id, limit, body_limit], |r| {
        Ok(Upload {
            id: r.get(0)?,
            received_at: r.get(1)?,
            endpoint: r.get(2)?,
            status: r.get(3)?,
            outcome: r.get(4)?,
            detail: r.get(5)?,
            events_stored: r.get(6)?,
            content_type: r.get(7)?,
            body: r.get(8)?,
            body_bytes: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
