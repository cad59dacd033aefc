//! Write side of ingest, run on the writer thread: what an upload means for the inbox, the tours,
//! the events and the roll-ups, all inside the request's savepoint.

use rusqlite::{params, Connection};

use super::events::{self, StoredEvents};
use super::headsets;
use super::inbox::{self, Outcome};
use super::live::Notes;
use super::resends;
use super::rollup::{self, Rollup};
use super::tours::{self, Cache, Ending, TourRow};
use super::writer::WriterState;
use super::{now_ms, StoreError};
use crate::model::{Action, Applied, Refusal, SessionSummary, UploadMeta};

/// Slack allowed between a dwell time and the tour's own length (clock granularity, rounding).
const TOUR_LENGTH_SLACK_MS: i64 = 60_000;
/// How far a headset's clock may run ahead of ours before its end time is not believed.
const CLOCK_SKEW_MS: i64 = 5 * 60_000;
/// How long before its first upload a tour may have started by the headset's word (a summary
/// sent long after the tour, or a clock far behind, is not believed beyond this).
const EARLIEST_START_MS: i64 = 12 * 3_600_000;

/// The rules the write side applies, from the settings.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub tz: chrono_tz::Tz,
    pub max_dwell_ms: i64,
    pub idle_timeout_ms: i64,
    /// How long an `Idempotency-Key` is recognised.
    pub resend_window_ms: i64,
}

/// What the writer thread keeps for ingest between requests.
pub(crate) struct IngestState {
    options: IngestOptions,
    cache: Cache,
    /// The current request's roll-up deltas, kept only if it succeeds.
    request: Rollup,
    /// The deltas of the group's successful requests, written just before the commit.
    group: Rollup,
    /// What the current request did that the live view hears of (published after the commit).
    notes: Notes,
}

impl IngestState {
    pub fn new(options: IngestOptions) -> IngestState {
        IngestState { options, cache: Cache::default(), request: Rollup::default(), group: Rollup::default(), notes: Notes::default() }
    }

    /// The current request's notes, for its closure to return once it succeeded.
    pub(super) fn take_notes(&mut self) -> Notes {
        std::mem::take(&mut self.notes)
    }
}

impl WriterState for IngestState {
    fn request_done(&mut self, ok: bool) {
        // A request that succeeded has taken its notes already; a failed one's are void.
        self.notes = Notes::default();
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
    /// What this request did that the live view hears of.
    pub notes: &'a mut Notes,
}

impl<'a> WriteCtx<'a> {
    pub fn new(conn: &'a Connection, state: &'a mut IngestState) -> WriteCtx<'a> {
        WriteCtx {
            conn,
            cache: &mut state.cache,
            options: &state.options,
            now: now_ms(),
            rollup: &mut state.request,
            notes: &mut state.notes,
        }
    }
}

/// Stores an upload: its inbox row and what it means. `existing` is its inbox row when
/// `nexero reprocess` applies a new reading of an upload kept earlier; `fingerprint` identifies
/// its body when it carries an `Idempotency-Key`.
pub(super) fn apply(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: Action, fingerprint: Option<i64>) -> Result<Applied, StoreError> {
    // The headsets registry: every upload but an unreadable one says the headset is in use.
    let seen = !matches!(action, Action::Rejected { .. });
    let applied = apply_upload(ctx, meta, existing, action, fingerprint)?;
    if seen {
        let tour = applied.tour.as_ref().map(|t| t.uuid.as_str());
        ctx.notes.headset = Some(headsets::seen(ctx.conn, &meta.device_key, meta.received_at, tour)?);
    }
    Ok(applied)
}

fn apply_upload(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: Action, fingerprint: Option<i64>) -> Result<Applied, StoreError> {
    let key = meta.idempotency_key.as_deref().zip(fingerprint).filter(|_| !matches!(action, Action::Rejected { .. }));
    if let Some((key, fingerprint)) = key {
        if let Some(seen) = resends::seen(ctx.conn, key, ctx.now - ctx.options.resend_window_ms)? {
            if seen.fingerprint != fingerprint {
                let reason = "already used for an upload with another body; nothing was stored. Fix: give each new upload its own key";
                return refuse(ctx, meta, existing, 422, Refusal::Invalid(vec![("Idempotency-Key".into(), reason.into())]));
            }
            return resend(ctx, meta, existing, &action, seen);
        }
    }
    let applied = apply_action(ctx, meta, existing, action)?;
    if let (Some((key, fingerprint)), None) = (key, &applied.refusal) {
        resends::remember(ctx.conn, key, fingerprint, applied.inbox_id, meta.received_at)?;
    }
    Ok(applied)
}

/// Keeps a refused upload in the inbox and says why.
fn refuse(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, status: u16, refusal: Refusal) -> Result<Applied, StoreError> {
    let detail = match &refusal {
        Refusal::UnknownTour => "unknown session".to_owned(),
        Refusal::Invalid(fields) => fields.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; "),
    };
    let outcome = Outcome { status, outcome: "rejected", detail: &detail, events: 0, tour_id: None };
    let inbox_id = inbox::record(ctx.conn, meta, existing, &outcome)?;
    Ok(Applied { inbox_id, refusal: Some(refusal), ..Applied::default() })
}

/// A resend of an upload stored earlier: kept in the inbox as such, nothing else changes.
fn resend(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: &Action, seen: resends::Seen) -> Result<Applied, StoreError> {
    let detail = format!("resend of upload {} (same Idempotency-Key and body)", seen.inbox_id);
    let outcome =
        Outcome { status: meta.endpoint.success_status(), outcome: "duplicate", detail: &detail, events: 0, tour_id: seen.tour_id };
    let inbox_id = inbox::record(ctx.conn, meta, existing, &outcome)?;
    let duplicates = match action {
        Action::Events { events, .. } => events.len(),
        _ => 0,
    };
    let tour = seen.tour_id.map(|id| tours::info(ctx.conn, id)).transpose()?;
    Ok(Applied { inbox_id, tour, duplicates, resend: true, ..Applied::default() })
}

fn apply_action(ctx: &mut WriteCtx, meta: &UploadMeta, existing: Option<i64>, action: Action) -> Result<Applied, StoreError> {
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
            None => return refuse(ctx, meta, existing, 404, Refusal::UnknownTour),
            Some(tour) => {
                // A heartbeat keeps an open tour alive; an ended tour stays as it ended.
                let detail = if tour.active { "heartbeat" } else { "heartbeat after the tour ended" };
                applied.inbox_id = record(ctx, ok, "stored", detail, Some(tour.id))?;
                applied.tour = Some(if tour.active { tours::touch(ctx, tour.id, at, 0)? } else { tours::info(ctx.conn, tour.id)? });
                return Ok(applied);
            }
        },
        Action::StartTour(summary) => {
            let id = tours::start(ctx, device, &summary, at)?;
            applied.inbox_id = record(ctx, ok, "stored", "session start", Some(id))?;
            id
        }
        Action::Summary(mut summary) => {
            let id = match close_with_summary(ctx, device, &mut summary, at)? {
                Ok(id) => id,
                Err(fields) => return refuse(ctx, meta, existing, 422, Refusal::Invalid(fields)),
            };
            applied.inbox_id = record(ctx, ok, "stored", &summary_detail(&summary), Some(id))?;
            applied.warnings = summary.warnings;
            id
        }
        Action::Events { session_ref, events } => {
            let StoredEvents { inbox_id, stored, duplicates, tour, first_dwell } =
                events::store_events(ctx, meta, existing, session_ref.as_deref(), events)?;
            return Ok(Applied { inbox_id, tour: Some(tour), stored, duplicates, first_dwell, ..Applied::default() });
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
/// tour's, and dwell times longer than the whole tour are flagged. Times the summary does not
/// give usably are taken from what the appliance observed of that tour, with a warning; with no
/// tour to observe and no usable pair of times, the fields are refused.
fn close_with_summary(ctx: &mut WriteCtx, device: &str, s: &mut SessionSummary, at: i64) -> Result<Result<i64, Vec<(String, String)>>, StoreError> {
    let target = tours::summary_target(ctx, device, s)?;
    let (started, ended) = match summary_times(s, target.as_ref(), at) {
        Ok(times) => times,
        Err(fields) => return Ok(Err(fields)),
    };
    let duration = ended - started;
    let tour = match target {
        Some(tour) => tour,
        None => tours::create_for_summary(ctx, device, s, started, at)?,
    };
    let warnings = (!s.warnings.is_empty()).then(|| s.warnings.join("; "));
    tours::apply_summary(ctx, tour.id, s, started, at, warnings.as_deref())?;
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
    Ok(Ok(tour.id))
}

/// A tour's start and end from its summary: a pair the summary gives (start and end, or one of
/// them and the duration), else — for a tour the appliance has seen — the summary's one usable
/// time where it is plausible for that tour, and what was observed for the rest (its first
/// upload, the summary's arrival). Every time not taken from the headset adds a warning. Never
/// a negative duration, never an invented one.
fn summary_times(s: &mut SessionSummary, tour: Option<&TourRow>, at: i64) -> Result<(i64, i64), Vec<(String, String)>> {
    let pair = match (s.started_at, s.ended_at, s.duration_ms) {
        (Some(start), Some(end), _) => Some((start, end)),
        (Some(start), None, Some(duration)) => Some((start, start + duration)),
        (None, Some(end), Some(duration)) => Some((end - duration, end)),
        _ => None,
    };
    if let Some((start, end)) = pair.filter(|(start, end)| end >= start) {
        return Ok((start, end));
    }
    let Some(tour) = tour else {
        let reason = "no usable session_start and session_end (or one of them and a duration), and no open tour of \
                      this headset to take the other from";
        return Err(["session_start", "session_end"].map(|f| (f.to_owned(), reason.to_owned())).into());
    };
    let observed_start = tour.started_at;
    let observed_end = at.max(observed_start);
    let start = match s.started_at {
        Some(start) if start >= observed_start - EARLIEST_START_MS && start <= observed_end => start,
        Some(start) => {
            s.warnings.push(format!("session_start {} is not plausible for this tour; its first upload's time is used", iso(start)));
            observed_start
        }
        None => {
            s.warnings.push("no usable session_start; the tour's first upload time is used".into());
            observed_start
        }
    };
    let end = match s.ended_at {
        Some(end) if end >= start && end <= at + CLOCK_SKEW_MS => end,
        Some(end) => {
            s.warnings.push(format!("session_end {} is not plausible for this tour; the summary's arrival time is used", iso(end)));
            observed_end
        }
        None => {
            s.warnings.push("no usable session_end; the summary's arrival time is used".into());
            observed_end
        }
    };
    Ok((start, end.max(start)))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

/// Forgets the `Idempotency-Key`s older than the resend window.
pub(super) fn forget_old_resend_keys(ctx: &mut WriteCtx) -> Result<usize, StoreError> {
    resends::forget_before(ctx.conn, ctx.now - ctx.options.resend_window_ms)
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
