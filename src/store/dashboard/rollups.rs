//! Views, POIs, unit selections and zones over a run of days, from the writer's daily roll-ups:
//! `daily_totals` (keyed kind, day) across properties, `daily_rollup` (keyed property, day) for
//! one property. Days are YYYY-MM-DD in the site time zone, both ends included.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use super::super::StoreError;

/// Which days and which property.
#[derive(Clone, Copy, Debug)]
pub struct Days<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub property: Option<&'a str>,
}

impl Days<'_> {
    /// The roll-up to read and its day (and property) condition, binding `?1`, `?2` (and `?3`).
    fn source(&self) -> (&'static str, &'static str, Vec<Value>) {
        let mut values = vec![Value::from(self.from.to_string()), Value::from(self.to.to_string())];
        match self.property {
            Some(property) => {
                values.push(Value::from(property.to_string()));
                ("daily_rollup", "property_id = ?3 AND day >= ?1 AND day <= ?2", values)
            }
            None => ("daily_totals", "day >= ?1 AND day <= ?2", values),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankBy {
    Visits,
    Dwell,
}

/// A ranking of one kind of event by name (and zone).
#[derive(Clone, Debug)]
pub struct Ranking<'a> {
    pub kind: &'a str,
    /// Rank (zone, name) pairs, not names alone.
    pub by_zone: bool,
    /// Only this name / only this zone.
    pub name: Option<&'a str>,
    pub zone: Option<&'a str>,
    /// Leave out events without a name (a POI category opened without a POI).
    pub named_only: bool,
    pub order: RankBy,
    pub limit: Option<i64>,
}

/// Events of one name (and zone): visits, their valid dwell time and how many had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranked {
    pub zone: String,
    pub name: String,
    pub events: i64,
    pub dwell_ms: i64,
    pub dwell_events: i64,
}

pub fn ranked(conn: &Connection, days: Days, ranking: &Ranking) -> Result<Vec<Ranked>, StoreError> {
    let (table, condition, mut values) = days.source();
    let mut bind = |value: &str| {
        values.push(Value::from(value.to_string()));
        format!("?{}", values.len())
    };
    let mut sql = format!(
        "SELECT {}, name, sum(events) AS visits, sum(dwell_ms) AS dwell, sum(dwell_events) FROM {table} WHERE {condition}",
        if ranking.by_zone { "zone" } else { "''" }
    );
    sql += &format!(" AND kind = {}", bind(ranking.kind));
    if let Some(name) = ranking.name {
        sql += &format!(" AND name = {}", bind(name));
    }
    if let Some(zone) = ranking.zone {
        sql += &format!(" AND zone = {}", bind(zone));
    }
    if ranking.named_only {
        sql += " AND name <> ''";
    }
    sql += if ranking.by_zone { " GROUP BY zone, name" } else { " GROUP BY name" };
    sql += match ranking.order {
        RankBy::Visits => " ORDER BY visits DESC, dwell DESC, name",
        RankBy::Dwell => " ORDER BY dwell DESC, visits DESC, name",
    };
    if let Some(limit) = ranking.limit {
        sql += &format!(" LIMIT {limit}");
    }
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), |r| {
        Ok(Ranked { zone: r.get(0)?, name: r.get(1)?, events: r.get(2)?, dwell_ms: r.get(3)?, dwell_events: r.get(4)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Events of one kind over the days.
pub fn kind_events(conn: &Connection, days: Days, kind: &str) -> Result<i64, StoreError> {
    let (table, condition, mut values) = days.source();
    values.push(Value::from(kind.to_string()));
    let sql = format!("SELECT coalesce(sum(events), 0) FROM {table} WHERE {condition} AND kind = ?{}", values.len());
    Ok(conn.prepare_cached(&sql)?.query_row(params_from_iter(values), |r| r.get(0))?)
}

/// One zone's events: all of them, their valid dwell, and tracking `zone_enter` / `zone_exit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneStats {
    pub zone: String,
    pub events: i64,
    pub dwell_ms: i64,
    pub dwell_events: i64,
    pub entries: i64,
    pub exits: i64,
}

/// The kinds whose zone is a place: a POI's parent, a tracking or flexible event's zone (a unit
/// selection's "zone" is its unit type; views have none).
pub const PLACE_KINDS: [&str; 4] = ["poi", "tracking", "custom", "connect"];

/// Events per zone, most visited first; tracking events without a zone count under `''`.
pub fn zones(conn: &Connection, days: Days) -> Result<Vec<ZoneStats>, StoreError> {
    let (table, condition, values) = days.source();
    let kinds = PLACE_KINDS.map(|k| format!("'{k}'")).join(", ");
    let sql = format!(
        "SELECT zone, sum(events) AS visits, sum(dwell_ms), sum(dwell_events),
             sum(CASE WHEN kind = 'tracking' AND name = 'zone_enter' THEN events ELSE 0 END),
             sum(CASE WHEN kind = 'tracking' AND name = 'zone_exit' THEN events ELSE 0 END)
         FROM {table} WHERE {condition} AND kind IN ({kinds}) AND (zone <> '' OR kind = 'tracking')
         GROUP BY zone ORDER BY visits DESC, zone"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(values), |r| {
        Ok(ZoneStats {
            zone: r.get(0)?,
            events: r.get(1)?,
            dwell_ms: r.get(2)?,
            dwell_events: r.get(3)?,
            entries: r.get(4)?,
            exits: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
