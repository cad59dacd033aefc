//! The inbox: every upload exactly as it arrived, with what became of it. Written in the same
//! transaction as what was parsed from the upload.

use rusqlite::{params, Connection};

use super::StoreError;
use crate::model::{Endpoint, UploadMeta};

/// How every upload is kept (the benchmark's data generator uses the same statement).
pub(crate) const INSERT_INBOX: &str =
    "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, content_type, body, status, outcome,
         detail, events_stored, session_id, idempotency_key)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// What became of an upload.
pub(super) struct Outcome<'a> {
    /// The HTTP status answered.
    pub status: u16,
    /// stored, duplicate, ignored or rejected.
    pub outcome: &'a str,
    /// What it was recognised as, or why it was refused.
    pub detail: &'a str,
    pub events: i64,
    pub tour_id: Option<i64>,
}

/// Keeps the upload (or, for `nexero reprocess`, updates the row it already has).
pub(super) fn record(conn: &Connection, meta: &UploadMeta, existing: Option<i64>, o: &Outcome) -> Result<i64, StoreError> {
    if let Some(id) = existing {
        conn.prepare_cached(
            "UPDATE inbox SET status = ?2, outcome = ?3, detail = ?4, events_stored = ?5, session_id = ?6 WHERE id = ?1",
        )?
        .execute(params![id, o.status, o.outcome, o.detail, o.events, o.tour_id])?;
        return Ok(id);
    }
    conn.prepare_cached(INSERT_INBOX)?.execute(params![
        meta.received_at,
        meta.endpoint_text(),
        meta.client_addr,
        meta.device_key,
        meta.content_type,
        meta.body,
        o.status,
        o.outcome,
        o.detail,
        o.events,
        o.tour_id,
        meta.idempotency_key
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Notes resent events found while storing an upload.
pub(super) fn note_duplicates(conn: &Connection, id: i64, stored: usize, duplicates: usize) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE inbox SET events_stored = ?2, outcome = CASE WHEN ?2 = 0 THEN 'duplicate' ELSE 'stored' END,
             detail = detail || ?3 WHERE id = ?1",
        params![id, stored as i64, format!("; {duplicates} already stored")],
    )?;
    Ok(())
}

/// Uploads refused as not understood (answered 400 or 422), oldest first, after `after_id`;
/// `nexero reprocess` reads them again. Rows of endpoints that take no upload are skipped.
pub fn rejected_uploads(conn: &Connection, after_id: i64, limit: usize) -> Result<(i64, Vec<(i64, UploadMeta)>), StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, received_at, endpoint, client_addr, device_key, content_type, body, idempotency_key FROM inbox
         WHERE outcome = 'rejected' AND status IN (400, 422) AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = statement.query(params![after_id, limit as i64])?;
    let (mut last, mut uploads) = (after_id, Vec::new());
    while let Some(r) = rows.next()? {
        last = r.get(0)?;
        let recorded: String = r.get(2)?;
        let Some((endpoint, path)) = Endpoint::from_inbox(&recorded) else { continue };
        let meta = UploadMeta {
            received_at: r.get(1)?,
            endpoint,
            path,
            client_addr: r.get(3)?,
            device_key: r.get(4)?,
            content_type: r.get(5)?,
            body: r.get(6)?,
            idempotency_key: r.get(7)?,
        };
        uploads.push((last, meta));
    }
    Ok((last, uploads))
}
