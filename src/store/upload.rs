//! Write side of ingest, run on the writer thread: the inbox row, tour attribution, events and
//! the daily roll-up, all in the caller's savepoint.
//!
//! Real headsets send no session id on events, so a tour is the run of events from one device
//! (device key header, else client address) until its summary arrives or it goes idle. An id on
//! the event (`sesh_id`, `session_id`) wins over that.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::queries::{tour_info, tour_info_row, TOUR_INFO_COLUMNS};
use super::writer::WriteCtx;
use super::StoreError;
use crate::model::{Action, Applied, DwellInput, NewEvent, SessionSummary, TourInfo, UploadMeta};

/// How every event row is written (the benchmark's raw-insert ceiling uses the same statement).
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (uuid, session_id, inbox_id, kind, event_type, name, zone, source, occurred_at,
         received_at, dwell_text, dwell_ms, dwell_invalid, object_name, gaze_target, interaction_type,
         pos_x, pos_y, pos_z, rot_pitch, rot_yaw, rot_roll, data, dedupe_key)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
             ?22, ?23, ?24)
     ON CONFLICT DO NOTHING";

/// How every upload is kept.
pub(super) const INSERT_INBOX: &str =
    "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, content_type, body, status, outcome,
         detail, events_stored, session_id, idempotency_key)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Slack allowed between a dwell time and the tour's own length (clock granularity, rounding).
const TOUR_LENGTH_SLACK_MS: i64 = 60_000;

/// The open tour of each device, as committed. Cleared whenever a write is rolled back.
#[derive(Default)]
pub struct Cache {
    active: HashMap<String, ActiveTour>,
}

#[derive(Clone, Debug)]
struct ActiveTour {
    id: i64,
    last_event_at: i64,
    external_id: Option<String>,
    started_at: i64,
    property_id: Option<String>,
}

impl ActiveTour {
    fn row(&self) -> TourRow {
        TourRow { id: self.id, started_at: self.started_at, property_id: self.property_id.clone() }
    }
}

#[derive(Clone, Debug)]
struct TourRow {
    id: i64,
    started_at: i64,
    property_id: Option<String>,
}

pub fn apply(ctx: &mut WriteCtx, meta: UploadMeta, action: Action) -> Result<Applied, StoreError> {
    apply_to(ctx, &meta, None, action)
}

/// Applies a parse of an upload already in the inbox (`nexero reprocess`).
pub fn reapply(ctx: &mut WriteCtx, inbox_id: i64, meta: UploadMeta, action: Action) -> Result<Applied, StoreError> {
    apply_to(ctx, &meta, Some(inbox_id), action)
}

fn apply_to(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: Action) -> Result<Applied, StoreError> {
    let at = meta.received_at;
    let device = meta.device_key.as_str();
    let mut applied = Applied::default();
    let tour = match action {
        Action::Rejected { status, reason } => {
            applied.inbox_id = record_inbox(ctx.conn, meta, existing, status, "rejected", &reason, 0, None)?;
            return Ok(applied);
        }
        Action::Startup => {
            if let Some(tour) = device_tour(ctx, device)? {
                close_tour(ctx, tour.id, "abandoned", tour.last_event_at)?;
            }
            applied.inbox_id = record_inbox(ctx.conn, meta, existing, meta.ok_status, "ignored", "startup packet", 0, None)?;
            return Ok(applied);
        }
        Action::Heartbeat { session_ref } => match find_tour(ctx.conn, &session_ref)? {
            None => {
                applied.session_missing = true;
                applied.inbox_id = record_inbox(ctx.conn, meta, existing, 404, "rejected", "heartbeat: unknown session", 0, None)?;
                return Ok(applied);
            }
            Some(tour) => {
                applied.inbox_id = record_inbox(ctx.conn, meta, existing, meta.ok_status, "stored", "heartbeat", 0, Some(tour.id))?;
                touch_tour(ctx, tour.id, at, 0)?
            }
        },
        Action::StartTour(summary) => {
            let id = start_tour(ctx, device, &summary, at)?;
            applied.inbox_id = record_inbox(ctx.conn, meta, existing, meta.ok_status, "stored", "session start", 0, Some(id))?;
            tour_info(ctx.conn, id)?
        }
        Action::Summary(summary) => {
            let id = close_with_summary(ctx, device, &summary, at)?;
            let detail = summary_detail(&summary);
            applied.inbox_id = record_inbox(ctx.conn, meta, existing, meta.ok_status, "stored", &detail, 0, Some(id))?;
            tour_info(ctx.conn, id)?
        }
        Action::Events { session_ref, events } => {
            let stored = store_events(ctx, meta, existing, session_ref.as_deref(), events)?;
            (applied.inbox_id, applied.stored, applied.duplicates) = (stored.inbox_id, stored.stored, stored.duplicates);
            stored.tour
        }
    };
    applied.tour = Some(tour);
    Ok(applied)
}

fn summary_detail(summary: &SessionSummary) -> String {
    if summary.warnings.is_empty() {
        "session summary".into()
    } else {
        format!("session summary; {}", summary.warnings.join("; "))
    }
}

struct StoredEvents {
    inbox_id: i64,
    stored: usize,
    duplicates: usize,
    /// The tour of the upload's first event.
    tour: TourInfo,
}

fn store_events(
    ctx: &mut WriteCtx,
    meta: &UploadMeta,
    existing: Option<i64>,
    upload_ref: Option<&str>,
    events: Vec<NewEvent>,
) -> Result<StoredEvents, StoreError> {
    let at = meta.received_at;
    let sent = events.len();
    // Resolve every event's tour first: the inbox row names the upload's tour.
    let mut tours: Vec<TourRow> = Vec::new();
    let mut event_tours = Vec::with_capacity(events.len());
    {
        let mut by_reference: HashMap<Option<&str>, usize> = HashMap::new();
        for event in &events {
            let reference = event.session_ref.as_deref().or(upload_ref);
            let index = match by_reference.get(&reference) {
                Some(index) => *index,
                None => {
                    let backdate = match &event.dwell {
                        Some(DwellInput::Duration { parsed: Ok(ms), .. }) if *ms <= ctx.options.max_dwell_ms => *ms,
                        _ => 0,
                    };
                    tours.push(resolve_tour(ctx, &meta.device_key, reference, at, backdate)?);
                    by_reference.insert(reference, tours.len() - 1);
                    tours.len() - 1
                }
            };
            event_tours.push(index);
        }
    }
    let first_tour = match event_tours.first() {
        Some(index) => tours[*index].id,
        // An empty batch still names (or opens) its tour, so the answer can report it.
        None => resolve_tour(ctx, &meta.device_key, upload_ref, at, 0)?.id,
    };
    let detail = events.first().map(|e| e.kind.as_str()).unwrap_or("empty batch");
    let inbox_id =
        record_inbox(ctx.conn, meta, existing, meta.ok_status, "stored", detail, sent as i64, Some(first_tour))?;

    let mut per_tour: HashMap<i64, i64> = HashMap::new();
    let mut stored = 0usize;
    let mut insert = ctx.conn.prepare_cached(INSERT_EVENT)?;
    for (event, index) in events.into_iter().zip(event_tours) {
        let tour = &tours[index];
        let dwell = resolve_dwell(ctx.conn, ctx.options.max_dwell_ms, tour, &event)?;
        let occurred_at = event.occurred_at.or(dwell.ended_at).unwrap_or(at);
        let detail = event.tracking.unwrap_or_default();
        let position = detail.position.map(|p| p.map(Some)).unwrap_or([None; 3]);
        let rotation = detail.rotation.map(|r| r.map(Some)).unwrap_or([None; 3]);
        let inserted = insert.execute(params![
            Uuid::now_v7().as_bytes().as_slice(),
            tour.id,
            inbox_id,
            event.kind.as_str(),
            event.event_type,
            event.name,
            event.zone,
            event.source,
            occurred_at,
            at,
            dwell.text,
            dwell.ms,
            dwell.invalid,
            detail.object_name,
            detail.gaze_target,
            detail.interaction_type,
            position[0],
            position[1],
            position[2],
            rotation[0],
            rotation[1],
            rotation[2],
            event.data,
            event.dedupe_key,
        ])?;
        if inserted == 0 {
            continue;
        }
        stored += 1;
        *per_tour.entry(tour.id).or_default() += 1;
        let key = RollupKey {
            at: occurred_at,
            property: tour.property_id.as_deref(),
            kind: event.kind.as_str(),
            zone: event.zone.as_deref(),
            name: event.name.as_deref().or(Some(&event.event_type)),
        };
        ctx.rollup.add(ctx.options.tz, key, dwell.ms, 1);
    }
    drop(insert);
    let mut first_tour_info = None;
    for tour in &tours {
        let info = touch_tour(ctx, tour.id, at, per_tour.get(&tour.id).copied().unwrap_or(0))?;
        if tour.id == first_tour {
            first_tour_info = Some(info);
        }
    }
    let duplicates = sent - stored;
    if duplicates > 0 {
        ctx.conn.execute(
            "UPDATE inbox SET events_stored = ?2, outcome = CASE WHEN ?2 = 0 THEN 'duplicate' ELSE 'stored' END,
                 detail = detail || ?3 WHERE id = ?1",
            params![inbox_id, stored as i64, format!("; {duplicates} already stored")],
        )?;
    }
    let tour = match first_tour_info {
        Some(info) => info,
        None => tour_info(ctx.conn, first_tour)?,
    };
    Ok(StoredEvents { inbox_id, stored, duplicates, tour })
}

struct ResolvedDwell {
    text: Option<String>,
    ms: Option<i64>,
    invalid: Option<String>,
    ended_at: Option<i64>,
}

fn resolve_dwell(conn: &Connection, max_dwell_ms: i64, tour: &TourRow, event: &NewEvent) -> Result<ResolvedDwell, StoreError> {
    let none = ResolvedDwell { text: None, ms: None, invalid: None, ended_at: None };
    let Some(dwell) = &event.dwell else { return Ok(none) };
    let judge = |ms: i64| {
        if ms > max_dwell_ms {
            (None, Some(format!("longer than max_dwell_secs ({} s): an uninitialised headset timer", max_dwell_ms / 1000)))
        } else {
            (Some(ms), None)
        }
    };
    Ok(match dwell {
        DwellInput::Duration { text, parsed: Ok(ms) } => {
            let (ms, invalid) = judge(*ms);
            ResolvedDwell { text: Some(text.clone()), ms, invalid, ended_at: None }
        }
        DwellInput::Duration { text, parsed: Err(e) } => {
            ResolvedDwell { text: Some(text.clone()), ms: None, invalid: Some(e.clone()), ended_at: None }
        }
        DwellInput::EndedAt { text, at_ms } => {
            // The time since the previous event of the same kind in this tour (else the tour start).
            let previous: Option<i64> = conn
                .prepare_cached(
                    "SELECT max(occurred_at) FROM events WHERE session_id = ?1 AND kind = ?2 AND occurred_at <= ?3",
                )?
                .query_row(params![tour.id, event.kind.as_str(), at_ms], |r| r.get(0))?;
            let since = previous.unwrap_or(tour.started_at).min(*at_ms);
            let (ms, invalid) = judge(at_ms - since);
            ResolvedDwell { text: Some(text.clone()), ms, invalid, ended_at: Some(*at_ms) }
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn record_inbox(
    conn: &Connection,
    meta: &UploadMeta,
    existing: Option<i64>,
    status: u16,
    outcome: &str,
    detail: &str,
    events: i64,
    session_id: Option<i64>,
) -> Result<i64, StoreError> {
    if let Some(id) = existing {
        conn.prepare_cached(
            "UPDATE inbox SET status = ?2, outcome = ?3, detail = ?4, events_stored = ?5, session_id = ?6 WHERE id = ?1",
        )?
        .execute(params![id, status, outcome, detail, events, session_id])?;
        return Ok(id);
    }
    conn.prepare_cached(INSERT_INBOX)?
    .execute(params![
        meta.received_at,
        meta.endpoint,
        meta.client_addr,
        meta.device_key,
        meta.content_type,
        meta.body,
        status,
        outcome,
        detail,
        events,
        session_id,
        meta.idempotency_key
    ])?;
    Ok(conn.last_insert_rowid())
}

const TOUR_COLUMNS: &str = "id, started_at, property_id";

fn tour_row(r: &rusqlite::Row) -> rusqlite::Result<TourRow> {
    Ok(TourRow { id: r.get(0)?, started_at: r.get(1)?, property_id: r.get(2)? })
}

/// A tour by our UUID or by the headset's own id.
fn find_tour(conn: &Connection, reference: &str) -> Result<Option<TourRow>, StoreError> {
    let sql = format!(
        "SELECT {TOUR_COLUMNS} FROM tour_sessions WHERE uuid = ?1
         UNION ALL SELECT {TOUR_COLUMNS} FROM tour_sessions WHERE external_id = ?1 LIMIT 1"
    );
    Ok(conn.prepare_cached(&sql)?.query_row([reference], tour_row).optional()?)
}

fn tour_by_id(conn: &Connection, id: i64) -> Result<TourRow, StoreError> {
    let sql = format!("SELECT {TOUR_COLUMNS} FROM tour_sessions WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], tour_row)?)
}

/// The device's open tour, whether or not it has gone idle.
fn device_tour(ctx: &mut WriteCtx, device: &str) -> Result<Option<ActiveTour>, StoreError> {
    if let Some(tour) = ctx.cache.active.get(device) {
        return Ok(Some(tour.clone()));
    }
    let tour = ctx
        .conn
        .prepare_cached(
            "SELECT id, last_event_at, external_id, started_at, property_id FROM tour_sessions
             WHERE device_key = ?1 AND status = 'active' ORDER BY id DESC LIMIT 1",
        )?
        .query_row([device], |r| {
            Ok(ActiveTour {
                id: r.get(0)?,
                last_event_at: r.get(1)?,
                external_id: r.get(2)?,
                started_at: r.get(3)?,
                property_id: r.get(4)?,
            })
        })
        .optional()?;
    if let Some(tour) = &tour {
        ctx.cache.active.insert(device.to_string(), tour.clone());
    }
    Ok(tour)
}

/// The device's open tour if it is still live at `at`; an idle one is closed as timed out.
fn live_device_tour(ctx: &mut WriteCtx, device: &str, at: i64) -> Result<Option<ActiveTour>, StoreError> {
    let Some(tour) = device_tour(ctx, device)? else { return Ok(None) };
    if at - tour.last_event_at > ctx.options.idle_timeout_ms {
        close_tour(ctx, tour.id, "timed_out", tour.last_event_at)?;
        return Ok(None);
    }
    Ok(Some(tour))
}

/// For uploads older than the idle timeout (reprocessing): the device's tour around that time.
fn historical_device_tour(ctx: &WriteCtx, device: &str, at: i64) -> Result<Option<TourRow>, StoreError> {
    let sql = format!(
        "SELECT {TOUR_COLUMNS} FROM tour_sessions
         WHERE device_key = ?1 AND started_at <= ?2 + ?3 AND coalesce(ended_at, last_event_at) + ?3 >= ?2
         ORDER BY started_at DESC LIMIT 1"
    );
    Ok(ctx.conn.prepare_cached(&sql)?.query_row(params![device, at, ctx.options.idle_timeout_ms], tour_row).optional()?)
}

fn resolve_tour(ctx: &mut WriteCtx, device: &str, reference: Option<&str>, at: i64, backdate_ms: i64) -> Result<TourRow, StoreError> {
    if let Some(reference) = reference {
        if let Some(tour) = find_tour(ctx.conn, reference)? {
            return Ok(tour);
        }
    }
    if ctx.now - at > ctx.options.idle_timeout_ms {
        if let Some(tour) = historical_device_tour(ctx, device, at)? {
            return Ok(tour);
        }
    } else if let Some(live) = live_device_tour(ctx, device, at)? {
        match (reference, &live.external_id) {
            (None, _) => return Ok(live.row()),
            // The first event that names the tour gives the device's open tour its id.
            (Some(reference), None) => {
                set_external_id(ctx, device, live.id, reference)?;
                return Ok(live.row());
            }
            (Some(_), Some(_)) => {}
        }
    }
    create_tour(ctx, device, reference, at - backdate_ms, at, &SessionSummary::default())
}

fn set_external_id(ctx: &mut WriteCtx, device: &str, id: i64, external_id: &str) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached("UPDATE tour_sessions SET external_id = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, external_id, ctx.now])?;
    if let Some(cached) = ctx.cache.active.get_mut(device) {
        if cached.id == id {
            cached.external_id = Some(external_id.to_string());
        }
    }
    Ok(())
}

fn create_tour(
    ctx: &mut WriteCtx,
    device: &str,
    external_id: Option<&str>,
    started_at: i64,
    at: i64,
    details: &SessionSummary,
) -> Result<TourRow, StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO tour_sessions (uuid, external_id, device_key, status, started_at, last_event_at,
                 customer_id, property_id, device_type, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        )?
        .execute(params![
            Uuid::now_v7().to_string(),
            external_id,
            device,
            started_at,
            at,
            details.customer_id,
            details.property_id,
            details.device_type,
            ctx.now
        ])?;
    let id = ctx.conn.last_insert_rowid();
    ctx.cache.active.insert(
        device.to_string(),
        ActiveTour {
            id,
            last_event_at: at,
            external_id: external_id.map(str::to_string),
            started_at,
            property_id: details.property_id.clone(),
        },
    );
    Ok(TourRow { id, started_at, property_id: details.property_id.clone() })
}

/// Counts new events and activity on a tour; returns the tour as it now stands.
fn touch_tour(ctx: &mut WriteCtx, id: i64, at: i64, new_events: i64) -> Result<TourInfo, StoreError> {
    let sql = format!(
        "UPDATE tour_sessions SET event_count = event_count + ?2, last_event_at = max(last_event_at, ?3),
             updated_at = ?4 WHERE id = ?1 RETURNING {TOUR_INFO_COLUMNS}"
    );
    let info = ctx.conn.prepare_cached(&sql)?.query_row(params![id, new_events, at, ctx.now], tour_info_row)?;
    for tour in ctx.cache.active.values_mut().filter(|t| t.id == id) {
        tour.last_event_at = tour.last_event_at.max(at);
    }
    Ok(info)
}

fn close_tour(ctx: &mut WriteCtx, id: i64, status: &str, ended_at: i64) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "UPDATE tour_sessions SET status = ?2, ended_at = ?3, duration_ms = max(0, ?3 - started_at), updated_at = ?4
             WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![id, status, ended_at, ctx.now])?;
    ctx.cache.active.retain(|_, t| t.id != id);
    Ok(())
}

/// Closes every tour idle for longer than the timeout (run by the writer every few seconds).
pub fn close_idle_tours(ctx: &mut WriteCtx) -> Result<(), StoreError> {
    let cutoff = ctx.now - ctx.options.idle_timeout_ms;
    let closed = ctx.conn.execute(
        "UPDATE tour_sessions SET status = 'timed_out', ended_at = last_event_at,
             duration_ms = max(0, last_event_at - started_at), updated_at = ?1
         WHERE status = 'active' AND last_event_at < ?2",
        params![ctx.now, cutoff],
    )?;
    if closed > 0 {
        ctx.cache.active.retain(|_, t| t.last_event_at >= cutoff);
        tracing::info!(closed, "closed idle tours as timed out");
    }
    Ok(())
}

fn start_tour(ctx: &mut WriteCtx, device: &str, summary: &SessionSummary, at: i64) -> Result<i64, StoreError> {
    if let Some(reference) = &summary.session_ref {
        if let Some(tour) = find_tour(ctx.conn, reference)? {
            return Ok(tour.id);
        }
    }
    if let Some(previous) = device_tour(ctx, device)? {
        close_tour(ctx, previous.id, "abandoned", previous.last_event_at)?;
    }
    let started_at = summary.started_at.unwrap_or(at);
    Ok(create_tour(ctx, device, summary.session_ref.as_deref(), started_at, at, summary)?.id)
}

/// The summary closes the device's tour (or the one it names); its id and times become the tour's.
fn close_with_summary(ctx: &mut WriteCtx, device: &str, s: &SessionSummary, at: i64) -> Result<i64, StoreError> {
    let mut target = match &s.session_ref {
        Some(reference) => find_tour(ctx.conn, reference)?,
        None => None,
    };
    if target.is_none() {
        if let Some(open) = device_tour(ctx, device)? {
            if open.external_id.is_none() || open.external_id == s.session_ref {
                target = Some(tour_by_id(ctx.conn, open.id)?);
            }
        }
    }
    let tour = match target {
        Some(tour) => tour,
        None => {
            let started = s.started_at.or_else(|| Some(s.ended_at? - s.duration_ms?)).unwrap_or(at);
            create_tour(ctx, device, s.session_ref.as_deref(), started, at, s)?
        }
    };
    let started = s.started_at.or_else(|| Some(s.ended_at? - s.duration_ms?)).unwrap_or(tour.started_at);
    let ended = s.ended_at.or_else(|| Some(started + s.duration_ms?)).unwrap_or(at.max(started));
    let duration = s.duration_ms.unwrap_or(ended - started);
    ctx.conn
        .prepare_cached(
            "UPDATE tour_sessions SET external_id = coalesce(?2, external_id), status = 'completed',
                 started_at = ?3, ended_at = ?4, duration_ms = ?5, headset_start = ?6, headset_end = ?7,
                 headset_duration = ?8, customer_id = coalesce(?9, customer_id),
                 property_id = coalesce(?10, property_id), device_type = coalesce(?11, device_type),
                 last_event_at = max(last_event_at, ?12), updated_at = ?13
             WHERE id = ?1",
        )?
        .execute(params![
            tour.id,
            s.session_ref,
            started,
            ended,
            duration,
            s.raw_start,
            s.raw_end,
            s.raw_duration,
            s.customer_id,
            s.property_id,
            s.device_type,
            at,
            ctx.now
        ])?;
    ctx.cache.active.retain(|_, t| t.id != tour.id);
    let new_property = s.property_id.clone().or(tour.property_id.clone());
    let longer_than_tour: i64 = ctx.conn.query_row(
        "SELECT count(*) FROM events WHERE session_id = ?1 AND dwell_ms > ?2",
        params![tour.id, duration + TOUR_LENGTH_SLACK_MS],
        |r| r.get(0),
    )?;
    if longer_than_tour > 0 || new_property != tour.property_id {
        // Re-file the tour's roll-up contribution under its final property and dwell verdicts.
        rollup_tour(ctx, tour.id, tour.property_id.as_deref(), -1)?;
        ctx.conn.execute(
            "UPDATE events SET dwell_invalid = ?3, dwell_ms = NULL WHERE session_id = ?1 AND dwell_ms > ?2",
            params![
                tour.id,
                duration + TOUR_LENGTH_SLACK_MS,
                format!("longer than the whole tour ({} s)", duration / 1000)
            ],
        )?;
        rollup_tour(ctx, tour.id, new_property.as_deref(), 1)?;
    }
    Ok(tour.id)
}

/// Records that the database took a write (the health check's probe).
pub fn probe(ctx: &mut WriteCtx) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO meta(key, value) VALUES ('health_probe', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )?
        .execute([ctx.now.to_string()])?;
    Ok(())
}

/// Where one event counts in the roll-ups.
pub(super) struct RollupKey<'a> {
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
pub(super) struct Rollup {
    deltas: HashMap<u64, (RollupCell, [i64; 3])>,
    /// The day of the last 15-minute slot seen: every time zone offset is a multiple of 15 min.
    last_day: Option<(i64, String)>,
}

impl Rollup {
    pub(super) fn add(&mut self, tz: chrono_tz::Tz, key: RollupKey, dwell_ms: Option<i64>, sign: i64) {
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

    pub(super) fn merge(&mut self, other: Rollup) {
        for (hash, (cell, [events, dwell, dwell_events])) in other.deltas {
            let (_, counts) = self.deltas.entry(hash).or_insert_with(|| (cell, [0; 3]));
            counts[0] += events;
            counts[1] += dwell;
            counts[2] += dwell_events;
        }
    }

    pub(super) fn flush(self, conn: &Connection) -> Result<(), StoreError> {
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
fn rollup_tour(ctx: &mut WriteCtx, tour_id: i64, property: Option<&str>, sign: i64) -> Result<(), StoreError> {
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
