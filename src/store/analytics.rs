//! The read queries a dashboard needs, on the roll-up and the tour table (never a scan of raw
//! events), and one tour's timeline on its index.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Serialize)]
pub struct DayCount {
    pub day: String,
    pub tours: i64,
}

#[derive(Debug, Serialize)]
pub struct ZoneDwell {
    pub zone: String,
    pub events: i64,
    pub dwell_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct NameCount {
    pub name: String,
    pub events: i64,
    pub dwell_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct TimelineEvent {
    pub occurred_at: i64,
    pub kind: String,
    pub event_type: String,
    pub name: Option<String>,
    pub zone: Option<String>,
    pub dwell_ms: Option<i64>,
}

/// Tours started per day since `since_ms`; days in the site time zone, given as its UTC offset.
pub fn tours_per_day(conn: &Connection, since_ms: i64, utc_offset_secs: i64) -> Result<Vec<DayCount>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT date(started_at / 1000 + ?2, 'unixepoch') AS day, count(*) FROM tour_sessions
         WHERE started_at >= ?1 GROUP BY day ORDER BY day",
    )?;
    let rows = statement.query_map(params![since_ms, utc_offset_secs], |r| Ok(DayCount { day: r.get(0)?, tours: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Visits and dwell per zone of one property over days `from_day..=to_day` (YYYY-MM-DD).
pub fn zone_dwell(conn: &Connection, property_id: &str, from_day: &str, to_day: &str) -> Result<Vec<ZoneDwell>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT zone, sum(events), sum(dwell_ms) FROM daily_rollup
         WHERE property_id = ?1 AND day BETWEEN ?2 AND ?3 AND zone <> ''
         GROUP BY zone ORDER BY 3 DESC",
    )?;
    let rows = statement
        .query_map(params![property_id, from_day, to_day], |r| Ok(ZoneDwell { zone: r.get(0)?, events: r.get(1)?, dwell_ms: r.get(2)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The most visited names of one kind ("poi", "view", ...) over all properties.
pub fn top_names(conn: &Connection, kind: &str, from_day: &str, to_day: &str, limit: usize) -> Result<Vec<NameCount>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT name, sum(events) AS n, sum(dwell_ms) FROM daily_totals
         WHERE kind = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY name ORDER BY n DESC LIMIT ?4",
    )?;
    let rows = statement.query_map(params![kind, from_day, to_day, limit as i64], |r| {
        Ok(NameCount { name: r.get(0)?, events: r.get(1)?, dwell_ms: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every event of one tour (by our UUID), in order.
pub fn tour_timeline(conn: &Connection, tour_uuid: &str) -> Result<Vec<TimelineEvent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT e.occurred_at, e.kind, e.event_type, e.name, e.zone, e.dwell_ms
         FROM tour_sessions t JOIN events e ON e.session_id = t.id
         WHERE t.uuid = ?1 ORDER BY e.occurred_at",
    )?;
    let rows = statement.query_map([tour_uuid], |r| {
        Ok(TimelineEvent {
            occurred_at: r.get(0)?,
            kind: r.get(1)?,
            event_type: r.get(2)?,
            name: r.get(3)?,
            zone: r.get(4)?,
            dwell_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
