//! The headsets registry: every device key that uploaded, when it was first and last seen, its
//! latest tour, and the name staff give it. The writer keeps it with one cached upsert per
//! upload, in the upload's own savepoint.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// Records an upload from `device_key` at `at` that belongs to the tour `tour_uuid` (if any);
/// returns the headset's name. Uploads re-read later (`nexero reprocess`) keep the times right:
/// first and last seen only widen, and an older upload does not change the latest tour.
pub(super) fn seen(
    conn: &Connection,
    device_key: &str,
    at: i64,
    tour_uuid: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO headsets (device_key, first_seen_at, last_seen_at, last_tour_id)
         VALUES (?1, ?2, ?2, (SELECT id FROM tour_sessions WHERE uuid = ?3))
         ON CONFLICT (device_key) DO UPDATE SET
             first_seen_at = min(first_seen_at, excluded.first_seen_at),
             last_seen_at = max(last_seen_at, excluded.last_seen_at),
             last_tour_id = CASE WHEN excluded.last_seen_at >= last_seen_at
                                 THEN coalesce(excluded.last_tour_id, last_tour_id) ELSE last_tour_id END
         RETURNING name",
    )?;
    Ok(statement.query_row(params![device_key, at, tour_uuid], |r| r.get(0))?)
}

/// A headset as the registry lists it.
#[derive(Clone, Debug)]
pub struct Headset {
    pub device_key: String,
    pub name: Option<String>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    /// Tours started since `day_start` (the site's midnight).
    pub tours_today: i64,
    /// The open tour's UUID.
    pub current_tour: Option<String>,
}

const HEADSET_SQL: &str = "SELECT h.device_key, h.name, h.first_seen_at, h.last_seen_at,
         (SELECT count(*) FROM tour_sessions d WHERE d.device_key = h.device_key AND d.started_at >= ?1),
         (SELECT a.uuid FROM tour_sessions a WHERE a.device_key = h.device_key AND a.status = 'active'
              ORDER BY a.id DESC LIMIT 1)
     FROM headsets h";

fn headset_row(r: &rusqlite::Row) -> rusqlite::Result<Headset> {
    Ok(Headset {
        device_key: r.get(0)?,
        name: r.get(1)?,
        first_seen_at: r.get(2)?,
        last_seen_at: r.get(3)?,
        tours_today: r.get(4)?,
        current_tour: r.get(5)?,
    })
}

/// A page of the headsets, last seen first, and how many there are in all.
pub fn list(
    conn: &Connection,
    day_start: i64,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<Headset>), StoreError> {
    let total = conn
        .prepare_cached("SELECT count(*) FROM headsets")?
        .query_row([], |r| r.get(0))?;
    let sql =
        format!("{HEADSET_SQL} ORDER BY h.last_seen_at DESC, h.device_key LIMIT ?2 OFFSET ?3");
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![day_start, limit, offset], headset_row)?
        .collect::<Result<_, _>>()?;
    Ok((total, rows))
}

/// One headset by its device key.
pub fn get(
    conn: &Connection,
    device_key: &str,
    day_start: i64,
) -> Result<Option<Headset>, StoreError> {
    let sql = format!("{HEADSET_SQL} WHERE h.device_key = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![day_start, device_key], headset_row)
        .optional()?)
}

/// Names a headset (`None` clears the name); false when no headset has that device key.
pub fn rename(conn: &Connection, device_key: &str, name: Option<&str>) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("UPDATE headsets SET name = ?2 WHERE device_key = ?1")?
        .execute(params![device_key, name])?;
    Ok(changed > 0)
}
