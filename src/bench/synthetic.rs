//! Synthetic data for `nexero bench`: a bulk loader that writes tours, inbox rows, events and the
//! roll-up exactly as the writer lays them out (same statements), and the raw-insert ceiling.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use uuid::Uuid;

use crate::config::Durability;
use crate::store::rollup::{Rollup, RollupKey};
use crate::store::{backup_dir, configure, migrate, now_ms, StoreError, INSERT_EVENT, INSERT_INBOX};

const VIEWS: &[&str] = &["Home", "Location", "Amenities", "Floor_Plan", "Unit_Overview", "Balcony_View", "Lobby"];
const ZONES: &[&str] = &["Location", "Amenities", "Unit_A", "Unit_B", "Clubhouse", "Podium"];
const POIS: &[&str] = &[
    "", "Gym", "Pool", "Spa", "Garden", "Kids_Play", "Jogging_Track", "Kitchen", "Master_Bedroom", "Living_Room",
    "Balcony", "Bathroom", "Study", "Lift_Lobby", "Parking", "Clubhouse_Hall", "Metro", "School", "Hospital", "Mall",
];
const SOURCES: &[&str] = &["", "Floating", "NavBar"];

/// One synthetic event row, bound in the writer's column order.
struct Row {
    uuid: [u8; 16],
    kind: &'static str,
    dedupe_key: Option<i64>,
    name: &'static str,
    zone: Option<&'static str>,
    source: Option<&'static str>,
    occurred_at: i64,
    dwell_ms: i64,
}

fn synthetic_row(rng: &mut fastrand::Rng, at: i64) -> Row {
    let roll = rng.u32(0..100);
    let dwell_ms = rng.i64(1..120) * 1000;
    let (kind, name, zone, source) = match roll {
        0..=39 => ("view", VIEWS[rng.usize(..VIEWS.len())], None, None),
        40..=94 => ("poi", POIS[rng.usize(..POIS.len())], Some(ZONES[rng.usize(..ZONES.len())]), Some(SOURCES[rng.usize(..3)])),
        _ => ("unit_selection", "A-101", Some("2BHK"), None),
    };
    Row { uuid: *Uuid::now_v7().as_bytes(), kind, dedupe_key: None, name, zone, source, occurred_at: at, dwell_ms }
}

/// A tracking event as a tour-end batch carries it: with a resend key, as the writer stores it.
fn tracking_row(rng: &mut fastrand::Rng, at: i64) -> Row {
    Row {
        uuid: *Uuid::now_v7().as_bytes(),
        kind: "tracking",
        dedupe_key: Some(rng.i64(..)),
        name: "gaze",
        zone: Some(ZONES[rng.usize(..ZONES.len())]),
        source: None,
        occurred_at: at,
        dwell_ms: rng.i64(500..5000),
    }
}

fn insert_row(statement: &mut rusqlite::CachedStatement, row: &Row, tour: i64, inbox: i64) -> Result<(), StoreError> {
    let seconds = row.dwell_ms / 1000;
    statement.execute(params![
        row.uuid.as_slice(),
        tour,
        inbox,
        row.kind,
        row.kind,
        row.name,
        row.zone,
        row.source,
        row.occurred_at,
        row.occurred_at,
        format!("{}:{:02}", seconds / 60, seconds % 60),
        row.dwell_ms,
        None::<String>,
        None::<String>,
        None::<String>,
        None::<String>,
        None::<f64>,
        None::<f64>,
        None::<f64>,
        None::<f64>,
        None::<f64>,
        None::<f64>,
        None::<String>,
        row.dedupe_key,
    ])?;
    Ok(())
}

fn open_fresh(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    configure(&conn, durability)?;
    migrate(&mut conn, &backup_dir(path))?;
    Ok(conn)
}

/// Inserts `rows` tracking-event rows (with resend keys, as batches store them) with the writer's
/// statement into a fresh file with the full schema, `per_transaction` rows per commit; returns
/// the time spent inserting (rows are made first).
pub fn raw_insert_ceiling(path: &Path, rows: usize, per_transaction: usize, durability: Durability) -> Result<Duration, StoreError> {
    let conn = open_fresh(path, durability)?;
    conn.execute(
        "INSERT INTO tour_sessions (uuid, device_key, status, started_at, last_event_at, created_at, updated_at)
         VALUES (?1, 'bench', 'active', 0, 0, 0, 0)",
        [Uuid::now_v7().to_string()],
    )?;
    conn.execute(INSERT_INBOX, params![0, "bench", "", "bench", None::<String>, b"{}".to_vec(), 202, "stored", "", 0, 1, None::<String>])?;
    let mut rng = fastrand::Rng::with_seed(7);
    let now = now_ms();
    let prepared: Vec<Row> = (0..rows).map(|i| tracking_row(&mut rng, now + i as i64)).collect();
    let started = Instant::now();
    for chunk in prepared.chunks(per_transaction) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut insert = conn.prepare_cached(INSERT_EVENT)?;
            for row in chunk {
                insert_row(&mut insert, row, 1, 1)?;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(started.elapsed())
}

pub struct SyntheticSpec {
    pub events: u64,
    pub events_per_tour: u64,
    pub properties: u32,
    pub days: u32,
    pub end_ms: i64,
}

#[derive(Debug)]
pub struct Loaded {
    pub events: u64,
    /// A tour and a property that exist, for the per-tour and per-property queries.
    pub sample_tour: String,
    pub sample_property: String,
}

/// Writes tours of headset events (one inbox row per event, as headsets upload them), spread
/// over `days` days and `properties` properties, with their roll-up. Durability NORMAL: this is
/// data preparation, not the path being measured.
pub fn load(path: &Path, spec: &SyntheticSpec) -> Result<Loaded, StoreError> {
    let conn = open_fresh(path, Durability::Normal)?;
    let mut rng = fastrand::Rng::with_seed(42);
    let tours = spec.events.div_ceil(spec.events_per_tour);
    let span_ms = spec.days as i64 * 86_400_000;
    let mut rollup = Rollup::default();
    let mut sample_tour = String::new();
    let mut written = 0u64;
    conn.execute_batch("BEGIN")?;
    for tour in 0..tours {
        let property = format!("property-{}", tour % spec.properties as u64);
        let started_at = spec.end_ms - span_ms + (tour as i64 * span_ms / tours as i64);
        let count = spec.events_per_tour.min(spec.events - written);
        let uuid = Uuid::now_v7().to_string();
        conn.prepare_cached(
            "INSERT INTO tour_sessions (uuid, external_id, device_key, status, started_at, ended_at, last_event_at,
                 duration_ms, property_id, event_count, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'completed', ?4, ?5, ?5, ?6, ?7, ?8, ?4, ?5)",
        )?
        .execute(params![
            uuid,
            format!("{:032X}", rng.u128(..)),
            format!("headset-{}", tour % 12),
            started_at,
            started_at + count as i64 * 1000,
            count as i64 * 1000,
            property,
            count as i64
        ])?;
        let tour_id = conn.last_insert_rowid();
        if tour == tours / 2 {
            sample_tour = uuid;
        }
        let mut inbox = conn.prepare_cached(INSERT_INBOX)?;
        let mut insert = conn.prepare_cached(INSERT_EVENT)?;
        for i in 0..count {
            let row = synthetic_row(&mut rng, started_at + i as i64 * 1000);
            let body = format!("{{\n\t\"View\": \"{}\",\n\t\"TotalDuration\": \"0:{:02}\"\n}}", row.name, row.dwell_ms / 1000 % 60);
            inbox.execute(params![
                row.occurred_at,
                "POST /api/v1/unreal/session",
                "192.168.1.20:50123",
                "headset",
                "application/json",
                body.into_bytes(),
                201,
                "stored",
                row.kind,
                1,
                tour_id,
                None::<String>
            ])?;
            insert_row(&mut insert, &row, tour_id, conn.last_insert_rowid())?;
            let key = RollupKey { at: row.occurred_at, property: Some(&property), kind: row.kind, zone: row.zone, name: Some(row.name) };
            rollup.add(chrono_tz::UTC, key, Some(row.dwell_ms), 1);
        }
        written += count;
        if tour % 100 == 99 {
            conn.execute_batch("COMMIT; BEGIN")?;
        }
    }
    rollup.flush(&conn)?;
    conn.execute_batch("COMMIT; PRAGMA analysis_limit=1000; ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(Loaded { events: written, sample_tour, sample_property: "property-0".into() })
}
