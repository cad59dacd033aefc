//! Cloud sync: completed tours and their events go to the cloud (docs/sync.md).
//!
//! The outbox lives in SQLite (`store::sync`), filled in the transactions that end or change a
//! tour. One supervised job ([`run`]) sends it, one request at a time, to one of two targets
//! chosen by the URL's scheme: `postgrest` (Supabase / PostgREST over HTTPS) or `postgres`
//! (a direct connection). Both get the same JSON, built in [`payload`]. Failures are classified
//! by [`classify`]: retried with backoff, bisected to a poison row that is quarantined, or
//! stopping sync with an alert. [`SyncHandle`] is how the rest of the appliance sees it: a
//! status for /health and the API, `wake` for "sync now".

pub mod backoff;
pub mod classify;
pub mod control;
mod engine;
pub mod payload;
mod postgres;
mod postgrest;
mod send;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::config::SyncSettings;
use crate::store::{Store, StoreError};
use classify::Failure;
use payload::Table;

pub use engine::run;

/// How long one request may take before it counts as timed out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `[sync]` as the engine uses it.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub url: String,
    pub key: String,
    pub enabled: bool,
    pub interval: Duration,
    /// None: the one kept in the database (generated once).
    pub site_id: Option<String>,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub batch_rows: usize,
    pub batch_bytes: usize,
    pub request_timeout: Duration,
}

impl SyncConfig {
    /// None when no cloud is configured: then nothing is sent and nothing fails.
    pub fn from_settings(s: &SyncSettings) -> Option<SyncConfig> {
        (!s.url.trim().is_empty()).then(|| SyncConfig {
            url: s.url.trim().to_owned(),
            key: s.key.expose().to_owned(),
            enabled: s.enabled,
            interval: Duration::from_secs(s.interval_secs),
            site_id: (!s.site_id.is_empty()).then(|| s.site_id.to_lowercase()),
            retry_base: Duration::from_secs(s.retry_base_secs),
            retry_cap: Duration::from_secs(s.retry_cap_secs),
            batch_rows: s.batch_rows,
            batch_bytes: s.batch_kib * 1024,
            request_timeout: REQUEST_TIMEOUT,
        })
    }

    /// `postgres` for a postgres:// URL, else `postgrest`.
    pub fn target_kind(&self) -> &'static str {
        target_kind(&self.url)
    }
}

pub fn target_kind(url: &str) -> &'static str {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") { "postgres" } else { "postgrest" }
}

/// Where rows go: one of the two targets, chosen by the URL.
pub enum Target {
    Postgrest(postgrest::Postgrest),
    Postgres(postgres::Postgres),
}

impl Target {
    pub fn new(config: &SyncConfig) -> Result<Target, String> {
        Ok(match config.target_kind() {
            "postgres" => Target::Postgres(postgres::Postgres::new(&config.url, &config.key, config.request_timeout)?),
            _ => Target::Postgrest(postgrest::Postgrest::new(&config.url, &config.key, config.request_timeout)?),
        })
    }

    /// One batch of rows (a JSON array of `table`'s objects) as one atomic upsert.
    pub async fn upsert(&mut self, table: Table, body: String) -> Result<(), Failure> {
        match self {
            Target::Postgrest(t) => t.upsert(table, body).await,
            Target::Postgres(t) => t.upsert(table, body).await,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    /// No cloud configured, or `[sync] enabled = false`.
    Disabled,
    /// Nothing to send (or waiting for the next round).
    Idle,
    Sending,
    /// The last attempt failed for a passing reason; the next is scheduled.
    Retrying,
    /// The cloud refused the configuration (credentials, URL, schema); retrying slowly.
    Stopped,
}

/// What sync is doing, for /health, the API and the dashboard. Times are RFC 3339.
#[derive(Clone, Debug, Serialize)]
pub struct SyncStatus {
    pub configured: bool,
    pub enabled: bool,
    /// `postgrest` or `postgres`.
    pub target: Option<&'static str>,
    pub state: SyncState,
    /// Tours not yet (fully) in the cloud.
    pub queue_depth: i64,
    /// Since when the oldest of them waits.
    pub oldest_unsynced: Option<String>,
    /// When the cloud last took a whole tour.
    pub last_success: Option<String>,
    pub last_attempt: Option<String>,
    /// The last failure in plain words (cleared by a success).
    pub last_error: Option<String>,
    pub next_attempt: Option<String>,
    /// Rows the cloud refused, kept aside until retried.
    pub quarantined: i64,
    pub site_id: Option<String>,
    /// Rows per request now (smaller after the cloud said too big or too slow).
    pub batch_rows: usize,
    /// Since the appliance started.
    pub tours_sent: u64,
    pub events_sent: u64,
}

struct Inner {
    status: Mutex<SyncStatus>,
    wake: Notify,
    store: Option<Store>,
}

/// The running sync as the rest of the appliance sees it. Cheap to clone.
#[derive(Clone)]
pub struct SyncHandle {
    inner: Arc<Inner>,
}

impl SyncHandle {
    /// For an appliance with `store`; `config` None when no cloud is configured.
    pub fn new(store: Store, config: Option<&SyncConfig>) -> SyncHandle {
        SyncHandle::build(Some(store), config)
    }

    /// A handle with nothing behind it (no store, no cloud).
    pub fn disabled() -> SyncHandle {
        SyncHandle::build(None, None)
    }

    fn build(store: Option<Store>, config: Option<&SyncConfig>) -> SyncHandle {
        let enabled = config.is_some_and(|c| c.enabled);
        let status = SyncStatus {
            configured: config.is_some(),
            enabled,
            target: config.map(SyncConfig::target_kind),
            state: if enabled { SyncState::Idle } else { SyncState::Disabled },
            queue_depth: 0,
            oldest_unsynced: None,
            last_success: None,
            last_attempt: None,
            last_error: None,
            next_attempt: None,
            quarantined: 0,
            site_id: config.and_then(|c| c.site_id.clone()),
            batch_rows: config.map_or(0, |c| c.batch_rows),
            tours_sent: 0,
            events_sent: 0,
        };
        SyncHandle { inner: Arc::new(Inner { status: Mutex::new(status), wake: Notify::new(), store }) }
    }

    /// The last snapshot (the queue figures as of the engine's last look).
    pub fn status(&self) -> SyncStatus {
        self.inner.status.lock().expect("sync status lock").clone()
    }

    /// The snapshot with the queue figures read from the database now (on the reader pool).
    pub async fn refreshed(&self) -> SyncStatus {
        if let Some(store) = &self.inner.store {
            if let Ok(facts) = store.read(crate::store::sync::queue_facts).await {
                self.update(|s| apply_facts(s, &facts));
            }
        }
        self.status()
    }

    /// Starts a round now ("sync now"), whatever the timer or backoff says.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Queues every quarantined row again and starts a round; returns how many rows.
    pub async fn retry_quarantined(&self) -> Result<usize, StoreError> {
        let Some(store) = &self.inner.store else { return Ok(0) };
        let rows = store.write(|c| crate::store::sync::retry_quarantined(c, crate::store::now_ms())).await?;
        self.wake();
        Ok(rows)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.inner.status.lock().expect("sync status lock"));
    }

    fn store(&self) -> Option<Store> {
        self.inner.store.clone()
    }

    async fn woken(&self) {
        self.inner.wake.notified().await
    }
}

fn apply_facts(s: &mut SyncStatus, facts: &crate::store::sync::QueueFacts) {
    s.queue_depth = facts.pending_tours;
    s.oldest_unsynced = facts.oldest_queued_at.map(payload::time);
    s.quarantined = facts.quarantined_rows;
    if let Some(at) = facts.last_synced_at {
        let at = payload::time(at);
        if s.last_success.as_ref().is_none_or(|known| *known < at) {
            s.last_success = Some(at);
        }
    }
}
