//! The daily roll-ups the dashboard reads instead of raw events: deltas are gathered per request,
//! kept only if the request succeeds, and written once per key just before the group's commit.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::upload::WriteCtx;
use super::StoreError;

/// Where one event counts in the roll-ups.
pub(crate) struct RollupKey<'a> {
    pub at: i64,
    pub property: Option<&'a str>,
    pub kind: &'a str,
    pub zone: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// (property, day, kind, zone, name): the per-property roll-up's key; totals drop the property.
type RollupCell = (String, String, String, String, String);

/// Roll-up deltas gathered over one request and written once per key: (events, dwell ms,
/// events with a dwell).
#[derive(Default)]
pub(crate) struct Rollup {
    deltas: HashMap<u64, (RollupCell, [i64; 3])>,
    /// The day of the last 15-minute slot seen: every time zone offset is a multiple of 15 min.
    last_day: Option<(i64, String)>,
}

impl Rollup {
    pub(crate) fn add(&mut self, tz: chrono_tz::Tz, key: RollupKey, dwell_ms: Option<i64>, sign: i64) {
        let slot = key.at.div_euclid(900_000);
        if self.last_day.as_ref().is_none_or(|(s, _)| *s != slot) {
            let day = chrono::DateTime::from_timestamp_millis(key.at)
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            self.last_day = Some((slot, day));
        }
        let day = self.last_day.as_ref().map(|(_, d)| d.as_str()).unwrap_or_default();
        let parts = [key.property.unwrap_or_default(), day, key.kind, key.zone.unwrap_or_default(), key.name.unwrap_or_default()];
        // Hash the borrowed parts; the owned key is built only the first time it is seen.
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for part in parts {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        let (_, counts) = self.deltas.entry(hasher.digest()).or_insert_with(|| {
            let [property, day, kind, zone, name] = parts.map(str::to_string);
            ((property, day, kind, zone, name), [0; 3])
        });
        counts[0] += sign;
        if let Some(ms) = dwell_ms {
            counts[1] += sign * ms;
            counts[2] += sign;
        }
    }

    pub(crate) fn merge(&mut self, other: Rollup) {
        for (hash, (cell, [events, dwell, dwell_events])) in other.deltas {
            let (_, counts) = self.deltas.entry(hash).or_insert_with(|| (cell, [0; 3]));
            counts[0] += events;
            counts[1] += dwell;
            counts[2] += dwell_events;
        }
    }

    pub(crate) fn flush(self, conn: &Connection) -> Result<(), StoreError> {
        let mut per_property = conn.prepare_cached(
            "INSERT INTO daily_rollup (property_id, day, kind, zone, name, events, dwell_ms, dwell_events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (property_id, day, kind, zone, name) DO UPDATE SET
                 events = events + excluded.events, dwell_ms = dwell_ms + excluded.dwell_ms,
                 dwell_events = dwell_events + excluded.dwell_events",
        )?;
        let mut totals = conn.prepare_cached(
            "INSERT INTO daily_totals (day, kind, zone, name, events, dwell_ms, dwell_events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (kind, day, zone, name) DO UPDATE SET
                 events = events + excluded.events, dwell_ms = dwell_ms + excluded.dwell_ms,
                 dwell_events = dwell_events + excluded.dwell_events",
        )?;
        for ((property, day, kind, zone, name), [events, dwell, dwell_events]) in self.deltas.into_values() {
            per_property.execute(params![property, day, kind, zone, name, events, dwell, dwell_events])?;
            totals.execute(params![day, kind, zone, name, events, dwell, dwell_events])?;
        }
        Ok(())
    }
}

/// Adds (`sign` 1) or removes (-1) a whole tour's events from the roll-up under `property`.
pub(super) fn refile_tour(ctx: &mut WriteCtx, tour_id: i64, property: Option<&str>, sign: i64) -> Result<(), StoreError> {
    let mut rows = ctx.conn.prepare_cached(
        "SELECT occurred_at, kind, zone, coalesce(name, event_type), dwell_ms FROM events WHERE session_id = ?1",
    )?;
    let mut rows = rows.query([tour_id])?;
    while let Some(r) = rows.next()? {
        let (at, kind, zone, name, dwell): (i64, String, Option<String>, Option<String>, Option<i64>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let key = RollupKey { at, property, kind: &kind, zone: zone.as_deref(), name: name.as_deref() };
        ctx.rollup.add(ctx.options.tz, key, dwell, sign);
    }
    Ok(())
}

