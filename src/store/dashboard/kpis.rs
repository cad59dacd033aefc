//! Tours counted per day of a period: one range read of `tour_sessions` on its start index,
//! bucketed by the period's day boundaries (days in the site time zone, so a day is not always
//! 24 hours).

use std::collections::HashSet;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};

use super::super::StoreError;

/// A tour of at least this many milliseconds is "engaged".
pub const ENGAGED_MS: i64 = 180_000;
/// A tour of at least this many milliseconds shows "high intent".
pub const HIGH_INTENT_MS: i64 = 600_000;

/// What the tours started on one day (or a whole period) add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TourCounts {
    pub tours: i64,
    /// Tours with a duration (ended ones); the average is over these.
    pub timed: i64,
    pub duration_ms: i64,
    pub engaged: i64,
    pub high_intent: i64,
    /// Tours with an end time (the old backend's "completed").
    pub ended: i64,
}

impl TourCounts {
    pub fn add(&mut self, other: &TourCounts) {
        self.tours += other.tours;
        self.timed += other.timed;
        self.duration_ms += other.duration_ms;
        self.engaged += other.engaged;
        self.high_intent += other.high_intent;
        self.ended += other.ended;
    }

    /// Mean duration in seconds of the tours that have one (0 when none has).
    pub fn mean_seconds(&self) -> f64 {
        if self.timed == 0 {
            0.0
        } else {
            self.duration_ms as f64 / self.timed as f64 / 1000.0
        }
    }
}

/// A period's tours per day, and its distinct headsets and customers.
#[derive(Clone, Debug, Default)]
pub struct PeriodTours {
    pub days: Vec<TourCounts>,
    pub headsets: i64,
    pub customers: i64,
}

impl PeriodTours {
    pub fn total(&self) -> TourCounts {
        let mut total = TourCounts::default();
        self.days.iter().for_each(|d| total.add(d));
        total
    }
}

/// The tours started in each day of a period. `day_starts` is every day's first instant, in
/// order, followed by the instant the period ends; `property` narrows to one property.
pub fn period_tours(conn: &Connection, day_starts: &[i64], property: Option<&str>) -> Result<PeriodTours, StoreError> {
    let (Some(&from), Some(&to)) = (day_starts.first(), day_starts.last()) else { return Ok(PeriodTours::default()) };
    let mut period = PeriodTours { days: vec![TourCounts::default(); day_starts.len().saturating_sub(1)], ..Default::default() };
    let (mut headsets, mut customers) = (HashSet::<Vec<u8>>::new(), HashSet::<Vec<u8>>::new());
    // Two statements, so that a property's tours are read on the property's own index.
    let sql = format!(
        "SELECT started_at, duration_ms, ended_at IS NOT NULL, device_key, customer_id FROM tour_sessions
         WHERE started_at >= ?1 AND started_at < ?2{}",
        if property.is_some() { " AND property_id = ?3" } else { "" }
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = match property {
        Some(property) => statement.query(params![from, to, property])?,
        None => statement.query(params![from, to])?,
    };
    while let Some(r) = rows.next()? {
        let started_at: i64 = r.get(0)?;
        let day = day_starts.partition_point(|&start| start <= started_at).saturating_sub(1);
        let Some(counts) = period.days.get_mut(day) else { continue };
        let duration: Option<i64> = r.get(1)?;
        counts.tours += 1;
        counts.ended += r.get::<_, bool>(2)? as i64;
        if let Some(ms) = duration {
            counts.timed += 1;
            counts.duration_ms += ms;
            counts.engaged += (ms >= ENGAGED_MS) as i64;
            counts.high_intent += (ms >= HIGH_INTENT_MS) as i64;
        }
        // Distinct keys, copied only the first time they are seen.
        for (column, seen) in [(3, &mut headsets), (4, &mut customers)] {
            if let ValueRef::Text(key) = r.get_ref(column)? {
                if !seen.contains(key) {
                    seen.insert(key.to_vec());
                }
            }
        }
    }
    period.headsets = headsets.len() as i64;
    period.customers = customers.len() as i64;
    Ok(period)
}
