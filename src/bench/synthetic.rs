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
    /// Events in all; tours vary in size around `events_per_tour` (see [`load`]).
    pub events: u64,
    pub events_per_tour: u64,
    pub properties: u32,
    pub days: u32,
    pub end_ms: i64,
}

#[derive(Debug)]
pub struct Loaded {
    pub events: u64,
    pub tours: u64,
    /// A tour and a property that exist, for the per-tour and per-property queries.
    pub sample_tour: String,
    pub sample_property: String,
    /// The largest tour (ten times the mean, most of it one tracking batch) and its event count.
    pub large_tour: String,
    pub large_tour_events: u64,
    /// The headset's own id of one tour, for a search.
    pub sample_external_id: String,
}

const HEADSETS: u64 = 16;
const DEVICE_TYPES: &[&str] = &["Quest 3", "Quest Pro", "Pico 4"];

/// Tour sizes adding up to `spec.events`: every other tour uploads only its 20-80 views, POIs and
/// unit selections; the others also a tour-end tracking batch, so the mean stays
/// `events_per_tour`. The middle tour is ten times the mean.
fn tour_sizes(rng: &mut fastrand::Rng, spec: &SyntheticSpec) -> Vec<(u64, u64)> {
    let per = spec.events_per_tour.max(1);
    let estimate = spec.events.div_ceil(per) as usize;
    let (mut sizes, mut total) = (Vec::with_capacity(estimate + 16), 0u64);
    while total < spec.events {
        let interactive = rng.u64(20..=80);
        let tracking = match sizes.len() {
            n if n == estimate / 2 => (10 * per).saturating_sub(interactive),
            n if n % 2 == 1 => rng.u64(per..=3 * per).saturating_sub(50),
            _ => 0,
        };
        let left = spec.events - total;
        let interactive = interactive.min(left);
        let tracking = tracking.min(left - interactive);
        total += interactive + tracking;
        sizes.push((interactive, tracking));
    }
    sizes
}

/// Writes tours of headset events spread over `days` days, `properties` properties and 16
/// headsets, with the writer's roll-ups, the `headsets` table (as migration 4 backfills it, half
/// of them named) and ANALYZE. Views, POIs and unit selections get one inbox row each (as
/// headsets upload them), a tour's tracking events one tour-end batch. Tours last 30 s to 30
/// min (most under 10), 85% completed, 10% timed out, 5% abandoned; the last three are in
/// progress. synchronous=OFF: this is data preparation, not the path being measured.
pub fn load(path: &Path, spec: &SyntheticSpec) -> Result<Loaded, StoreError> {
    let conn = open_fresh(path, Durability::Normal)?;
    conn.execute_batch("PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;")?;
    let mut rng = fastrand::Rng::with_seed(42);
    let sizes = tour_sizes(&mut rng, spec);
    let tours = sizes.len();
    let span_ms = spec.days as i64 * 86_400_000;
    let mut rollup = Rollup::default();
    let mut loaded = Loaded {
        events: 0,
        tours: tours as u64,
        sample_tour: String::new(),
        sample_property: "property-0".into(),
        large_tour: String::new(),
        large_tour_events: 0,
        sample_external_id: String::new(),
    };
    let mut since_commit = 0u64;
    conn.execute_batch("BEGIN")?;
    for (tour, &(interactive, tracking)) in sizes.iter().enumerate() {
        let property = format!("property-{}", tour as u64 % spec.properties.max(1) as u64);
        let device = format!("headset-{:02}", tour as u64 % HEADSETS);
        let count = interactive + tracking;
        let in_progress = tour + 3 >= tours;
        let (started_at, duration_ms) = if in_progress {
            let started_at = spec.end_ms - (tours - tour) as i64 * 120_000;
            (started_at, spec.end_ms - 5_000 - started_at)
        } else {
            let duration_ms = 30_000 + (rng.f64().powi(2) * 1_770_000.0) as i64;
            (((spec.end_ms - span_ms) + tour as i64 * span_ms / tours as i64).min(spec.end_ms - duration_ms - 600_000), duration_ms)
        };
        let status = match (in_progress, rng.u32(0..100)) {
            (true, _) => "active",
            (_, 0..=84) => "completed",
            (_, 85..=94) => "timed_out",
            _ => "abandoned",
        };
        let step = duration_ms / count.max(1) as i64;
        let last_event_at = started_at + step * count.saturating_sub(1) as i64;
        let (uuid, external_id) = (Uuid::now_v7().to_string(), format!("{:032X}", rng.u128(..)));
        conn.prepare_cached(
            "INSERT INTO tour_sessions (uuid, external_id, device_key, status, started_at, ended_at, last_event_at,
                 duration_ms, customer_id, property_id, device_type, event_count, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?5, ?7)",
        )?
        .execute(params![
            uuid,
            external_id,
            device,
            status,
            started_at,
            (!in_progress).then_some(started_at + duration_ms),
            last_event_at,
            (!in_progress).then_some(duration_ms),
            (rng.u32(0..10) < 6).then(|| format!("CUST-{:05}", rng.u32(..20_000))),
            property,
            DEVICE_TYPES[rng.usize(..DEVICE_TYPES.len())],
            count as i64
        ])?;
        let tour_id = conn.last_insert_rowid();
        if tour == tours / 2 + 1 || loaded.sample_tour.is_empty() && tour + 1 == tours {
            loaded.sample_tour = uuid.clone();
        }
        if tour == tours / 3 {
            loaded.sample_external_id = external_id.clone();
        }
        if count > loaded.large_tour_events {
            (loaded.large_tour, loaded.large_tour_events) = (uuid, count);
        }
        let mut inbox = conn.prepare_cached(INSERT_INBOX)?;
        let mut insert = conn.prepare_cached(INSERT_EVENT)?;
        let mut add_inbox = |at: i64, endpoint: &str, body: Vec<u8>, detail: &str, stored: u64| {
            let params = params![
                at,
                endpoint,
                "192.168.1.20:50123",
                device,
                "application/json",
                body,
                201,
                "stored",
                detail,
                stored as i64,
                tour_id,
                None::<String>
            ];
            inbox.execute(params).map(|_| conn.last_insert_rowid())
        };
        for i in 0..interactive {
            let row = synthetic_row(&mut rng, started_at + i as i64 * step);
            let body = format!("{{\n\t\"View\": \"{}\",\n\t\"TotalDuration\": \"0:{:02}\"\n}}", row.name, row.dwell_ms / 1000 % 60);
            let inbox_id = add_inbox(row.occurred_at, "POST /api/v1/unreal/session", body.into_bytes(), row.kind, 1)?;
            insert_row(&mut insert, &row, tour_id, inbox_id)?;
            let key = RollupKey { at: row.occurred_at, property: Some(&property), kind: row.kind, zone: row.zone, name: Some(row.name) };
            rollup.add(chrono_tz::UTC, key, Some(row.dwell_ms), 1);
        }
        if tracking > 0 {
            // The buyer stays in a zone for a while: 20-200 samples (10-100 s) at a time.
            let (mut zone, mut left) = (ZONES[0], 0);
            let rows: Vec<Row> = (interactive..count)
                .map(|i| {
                    if left == 0 {
                        (zone, left) = (ZONES[rng.usize(..ZONES.len())], rng.u32(20..200));
                    }
                    left -= 1;
                    Row { zone: Some(zone), ..tracking_row(&mut rng, started_at + i as i64 * step) }
                })
                .collect();
            let inbox_id = add_inbox(
                last_event_at,
                "POST /api/v1/unreal/tracking/batch",
                batch_body(&external_id, &rows),
                "tracking batch",
                tracking,
            )?;
            for row in &rows {
                insert_row(&mut insert, row, tour_id, inbox_id)?;
                let key =
                    RollupKey { at: row.occurred_at, property: Some(&property), kind: row.kind, zone: row.zone, name: Some(row.name) };
                rollup.add(chrono_tz::UTC, key, Some(row.dwell_ms), 1);
            }
        }
        loaded.events += count;
        since_commit += count;
        if since_commit >= 200_000 {
            conn.execute_batch("COMMIT; BEGIN")?;
            since_commit = 0;
        }
    }
    rollup.flush(&conn)?;
    conn.execute(
        "INSERT INTO headsets (device_key, first_seen_at, last_seen_at, last_tour_id)
         SELECT device_key, min(started_at), max(last_event_at), max(id) FROM tour_sessions GROUP BY device_key",
        [],
    )?;
    conn.execute("UPDATE headsets SET name = 'Showroom ' || (substr(device_key, 9) + 1) WHERE substr(device_key, 9) % 2 = 0", [])?;
    conn.execute_batch("COMMIT; PRAGMA analysis_limit=1000; ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(loaded)
}

/// A tour-end tracking batch as headsets send it (about 200 bytes an event).
fn batch_body(session: &str, rows: &[Row]) -> Vec<u8> {
    use std::fmt::Write;
    let mut body = format!("{{\"session_id\": \"{session}\", \"events\": [");
    for (i, row) in rows.iter().enumerate() {
        let _ = write!(
            body,
            "{}{{\"event_type\": \"gaze\", \"timestamp\": {:.3}, \"zone_name\": \"{}\", \"gaze_target\": \"window\", \"dwell_time_ms\": {}, \"position\": {{\"x\": 1.5, \"y\": 2.0, \"z\": -3.25}}}}",
            if i == 0 { "" } else { "," },
            row.occurred_at as f64 / 1000.0,
            row.zone.unwrap_or_default(),
            row.dwell_ms
        );
    }
    body.push_str("]}");
    body.into_bytes()
}

/// Lets `nexero bench` call the dashboard API: a read-only API token named `name` whose secret's
/// SHA-256 is `token_hash`, written straight into the (not yet served) database.
pub fn add_api_token(path: &Path, name: &str, token_hash: &[u8]) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    conn.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3)", params![name, token_hash, now_ms()])?;
    Ok(())
}
