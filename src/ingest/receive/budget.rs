//! The memory that uploads in progress may use (`max_buffered_body_mb`): their bodies, and what
//! parsing and storing make of them. Two parts:
//!
//! - **what is made of bodies**: the parser and the writer take about four times a body's size
//!   again (measured: an 8 MiB tour batch peaks at ~40 MB), so at most `max_body_bytes` of bodies
//!   are parsed and stored at once — small uploads side by side, the largest one by one (the
//!   writer is one thread, so this costs little speed). Four times that is set aside;
//! - **bodies**, read and held until their answer: the rest, and never less than one largest
//!   body. Every byte is counted as it arrives (the buffer's capacity, in KiB); an upload that
//!   finds no room waits a little, reading more slowly, then gets 503 with `Retry-After`.
//!
//! With the defaults (64 MB, 8 MiB bodies): 32 MiB of bodies held at once, one 8 MiB body (or
//! many small ones) being parsed. Each request holds its share until its answer is ready
//! (`hold`), so the bound holds through parsing and storing, not only while reading.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Duration;

/// How long an upload of declared length waits for room to read its body (not reading it
/// meanwhile) before it gets 503: long enough for a burst of the largest tour batches to pass
/// one by one, short enough that a headset is not left hanging.
pub const DECLARED_WAIT: Duration = Duration::from_secs(10);
/// How long a body of unknown length waits for room to grow: it holds what it has meanwhile, so
/// the wait is short (waits that block each other end by it).
pub const READ_WAIT: Duration = Duration::from_secs(2);
/// How long a body that has arrived waits for its turn to be parsed and stored before 503.
const PARSE_WAIT: Duration = Duration::from_secs(30);
/// What parsing and storing a body take beyond the body itself, as a multiple of its size.
pub const PARSE_EXPANSION: usize = 4;

#[derive(Clone)]
pub struct BodyBudget {
    reading_kib: Arc<Semaphore>,
    parsing_kib: Arc<Semaphore>,
    parsing_total_kib: usize,
}

impl BodyBudget {
    /// `total` for uploads in progress (`max_buffered_body_bytes()`), with bodies of at most
    /// `largest` bytes (`max_body_bytes`).
    pub fn new(total: usize, largest: usize) -> BodyBudget {
        let kib = |bytes: usize| bytes.div_ceil(1024).clamp(1, Semaphore::MAX_PERMITS);
        let bodies = total.saturating_sub(largest.saturating_mul(PARSE_EXPANSION)).max(largest);
        BodyBudget {
            reading_kib: Arc::new(Semaphore::new(kib(bodies))),
            parsing_kib: Arc::new(Semaphore::new(kib(largest))),
            parsing_total_kib: kib(largest),
        }
    }

    /// The least `max_buffered_body_bytes()` that keeps uploads of `largest` bytes within it.
    pub fn least_total(largest: usize) -> usize {
        largest * (1 + PARSE_EXPANSION)
    }
}

/// The shares one request holds; shared between its reader and the `hold` layer around it.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Shares>>);

#[derive(Default)]
struct Shares {
    reading: Option<OwnedSemaphorePermit>,
    parsing: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn shares(&self) -> std::sync::MutexGuard<'_, Shares> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// KiB held for reading.
    pub fn reading_kib(&self) -> usize {
        self.shares().reading.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Takes `kib` more for reading: at once, or waiting up to `wait`; false when no room came.
    pub async fn grow(&self, budget: &BodyBudget, kib: usize, wait: Duration) -> bool {
        let Ok(kib) = u32::try_from(kib) else { return false };
        let permit = match budget.reading_kib.clone().try_acquire_many_owned(kib) {
            Ok(permit) => permit,
            Err(_) => {
                match tokio::time::timeout(wait, budget.reading_kib.clone().acquire_many_owned(kib)).await {
                    Ok(Ok(permit)) => permit,
                    _ => return false,
                }
            }
        };
        let mut shares = self.shares();
        match shares.reading.as_mut() {
            Some(held) => held.merge(permit),
            None => shares.reading = Some(permit),
        }
        true
    }

    /// Gives back all but `kib` of the share for reading.
    pub fn keep(&self, kib: usize) {
        if let Some(permit) = self.shares().reading.as_mut() {
            let extra = permit.num_permits().saturating_sub(kib);
            drop(permit.split(extra));
        }
    }

    /// Waits for the turn of a body of `bytes` to be parsed and stored; false when it did not
    /// come within `PARSE_WAIT`.
    pub async fn parse_turn(&self, budget: &BodyBudget, bytes: usize) -> bool {
        let most = budget.parsing_total_kib;
        let kib = u32::try_from(bytes.div_ceil(1024).clamp(1, most)).unwrap_or(u32::MAX);
        match tokio::time::timeout(PARSE_WAIT, budget.parsing_kib.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => {
                self.shares().parsing = Some(permit);
                true
            }
            _ => false,
        }
    }
}

/// Around each upload route: the request's shares live until its answer is built.
pub async fn hold(mut request: Request, next: Next) -> Response {
    let held = Held::default();
    request.extensions_mut().insert(held.clone());
    let response = next.run(request).await;
    drop(held);
    response
}
