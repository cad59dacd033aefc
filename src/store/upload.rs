//! Write side of ingest, run on the writer thread: what an upload means for the inbox, the tours,
//! the events and the roll-ups, all inside the request's savepoint.

use rusqlite::{params, Connection};

use super::events::{self, StoredEvents};
use super::inbox::{self, Outcome};
use super::rollup::{self, Rollup};
use super::tours::{self, Cache, Ending};
use super::writer::WriterState;
use super::{now_ms, StoreError};
use crate::model::{Action, Applied, SessionSummary, UploadMeta};

/// Slack allowed between a dwell time and the tour's own length (clock granularity, rounding).
const TOUR_LENGTH_SLACK_MS: i64 = 60_000;

/// The rules the write side applies, from the settings.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub tz: chrono_tz::Tz,
    pub max_dwell_ms: i64,
    pub idle_timeout_ms: i64,
}

/// What the writer thread keeps for ingest between requests.
pub(crate) struct IngestState {
    options: IngestOptions,
    cache: Cache,
    /// The current request's roll-up deltas, kept only if it succeeds.
    request: Rollup,
    /// The deltas of the group's successful requests, written just before the commit.
    group: Rollup,
}

impl IngestState {
    pub fn new(options: IngestOptions) -> IngestState {
        IngestState { options, cache: Cache::default(), request: Rollup::default(), group: Rollup::default() }
    }
}

impl WriterState for IngestState {
    fn request_done(&mut self, ok: bool) {
        let request = std::mem::take(&mut self.request);
        if ok {
            self.group.merge(request);
        } else {
            // The cache may describe rows that were just rolled back.
            self.cache = Cache::default();
        }
    }

    fn before_commit(&mut self, conn: &Connection) -> Result<(), StoreError> {
        std::mem::take(&mut self.group).flush(conn)
    }

    fn group_failed(&mut self) {
        self.cache = Cache::default();
        self.group = Rollup::default();
    }
}

/// What a write of the ingest domain sees.
pub(crate) struct WriteCtx<'a> {
    pub conn: &'a Connection,
    pub cache: &'a mut Cache,
    pub options: &'a IngestOptions,
    pub now: i64,
    /// This request's roll-up deltas.
    pub rollup: &'a mut Rollup,
}

impl<'a> WriteCtx<'a> {
    pub fn new(conn: &'a Connection, state: &'a mut IngestState) -> WriteCtx<'a> {
        WriteCtx { conn, cache: &mut state.cache, options: &state.options, now: now_ms(), rollup: &mut state.request }
    }
}

/// Stores an upload: its inbox row and what it means. `existing` is its inbox row when
/// `nexero reprocess` applies a new reading of an upload kept earlier.
pub(super) fn apply(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: Action) -> Result<Applied, StoreError> {
    let at = meta.received_at;
    let device = meta.device_key.as_str();
    let ok = meta.endpoint.success_status();
    let record = |ctx: &mut WriteCtx, status, outcome, detail: &str, tour_id| {
        inbox::record(ctx.conn, meta, existing, &Outcome { status, outcome, detail, events: 0, tour_id })
    };
    let mut applied = Applied::default();
    let tour_id = match action {
        Action::Rejected { status, reason } => {
            applied.inbox_id = record(ctx, status, "rejected", &reason, None)?;
            return Ok(applied);
        }
        Action::Startup => {
            if let Some(tour) = tours::device_tour(ctx, device)? {
                tours::end_open(ctx, &tour, Ending::Abandoned)?;
            }
            applied.inbox_id = record(ctx, ok, "ignored", "startup packet", None)?;
            return Ok(applied);
        }
        Action::Heartbeat { session_ref } => match tours::find(ctx.conn, &session_ref)? {
            None => {
                applied.session_missing = true;
                applied.inbox_id = record(ctx, 404, "rejected", "heartbeat: unknown session", None)?;
                return Ok(applied);
            }
            Some(tour) => {
                applied.inbox_id = record(ctx, ok, "stored", "heartbeat", Some(tour.id))?;
                applied.tour = Some(tours::touch(ctx, tour.id, at, 0)?);
                return Ok(applied);
            }
        },
        Action::StartTour(summary) => {
            let id = tours::start(ctx, device, &summary, at)?;
            applied.inbox_id = record(ctx, ok, "stored", "session start", Some(id))?;
            id
        }
        Action::Summary(summary) => {
            let id = close_with_summary(ctx, device, &summary, at)?;
            applied.inbox_id = record(ctx, ok, "stored", &summary_detail(&summary), Some(id))?;
            id
        }
        Action::Events { session_ref, events } => {
            let StoredEvents { inbox_id, stored, duplicates, tour, first_dwell } =
                events::store_events(ctx, meta, existing, session_ref.as_deref(), events)?;
            return Ok(Applied { inbox_id, tour: Some(tour), stored, duplicates, first_dwell, session_missing: false });
        }
    };
    applied.tour = Some(tours::info(ctx.conn, tour_id)?);
    Ok(applied)
}

fn summary_detail(summary: &SessionSummary) -> String {
    if summary.warnings.is_empty() {
        "session summary".into()
    } else {
        format!("session summary; {}", summary.warnings.join("; "))
    }
}

/// The summary closes the device's tour (or the one it names); its id and times become the
/// tour's, and dwell times longer than the whole tour are flagged.
fn close_with_summary(ctx: &mut WriteCtx, device: &str, s: &SessionSummary, at: i64) -> Result<i64, StoreError> {
    let tour = tours::summary_target(ctx, device, s, at)?;
    let started = s.started_at.or_else(|| Some(s.ended_at? - s.duration_ms?)).unwrap_or(tour.started_at);
    let ended = s.ended_at.or_else(|| Some(started + s.duration_ms?)).unwrap_or(at.max(started));
    let duration = s.duration_ms.unwrap_or(ended - started);
    tours::apply_summary(ctx, tour.id, s, started, at)?;
    tours::complete(ctx, tour.id, Ending::Completed, ended, duration)?;
    let new_property = s.property_id.clone().or(tour.property_id.clone());
    let longest = duration + TOUR_LENGTH_SLACK_MS;
    let longer_than_tour: i64 = ctx.conn.query_row(
        "SELECT count(*) FROM events WHERE session_id = ?1 AND dwell_ms > ?2",
        params![tour.id, longest],
        |r| r.get(0),
    )?;
    if longer_than_tour > 0 || new_property != tour.property_id {
        // Re-file the tour's roll-up contribution under its final property and dwell verdicts.
        rollup::refile_tour(ctx, tour.id, tour.property_id.as_deref(), -1)?;
        ctx.conn.execute(
            "UPDATE events SET dwell_invalid = ?3, dwell_ms = NULL WHERE session_id = ?1 AND dwell_ms > ?2",
            params![tour.id, longest, format!("longer than the whole tour ({} s)", duration / 1000)],
        )?;
        rollup::refile_tour(ctx, tour.id, new_property.as_deref(), 1)?;
    }
    Ok(tour.id)
}

/// Records that the database took a write (the health check's probe).
pub(super) fn probe(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES ('health_probe', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([now_ms().to_string()])?;
    Ok(())
}
