//! Receiving an upload: the body read within its limits — size, time, and the memory budget
//! shared by all uploads — and the one place where an upload is stored or refused: a refused
//! upload is kept in the inbox before its error is answered, and so is one cut short by a
//! disconnect or a stall (with the bytes that arrived). Only an upload turned away because the
//! budget is full (503, retry) is not kept: its bytes were never held.

mod budget;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, FromRequest, OriginalUri, RawPathParams, Request};
use axum::http::header;
use axum::RequestPartsExt;
use http_body_util::BodyExt;
use tokio::time::{timeout_at, Duration, Instant};

pub use budget::{hold as hold_body_budget, BodyBudget};
use budget::Held;

use super::IngestState;
use crate::error::{AppError, Result};
use crate::model::{Action, Endpoint, UploadMeta};
use crate::store::{now_ms, StoreError};

/// Headers a headset may use to identify itself; without one, its address is its identity.
const DEVICE_HEADERS: &[&str] = &["x-device-key", "x-device-id"];
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// An upload read off the wire, before parsing.
pub struct Received {
    pub meta: UploadMeta,
    /// The session id in the path of the heartbeat routes.
    pub route_id: Option<String>,
}

/// Reads the body within the configured limits. An oversized body is refused with 413 and its
/// start kept; a body cut short (the connection closed, or it did not arrive within
/// `body_read_timeout`) is refused with 400 or 408 and what arrived is kept; with the memory
/// budget full the upload gets 503 with `Retry-After`.
impl<S: Send + Sync> FromRequest<S> for Received
where
    IngestState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let state = &IngestState::from_ref(state);
        let (mut parts, body) = request.into_parts();
        let endpoint = parts.extensions.get::<Endpoint>().copied().expect("the router tags every upload route");
        let route_id = match parts.extract::<RawPathParams>().await {
            Ok(params) => params.iter().find(|(name, _)| *name == "id").map(|(_, value)| value.to_owned()),
            Err(_) => None,
        };
        let headers = &parts.headers;
        let header_text =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let client_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let device_key = DEVICE_HEADERS
            .iter()
            .find_map(|name| header_text(name))
            .map(|key| key.chars().take(128).collect())
            .or_else(|| client_addr.map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let meta = UploadMeta {
            received_at: now_ms(),
            endpoint,
            // The inbox keeps the path as called: the server records it before it maps other
            // spellings (a trailing slash, letter case) onto the route, and inside the nested
            // router the URI lacks the prefix.
            path: parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |uri| uri.path()).to_owned(),
            client_addr: client_addr.map(|a| a.to_string()).unwrap_or_default(),
            device_key,
            content_type: header_text(header::CONTENT_TYPE.as_str()).map(str::to_string),
            body: Vec::new(),
            idempotency_key: header_text(IDEMPOTENCY_HEADER).map(str::to_string),
        };
        let limit = state.max_body_bytes;
        let declared = header_text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
        let held = parts.extensions.get::<Held>().cloned().unwrap_or_default();
        let reader = BodyReader::new(&state.body_budget, held.clone(), declared, limit, state.body_read_timeout);
        match reader.read(body).await {
            BodyRead::Within(body) => {
                // Parsing and storing take memory too: wait for this body's turn.
                if !held.parse_turn(&state.body_budget, body.len()).await {
                    tracing::debug!(path = %meta.path, bytes = body.len(), "upload refused: no turn to parse it in time");
                    return Err(AppError::Store(StoreError::Overloaded));
                }
                Ok(Received { meta: UploadMeta { body, ..meta }, route_id })
            }
            BodyRead::TooLarge { sample, size } => {
                let error = AppError::PayloadTooLarge { limit };
                let reason = format!("{error}: {size}; the first {} bytes are kept", sample.len());
                Err(refuse(state, UploadMeta { body: sample, ..meta }, error, reason).await)
            }
            BodyRead::CutShort { kept, received, timed_out, why } => {
                let of = declared.map_or(String::new(), |n| format!(" of {n}"));
                let error = if timed_out {
                    let secs = state.body_read_timeout.as_secs();
                    AppError::RequestTimeout(format!("the request body did not arrive within {secs} s ({received}{of} bytes came)"))
                } else {
                    AppError::bad_request(format!("the connection broke before the request body ended ({received}{of} bytes came): {why}"))
                };
                let reason = format!("{error}; the first {} bytes are kept", kept.len());
                Err(refuse(state, UploadMeta { body: kept, ..meta }, error, reason).await)
            }
            BodyRead::Overloaded => {
                tracing::debug!(path = %meta.path, client = %meta.client_addr, "upload refused: the memory for request bodies is taken");
                Err(AppError::Store(StoreError::Overloaded))
            }
        }
    }
}

/// How far past the limit an oversized body is still read (and discarded) before the connection
/// is closed instead.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How much of an oversized body the inbox keeps: enough to see what sent it.
const OVERSIZED_SAMPLE: usize = 64 * 1024;
/// The smallest buffer a body is read into.
const FIRST_BUFFER: usize = 16 * 1024;

enum BodyRead {
    Within(Vec<u8>),
    /// `size` says how large it was, as far as it was read.
    TooLarge { sample: Vec<u8>, size: String },
    /// The connection broke, or the body did not arrive in time; `kept` is what arrived (its
    /// start only, when it was already over the limit).
    CutShort { kept: Vec<u8>, received: usize, timed_out: bool, why: String },
    /// No room in the memory budget: the body was read on (up to the drain limit) and dropped.
    Overloaded,
}

struct BodyReader<'a> {
    budget: &'a BodyBudget,
    held: Held,
    declared: Option<usize>,
    limit: usize,
    deadline: Instant,
    data: Vec<u8>,
}

impl<'a> BodyReader<'a> {
    fn new(budget: &'a BodyBudget, held: Held, declared: Option<usize>, limit: usize, timeout: Duration) -> Self {
        BodyReader { budget, held, declared, limit, deadline: Instant::now() + timeout, data: Vec::new() }
    }

    /// Reads the body within the limit, the budget and the deadline. An oversized body is read to
    /// its end (keeping its start), so the client has finished sending when the 413 comes and
    /// reads it instead of a broken pipe; so is one that finds no room in the budget.
    async fn read(mut self, mut body: Body) -> BodyRead {
        if let Some(declared) = self.declared.filter(|n| *n > DRAIN_LIMIT) {
            return BodyRead::TooLarge { sample: Vec::new(), size: format!("Content-Length {declared}, not read") };
        }
        let mut received = 0usize;
        let mut overloaded = false;
        loop {
            let frame = match timeout_at(self.deadline, body.frame()).await {
                Ok(None) => break,
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) => return self.cut_short(received, overloaded, false, e.to_string()),
                Err(_) => return self.cut_short(received, overloaded, true, "timed out".into()),
            };
            let Ok(chunk) = frame.into_data() else { continue };
            received += chunk.len();
            if received > DRAIN_LIMIT {
                if overloaded {
                    return BodyRead::Overloaded;
                }
                self.to_sample();
                let size = format!("over {DRAIN_LIMIT} bytes, not read to the end");
                return BodyRead::TooLarge { sample: self.data, size };
            }
            if overloaded {
                continue;
            }
            if received <= self.limit {
                if self.make_room(received).await {
                    self.data.extend_from_slice(&chunk);
                } else {
                    // Drop what is held, read on and answer 503 at the end.
                    overloaded = true;
                    self.data = Vec::new();
                    self.held.keep(0);
                }
            } else {
                // Past the limit: keep only the sample while draining the rest.
                let room = OVERSIZED_SAMPLE.saturating_sub(self.data.len());
                self.data.extend_from_slice(&chunk[..room.min(chunk.len())]);
                self.to_sample();
            }
        }
        if overloaded {
            BodyRead::Overloaded
        } else if received > self.limit {
            BodyRead::TooLarge { sample: self.data, size: format!("{received} bytes sent") }
        } else {
            // A body of unknown length may have left its buffer up to half empty: give that back.
            if self.data.capacity() - self.data.len() > FIRST_BUFFER {
                self.data.shrink_to_fit();
                self.held.keep(self.data.capacity().div_ceil(1024));
            }
            BodyRead::Within(self.data)
        }
    }

    fn cut_short(mut self, received: usize, overloaded: bool, timed_out: bool, why: String) -> BodyRead {
        if overloaded {
            return BodyRead::Overloaded;
        }
        if received > self.limit {
            self.to_sample();
        }
        BodyRead::CutShort { kept: self.data, received, timed_out, why }
    }

    /// Cuts the data to the oversized sample and gives back the budget beyond it.
    fn to_sample(&mut self) {
        self.data.truncate(OVERSIZED_SAMPLE);
        self.data.shrink_to_fit();
        self.held.keep(self.data.capacity().div_ceil(1024));
    }

    /// Makes room for `needed` bytes with budget to match; false when no budget came in time.
    /// A body of declared length takes its whole length at once, so it never holds part of the
    /// budget while it waits for more (many such waits could block each other); one of unknown
    /// length grows its buffer, at most doubling, and waits less.
    async fn make_room(&mut self, needed: usize) -> bool {
        if needed <= self.data.capacity() {
            return true;
        }
        let (capacity, wait) = match self.declared.filter(|n| *n >= needed && *n <= self.limit) {
            Some(declared) => (declared, budget::DECLARED_WAIT),
            None => ((self.data.capacity() * 2).max(FIRST_BUFFER).min(self.limit).max(needed), budget::READ_WAIT),
        };
        let more = capacity.div_ceil(1024).saturating_sub(self.held.reading_kib());
        if more > 0 && !self.held.grow(self.budget, more, wait.min(self.deadline.saturating_duration_since(Instant::now()))).await {
            return false;
        }
        // Untouched capacity costs address space, not memory: pages are used as bytes arrive.
        self.data.reserve_exact(capacity - self.data.len());
        true
    }
}

/// Keeps a refused upload in the inbox and gives back the error to answer (or the storage error,
/// when even the refusal could not be kept). The write runs on its own task: when the client has
/// gone, its connection (and this request) may end first, and the row is kept all the same.
pub async fn refuse(state: &IngestState, meta: UploadMeta, error: AppError, reason: String) -> AppError {
    let rejected = Action::Rejected { status: error.status().as_u16(), reason };
    let store = state.store.clone();
    let kept = tokio::spawn(async move { store.apply(meta, None, rejected).await });
    match kept.await {
        Ok(Ok(_)) => error,
        Ok(Err(storage)) => storage.into(),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    }
}
