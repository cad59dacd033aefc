//! The dashboard's reads as the bench times them: each is the store call a dashboard handler
//! makes, with what the handler passes (a period of whole days; the bench's time zone is UTC). The
//! read side times them through the reader pool; the dashboard readers loop them on the live file
//! during the headset load.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::synthetic::Loaded;
use super::timed;
use crate::store::dashboard::rollups::{self, Days, RankBy, Ranked, Ranking};
use crate::store::dashboard::{detail, kpis, tours};
use crate::store::{Store, StoreError};

/// The days the reads cover, as `period=90d` gives them.
const PERIOD_DAYS: i64 = 90;

/// The dashboard's `period=<days>d`: the last `days` days, today included; its first and last day,
/// and every day's first instant followed by the period's end.
fn last_days(days: i64) -> (String, String, Vec<i64>) {
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(days - 1);
    let starts = from.iter_days().take(days as usize + 1).map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis());
    (from.to_string(), to.to_string(), starts.collect())
}

/// One of the overview's top-ten lists, read as `GET /overview` reads it (by dwell).
fn overview_top(c: &Connection, days: Days, kind: &str, by_zone: bool, named_only: bool) -> Result<Vec<Ranked>, StoreError> {
    rollups::ranked(c, days, &Ranking { kind, by_zone, name: None, zone: None, named_only, order: RankBy::Dwell, limit: Some(10) })
}

/// One tour's events as `GET /sessions/{id}` reads them: the tour by our UUID, then every event in
/// order.
fn tour_events(c: &Connection, tour: &str) -> Result<(), StoreError> {
    let tour = tours::by_reference(c, tour)?.ok_or_else(|| StoreError::Internal(format!("tour {tour} is missing")))?;
    detail::each_event(c, tour.id, |_| Ok(true))
}

/// Times `QUERY_RUNS` runs of a store read, a fresh copy of `read` each run.
async fn timed_read<T, R>(store: &Store, read: R) -> Result<String, String>
where
    T: Send + 'static,
    R: Fn(&Connection) -> Result<T, StoreError> + Clone + Send + 'static,
{
    timed(|| store.read(read.clone())).await
}

/// The read side's query cells (p50/p95 ms), in the table's order: the overview's tours per day
/// (all properties), analytics/zones of one property, the overview's top POIs and top views, and
/// one tour's events.
pub(super) async fn timings(store: &Store, loaded: &Loaded) -> Result<[String; 5], String> {
    let (from, to, starts) = last_days(PERIOD_DAYS);
    let per_day = timed_read(store, move |c| kpis::period_tours(c, &starts, None)).await?;
    let (f, t, property) = (from.clone(), to.clone(), loaded.sample_property.clone());
    let zone = timed_read(store, move |c| rollups::zones(c, Days { from: &f, to: &t, property: Some(&property) })).await?;
    let top = |kind: &'static str, by_zone: bool, named_only: bool| {
        let (from, to) = (from.clone(), to.clone());
        move |c: &Connection| overview_top(c, Days { from: &from, to: &to, property: None }, kind, by_zone, named_only)
    };
    let pois = timed_read(store, top("poi", true, true)).await?;
    let views = timed_read(store, top("view", false, false)).await?;
    let tour = loaded.sample_tour.clone();
    let timeline = timed_read(store, move |c| tour_events(c, &tour)).await?;
    Ok([per_day, zone, pois, views, timeline])
}

/// A dashboard reader on the live file: loops the overview's tours per day and top POIs and views
/// and analytics/zones (all properties) until told to stop; answers each loop's time (µs).
pub(super) fn spawn_reader(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        let mut latencies = Vec::new();
        let Ok(conn) = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else { return latencies };
        let _ = conn.busy_timeout(Duration::from_secs(5));
        let (from, to, starts) = last_days(PERIOD_DAYS);
        let days = Days { from: &from, to: &to, property: None };
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let _ = kpis::period_tours(&conn, &starts, None);
            let _ = rollups::zones(&conn, days);
            let _ = overview_top(&conn, days, "poi", true, true);
            let _ = overview_top(&conn, days, "view", false, false);
            latencies.push(t.elapsed().as_micros() as u32);
            std::thread::sleep(Duration::from_millis(5));
        }
        latencies
    })
}
