//! Resends recognised whatever tour or address they arrive in: the `Idempotency-Key` of every
//! upload that carried one, with its body's fingerprint, kept for `resend_window_hours`; and the
//! identity of an event (its id, or a body carrying its own time) looked up in the headset's
//! recent tours. (A unique key over all events would put every insert on a random page of one
//! big index; within a tour the keys stay together.)

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// An upload seen earlier with the same key.
pub(super) struct Seen {
    pub fingerprint: i64,
    pub inbox_id: i64,
    pub tour_id: Option<i64>,
}

/// The upload that used `key` since `since` (unix ms).
pub(super) fn seen(conn: &Connection, key: &str, since: i64) -> Result<Option<Seen>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT k.fingerprint, k.inbox_id, i.session_id FROM idempotency_keys k JOIN inbox i ON i.id = k.inbox_id
             WHERE k.key = ?1 AND k.received_at >= ?2",
        )?
        .query_row(params![key, since], |r| Ok(Seen { fingerprint: r.get(0)?, inbox_id: r.get(1)?, tour_id: r.get(2)? }))
        .optional()?)
}

/// Remembers the key of a stored upload (replacing one that has expired).
pub(super) fn remember(conn: &Connection, key: &str, fingerprint: i64, inbox_id: i64, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (key, fingerprint, inbox_id, received_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, inbox_id = excluded.inbox_id,
             received_at = excluded.received_at",
    )?
    .execute(params![key, fingerprint, inbox_id, at])?;
    Ok(())
}

/// Forgets the keys older than the window; returns how many.
pub(super) fn forget_before(conn: &Connection, before: i64) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached("DELETE FROM idempotency_keys WHERE received_at < ?1")?.execute([before])?)
}

/// Tours of the headset, besides `tour`, that a resend of one of its events may have gone to:
/// the latest few that started within the window (a restarted headset replays its last tours'
/// queue), newest first.
pub(super) fn earlier_tours(conn: &Connection, device: &str, tour: i64, since: i64) -> Result<Vec<i64>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id FROM tour_sessions WHERE device_key = ?1 AND started_at >= ?3 AND id <> ?2
         ORDER BY started_at DESC LIMIT 4",
    )?;
    let ids = statement.query_map(params![device, tour, since], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Whether one of `tours` already holds an event with this resend key.
pub(super) fn event_seen(conn: &Connection, tours: &[i64], key: i64) -> Result<bool, StoreError> {
    let mut statement = conn.prepare_cached("SELECT 1 FROM events WHERE session_id = ?1 AND dedupe_key = ?2")?;
    for tour in tours {
        if statement.exists(params![tour, key])? {
            return Ok(true);
        }
    }
    Ok(false)
}
