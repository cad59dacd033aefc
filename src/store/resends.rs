//! Resends recognised whatever tour or address they arrive in: the `Idempotency-Key` of every
//! upload that carried one, with its body's fingerprint, kept for `resend_window_hours`; and the
//! identity of an event (its id, or a body carrying its own time) scoped to its headset.

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

/// An event's resend key as stored: the headset's own identity of it, within that headset.
pub(super) fn event_key(device: &str, key: Option<i64>) -> Option<i64> {
    key.map(|key| {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(device.as_bytes());
        hasher.update(&[0]);
        hasher.update(&key.to_le_bytes());
        hasher.digest() as i64
    })
}
