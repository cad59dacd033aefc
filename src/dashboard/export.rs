//! CSV exports, streamed: rows are read on the blocking pool and sent in chunks through a
//! bounded channel, so a large export holds neither the whole file in memory nor an async
//! thread. UTF-8 with a byte-order mark (Excel then reads UTF-8), RFC 4180 quoting, and a cell
//! of text that a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading
//! apostrophe. Times are ISO UTC plus the site's local time.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Semaphore;

use super::api::session_not_found;
use super::period::{iso, local, today};
use super::query::Params;
use super::shapes::{event_id, seconds, whole_seconds};
use super::DashboardState;
use crate::auth::Staff;
use crate::error::Result;
use crate::store::dashboard::{detail, tours};
use crate::store::StoreError;

/// Exports running at once (each holds a reader connection while it streams); more wait.
static EXPORTS: Semaphore = Semaphore::const_new(2);
/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// A client that takes nothing for this long loses its export.
const STALL: Duration = Duration::from_secs(60);

/// One cell: text (made formula-safe) or a number (written as it is).
enum Cell<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Real(Option<f64>),
}

fn text(value: &Option<String>) -> Cell<'_> {
    Cell::Text(value.as_deref())
}

/// Text a spreadsheet would evaluate gets a leading apostrophe.
fn formula_safe(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A CSV writer appending to `start`.
fn writer(mut start: Vec<u8>) -> csv::Writer<Vec<u8>> {
    start.reserve(CHUNK * 2);
    csv::WriterBuilder::new().from_writer(start)
}

/// The writing end of an export: CSV records into chunks into the channel.
struct CsvOut {
    csv: csv::Writer<Vec<u8>>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl CsvOut {
    /// Writes a record; `false` when the client has gone (stop reading).
    fn record(&mut self, cells: &[Cell]) -> Result<bool, StoreError> {
        let fields = cells.iter().map(|cell| match cell {
            Cell::Text(value) => formula_safe(value.unwrap_or_default()),
            Cell::Int(value) => Cow::Owned(value.map(|v| v.to_string()).unwrap_or_default()),
            Cell::Real(value) => Cow::Owned(value.map(|v| v.to_string()).unwrap_or_default()),
        });
        self.csv.write_record(fields.collect::<Vec<_>>().iter().map(|f| f.as_bytes())).map_err(|e| StoreError::Internal(e.to_string()))?;
        if self.csv.get_ref().len() >= CHUNK {
            return Ok(self.send());
        }
        Ok(true)
    }

    fn header(&mut self, names: &[&str]) -> Result<bool, StoreError> {
        self.record(&names.iter().map(|n| Cell::Text(Some(n))).collect::<Vec<_>>())
    }

    /// Sends what is gathered, waiting (on this blocking thread) while the channel is full.
    fn send(&mut self) -> bool {
        let Ok(gathered) = std::mem::replace(&mut self.csv, writer(Vec::new())).into_inner() else { return false };
        let mut item = Ok(Bytes::from(gathered));
        let stalled_at = Instant::now() + STALL;
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(TrySendError::Closed(_)) => return false,
                Err(TrySendError::Full(back)) if Instant::now() < stalled_at => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
    }
}

/// Answers with a CSV file `filename` whose rows `produce` writes, streamed as they are read.
fn stream<F>(state: &DashboardState, filename: &str, produce: F) -> Response
where
    F: FnOnce(&Connection, &mut CsvOut) -> Result<(), StoreError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let store = state.store.clone();
    tokio::spawn(async move {
        let Ok(_permit) = EXPORTS.acquire().await else { return };
        let failed = tx.clone();
        let result = store
            .read(move |conn| {
                let mut out = CsvOut { csv: writer("\u{feff}".as_bytes().to_vec()), tx };
                produce(conn, &mut out)?;
                out.send();
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "a CSV export failed part-way");
            let _ = failed.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}

const TOUR_COLUMNS: [&str; 18] = [
    "id",
    "external_id",
    "device_key",
    "headset_name",
    "status",
    "started_at_utc",
    "started_at_local",
    "ended_at_utc",
    "ended_at_local",
    "duration_seconds",
    "event_count",
    "customer_id",
    "property_id",
    "device_type",
    "last_event_at_utc",
    "time_warnings",
    "created_at_utc",
    "updated_at_utc",
];

/// `GET /api/v1/sessions.csv`: every tour the list's filters take, in the list's order.
pub async fn sessions_csv(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Response> {
    let (filter, order, tz) = (params.tour_filter(state.tz)?, params.tour_order()?, state.tz);
    let filename = format!("nexero-tours-{}.csv", today(tz));
    Ok(stream(&state, &filename, move |conn, out| {
        if !out.header(&TOUR_COLUMNS)? {
            return Ok(());
        }
        tours::each(conn, &filter, order, |t| {
            let (started, ended, last) = (iso(t.started_at), t.ended_at.map(iso), iso(t.last_event_at));
            let (started_local, ended_local) = (local(t.started_at, tz), t.ended_at.map(|ms| local(ms, tz)));
            let (created, updated) = (iso(t.created_at), iso(t.updated_at));
            out.record(&[
                Cell::Text(Some(&t.uuid)),
                text(&t.external_id),
                Cell::Text(Some(&t.device_key)),
                text(&t.headset_name),
                Cell::Text(Some(&t.status)),
                Cell::Text(Some(&started)),
                Cell::Text(Some(&started_local)),
                text(&ended),
                text(&ended_local),
                Cell::Int(t.duration_ms.map(whole_seconds)),
                Cell::Int(Some(t.event_count)),
                text(&t.customer_id),
                text(&t.property_id),
                text(&t.device_type),
                Cell::Text(Some(&last)),
                text(&t.time_warnings),
                Cell::Text(Some(&created)),
                Cell::Text(Some(&updated)),
            ])
        })
    }))
}

const EVENT_COLUMNS: [&str; 22] = [
    "event_id",
    "occurred_at_utc",
    "occurred_at_local",
    "kind",
    "event_type",
    "name",
    "zone",
    "source",
    "dwell_seconds",
    "dwell_text",
    "flagged",
    "object_name",
    "gaze_target",
    "interaction_type",
    "pos_x",
    "pos_y",
    "pos_z",
    "rot_pitch",
    "rot_yaw",
    "rot_roll",
    "received_at_utc",
    "data",
];

/// `GET /api/v1/sessions/{id}/events.csv`: every event of one tour, in time order.
pub async fn events_csv(_: Staff, State(state): State<DashboardState>, Path(id): Path<String>) -> Result<Response> {
    let tour = state.store.read(move |c| tours::by_reference(c, &id)).await?.ok_or_else(session_not_found)?;
    let (tour_id, tz) = (tour.id, state.tz);
    let filename = format!("nexero-tour-{}-events.csv", tour.uuid);
    Ok(stream(&state, &filename, move |conn, out| {
        if !out.header(&EVENT_COLUMNS)? {
            return Ok(());
        }
        detail::each_event(conn, tour_id, |e| {
            let e = &e;
            let (id, occurred, occurred_local, received) = (event_id(e), iso(e.occurred_at), local(e.occurred_at, tz), iso(e.received_at));
            let [x, y, z] = e.position.map(Cell::Real);
            let [pitch, yaw, roll] = e.rotation.map(Cell::Real);
            out.record(&[
                Cell::Text(Some(&id)),
                Cell::Text(Some(&occurred)),
                Cell::Text(Some(&occurred_local)),
                Cell::Text(Some(&e.kind)),
                Cell::Text(Some(&e.event_type)),
                text(&e.name),
                text(&e.zone),
                text(&e.source),
                Cell::Real(e.dwell_ms.map(seconds)),
                text(&e.dwell_text),
                text(&e.dwell_invalid),
                text(&e.object_name),
                text(&e.gaze_target),
                text(&e.interaction_type),
                x,
                y,
                z,
                pitch,
                yaw,
                roll,
                Cell::Text(Some(&received)),
                text(&e.data),
            ])
        })
    }))
}
