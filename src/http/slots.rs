//! The open connections, at most `max_connections`, and which of them may give up its place.
//!
//! A connection that has no request in progress — it has not sent a request's headers yet, or it
//! waits for the next one on keep-alive — costs a file descriptor and does nothing. When every
//! place is taken and a new connection arrives, the one that has waited longest like that is
//! closed for it: slowloris headers and idle connections cannot lock headsets and `/health` out,
//! they only push each other out. Only when every connection has a request in progress does a new
//! one get `503` with `Retry-After`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a new connection waits for the place of the connection closed for it.
const HANDOVER_WAIT: Duration = Duration::from_secs(1);
/// `waiting_since` of a connection with a request in progress.
const BUSY: u64 = u64::MAX;

pub struct Slots {
    places: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    epoch: Instant,
}

/// What the slots know of one open connection.
pub struct Connection {
    /// Milliseconds since `epoch` from when it last had no request in progress, or `BUSY`.
    waiting_since: AtomicU64,
    /// Whether it has had a request: then it is closed gracefully (an answer may be on its way).
    served: AtomicBool,
    /// Cancelled when its place is given to a new connection.
    pub evicted: CancellationToken,
    epoch: Instant,
}

impl Connection {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Its request's headers have arrived.
    pub fn request_started(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.waiting_since.store(BUSY, Ordering::Relaxed);
    }

    /// Its answer is ready; from now on it waits for the next request.
    pub fn request_done(&self) {
        self.waiting_since.store(self.now(), Ordering::Relaxed);
    }

    /// Whether it has had a request (then it must be closed gracefully, not dropped).
    pub fn served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }
}

/// What a new connection gets.
pub enum Take {
    Free(Place),
    /// A connection is being closed for it: its place, unless it does not close in time.
    Handover(Pin<Box<dyn Future<Output = Option<Place>> + Send>>),
    /// Every connection has a request in progress.
    Busy,
}

/// A place held by one connection; gives it back when dropped.
pub struct Place {
    slots: Arc<Slots>,
    id: u64,
    pub connection: Arc<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.slots.open.lock().expect("never poisoned").remove(&self.id);
    }
}

impl Slots {
    pub fn new(max_connections: usize) -> Arc<Slots> {
        Arc::new(Slots {
            places: Arc::new(Semaphore::new(max_connections)),
            open: Mutex::new(HashMap::with_capacity(max_connections)),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A place for a new connection: a free one; or the place of the connection that has
    /// waited longest without a request, once that one has closed; or none, when every
    /// connection has a request in progress.
    pub fn take(self: &Arc<Self>) -> Take {
        if let Ok(permit) = self.places.clone().try_acquire_owned() {
            return Take::Free(self.register(permit));
        }
        if !self.evict_longest_waiting() {
            return Take::Busy;
        }
        let slots = self.clone();
        Take::Handover(Box::pin(async move {
            let permit = tokio::time::timeout(HANDOVER_WAIT, slots.places.clone().acquire_owned()).await.ok()?.ok()?;
            Some(slots.register(permit))
        }))
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Place {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            waiting_since: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            served: AtomicBool::new(false),
            evicted: CancellationToken::new(),
            epoch: self.epoch,
        });
        self.open.lock().expect("never poisoned").insert(id, connection.clone());
        Place { slots: self.clone(), id, connection, _permit: permit }
    }

    /// Closes the connection that has waited longest without a request; false when none waits.
    fn evict_longest_waiting(&self) -> bool {
        let mut open = self.open.lock().expect("never poisoned");
        let longest = open
            .iter()
            .map(|(id, c)| (*id, c.waiting_since.load(Ordering::Relaxed)))
            .filter(|(_, since)| *since != BUSY)
            .min_by_key(|(_, since)| *since);
        let Some((id, _)) = longest else { return false };
        if let Some(connection) = open.remove(&id) {
            connection.evicted.cancel();
        }
        true
    }
}
