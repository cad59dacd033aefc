//! Tour rows: attribution of uploads to tours, and every way a tour ends.
//!
//! Real headsets send no session id on events, so a tour is the run of events from one device
//! (device key header, else client address) until its summary arrives or it goes idle. An id on
//! the event (`sesh_id`, `session_id`) wins over that. Every ending goes through [`complete`].

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::live::EndedTour;
use super::upload::WriteCtx;
use super::StoreError;
use crate::model::{SessionSummary, TourInfo};

/// The open tour of each device, as committed. Cleared whenever a write is rolled back.
#[derive(Default)]
pub struct Cache {
    active: HashMap<String, ActiveTour>,
}

#[derive(Clone, Debug)]
pub(super) struct ActiveTour {
    pub id: i64,
    pub last_event_at: i64,
    external_id: Option<String>,
    started_at: i64,
    property_id: Option<String>,
}

impl ActiveTour {
    fn row(&self) -> TourRow {
        TourRow { id: self.id, started_at: self.started_at, property_id: self.property_id.clone(), active: true }
    }
}

/// What the write side needs of a tour.
#[derive(Clone, Debug)]
pub(super) struct TourRow {
    pub id: i64,
    pub started_at: i64,
    pub property_id: Option<String>,
    /// Not ended yet.
    pub active: bool,
}

/// How a tour ended.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ending {
    /// Its summary arrived.
    Completed,
    /// No event for longer than the idle timeout.
    TimedOut,
    /// The headset started again (startup packet, a new explicit start) before a summary.
    Abandoned,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::TimedOut => "timed_out",
            Ending::Abandoned => "abandoned",
        }
    }
}

const TOUR_COLUMNS: &str = "id, started_at, property_id, status";
const ACTIVE_TOUR_COLUMNS: &str = "id, last_event_at, external_id, started_at, property_id";

fn active_tour_row(r: &rusqlite::Row) -> rusqlite::Result<ActiveTour> {
    Ok(ActiveTour { id: r.get(0)?, last_event_at: r.get(1)?, external_id: r.get(2)?, started_at: r.get(3)?, property_id: r.get(4)? })
}

fn tour_row(r: &rusqlite::Row) -> rusqlite::Result<TourRow> {
    let status: String = r.get(3)?;
    Ok(TourRow { id: r.get(0)?, started_at: r.get(1)?, property_id: r.get(2)?, active: status == "active" })
}

/// The columns of a [`TourInfo`], in its order.
const TOUR_INFO_COLUMNS: &str = "uuid, external_id, status, started_at, ended_at, last_event_at, duration_ms, event_count,
     customer_id, property_id, time_warnings";

fn tour_info_row(r: &rusqlite::Row) -> rusqlite::Result<TourInfo> {
    Ok(TourInfo {
        uuid: r.get(0)?,
        external_id: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        last_event_at: r.get(5)?,
        duration_ms: r.get(6)?,
        event_count: r.get(7)?,
        customer_id: r.get(8)?,
        property_id: r.get(9)?,
        time_warnings: r.get(10)?,
    })
}

/// A tour by our UUID (any letter case) or by the headset's own id (GUIDs are case-insensitive).
fn by_reference_sql(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM tour_sessions WHERE uuid = lower(?1)
         UNION ALL SELECT {columns} FROM tour_sessions WHERE external_id = ?1 COLLATE NOCASE LIMIT 1"
    )
}

/// A tour by its row id.
pub(super) fn info(conn: &Connection, id: i64) -> Result<TourInfo, StoreError> {
    let sql = format!("SELECT {TOUR_INFO_COLUMNS} FROM tour_sessions WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], tour_info_row)?)
}

/// A tour by our UUID or by the headset's own id (the read side's look-up).
pub fn by_reference(conn: &Connection, reference: &str) -> Result<Option<TourInfo>, StoreError> {
    Ok(conn.prepare_cached(&by_reference_sql(TOUR_INFO_COLUMNS))?.query_row([reference], tour_info_row).optional()?)
}

/// A tour by our UUID or by the headset's own id.
pub(super) fn find(conn: &Connection, reference: &str) -> Result<Option<TourRow>, StoreError> {
    Ok(conn.prepare_cached(&by_reference_sql(TOUR_COLUMNS))?.query_row([reference], tour_row).optional()?)
}

fn by_id(conn: &Connection, id: i64) -> Result<TourRow, StoreError> {
    let sql = format!("SELECT {TOUR_COLUMNS} FROM tour_sessions WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], tour_row)?)
}

/// The device's open tour, whether or not it has gone idle.
pub(super) fn device_tour(ctx: &mut WriteCtx, device: &str) -> Result<Option<ActiveTour>, StoreError> {
    if let Some(tour) = ctx.cache.active.get(device) {
        return Ok(Some(tour.clone()));
    }
    let tour = ctx
        .conn
        .prepare_cached(
            &format!("SELECT {ACTIVE_TOUR_COLUMNS} FROM tour_sessions WHERE device_key = ?1 AND status = 'active' ORDER BY id DESC LIMIT 1"),
        )?
        .query_row([device], active_tour_row)
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
        end_open(ctx, &tour, Ending::TimedOut)?;
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

/// The tour an event belongs to: the one it names, else the device's live tour, else a new one
/// (backdated by the event's dwell time, which the buyer spent before it was sent).
pub(super) fn resolve(ctx: &mut WriteCtx, device: &str, reference: Option<&str>, at: i64, backdate_ms: i64) -> Result<TourRow, StoreError> {
    if let Some(reference) = reference {
        if let Some(tour) = find(ctx.conn, reference)? {
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
    create(ctx, device, reference, at - backdate_ms, at, &SessionSummary::default())
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

fn create(
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
    let tour = ActiveTour {
        id,
        last_event_at: at,
        external_id: external_id.map(str::to_string),
        started_at,
        property_id: details.property_id.clone(),
    };
    let row = tour.row();
    ctx.cache.active.insert(device.to_string(), tour);
    Ok(row)
}

/// Counts new events and activity on a tour; returns the tour as it now stands.
pub(super) fn touch(ctx: &mut WriteCtx, id: i64, at: i64, new_events: i64) -> Result<TourInfo, StoreError> {
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

/// Ends a tour: the one place every ending goes through, so whatever must happen when a tour
/// ends (cloud sync's outbox) happens exactly once here.
pub(super) fn complete(ctx: &mut WriteCtx, id: i64, ending: Ending, ended_at: i64, duration_ms: i64) -> Result<(), StoreError> {
    let (tour, device_key, headset_name) = ctx
        .conn
        .prepare_cached(
            "UPDATE tour_sessions SET status = ?2, ended_at = ?3, duration_ms = ?4, updated_at = ?5 WHERE id = ?1
             RETURNING uuid, device_key, (SELECT name FROM headsets WHERE headsets.device_key = tour_sessions.device_key)",
        )?
        .query_row(params![id, ending.as_str(), ended_at, duration_ms, ctx.now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    ctx.cache.active.retain(|_, t| t.id != id);
    // Cloud sync's outbox, in the same transaction as the ending (again if it ended before).
    super::sync::queue(ctx.conn, id, ctx.now)?;
    // The live view hears of it once the write is committed.
    ctx.notes.ended.push(EndedTour { device_key, headset_name, tour, status: ending.as_str(), ended_at });
    Ok(())
}

/// Ends an open tour at its last event, without a summary.
pub(super) fn end_open(ctx: &mut WriteCtx, tour: &ActiveTour, ending: Ending) -> Result<(), StoreError> {
    complete(ctx, tour.id, ending, tour.last_event_at, (tour.last_event_at - tour.started_at).max(0))
}

/// Ends every tour idle for longer than the timeout (a background job runs this every few seconds).
pub(super) fn close_idle(ctx: &mut WriteCtx) -> Result<usize, StoreError> {
    let idle: Vec<ActiveTour> = ctx
        .conn
        .prepare_cached(
            &format!("SELECT {ACTIVE_TOUR_COLUMNS} FROM tour_sessions WHERE status = 'active' AND last_event_at < ?1"),
        )?
        .query_map([ctx.now - ctx.options.idle_timeout_ms], active_tour_row)?
        .collect::<Result<_, _>>()?;
    for tour in &idle {
        end_open(ctx, tour, Ending::TimedOut)?;
    }
    Ok(idle.len())
}

/// An explicit start: the tour it names, else a new tour (ending the device's open one).
pub(super) fn start(ctx: &mut WriteCtx, device: &str, summary: &SessionSummary, at: i64) -> Result<i64, StoreError> {
    if let Some(reference) = &summary.session_ref {
        if let Some(tour) = find(ctx.conn, reference)? {
            return Ok(tour.id);
        }
    }
    if let Some(previous) = device_tour(ctx, device)? {
        end_open(ctx, &previous, Ending::Abandoned)?;
    }
    let started_at = summary.started_at.unwrap_or(at);
    Ok(create(ctx, device, summary.session_ref.as_deref(), started_at, at, summary)?.id)
}

/// The tour a summary closes, when there is one: the one it names, else the device's open tour
/// (unless that one has another id).
pub(super) fn summary_target(ctx: &mut WriteCtx, device: &str, s: &SessionSummary) -> Result<Option<TourRow>, StoreError> {
    if let Some(reference) = &s.session_ref {
        if let Some(tour) = find(ctx.conn, reference)? {
            return Ok(Some(tour));
        }
    }
    match device_tour(ctx, device)? {
        Some(open) if open.external_id.is_none() || open.external_id == s.session_ref => Ok(Some(by_id(ctx.conn, open.id)?)),
        _ => Ok(None),
    }
}

/// A tour for a summary that closes no tour of ours: it starts when the summary says.
pub(super) fn create_for_summary(ctx: &mut WriteCtx, device: &str, s: &SessionSummary, started: i64, at: i64) -> Result<TourRow, StoreError> {
    create(ctx, device, s.session_ref.as_deref(), started, at, s)
}

/// Takes the summary's times and details onto the tour, and its id when the tour has none yet:
/// a tour keeps the headset's id for its whole life (a summary naming it by our UUID changes
/// nothing). `warnings` says which times were not the headset's own.
pub(super) fn apply_summary(ctx: &mut WriteCtx, id: i64, s: &SessionSummary, started: i64, at: i64, warnings: Option<&str>) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "UPDATE tour_sessions SET
                 external_id = CASE WHEN external_id IS NULL AND lower(?2) <> uuid THEN ?2 ELSE external_id END,
                 started_at = ?3, headset_start = ?4, headset_end = ?5, headset_duration = ?6,
                 customer_id = coalesce(?7, customer_id), property_id = coalesce(?8, property_id),
                 device_type = coalesce(?9, device_type), last_event_at = max(last_event_at, ?10), updated_at = ?11,
                 time_warnings = ?12
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            s.session_ref,
            started,
            s.raw_start,
            s.raw_end,
            s.raw_duration,
            s.customer_id,
            s.property_id,
            s.device_type,
            at,
            ctx.now,
            warnings
        ])?;
    Ok(())
}
