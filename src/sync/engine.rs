//! The sync job: wakes on its timer (the interval, or the backoff after a failure) and on
//! `SyncHandle::wake`, drains the outbox — each tour's row first, then its events in bounded
//! batches — and records progress through small writes. One request at a time.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BatchLimit};
use super::classify::{describe, Class};
use super::payload::{self, Row, Table};
use super::send::{send_rows, Halt};
use super::{SyncConfig, SyncHandle, SyncState, Target};
use crate::store::sync::{self as outbox, Pending, TourRecord};
use crate::store::{now_ms, Store, StoreError};

/// Tours taken per selection (their rows go in one request, their events after).
const TOURS_PER_SELECTION: usize = 200;
/// After a configuration error, the next try waits at least this (or the cap, if smaller).
const STOPPED_RETRY: Duration = Duration::from_secs(300);

/// Runs sync until `token` is cancelled (the supervisor restarts it if it fails).
pub async fn run(handle: SyncHandle, config: SyncConfig, token: CancellationToken) -> Result<(), String> {
    let Some(store) = handle.store() else { return Ok(token.cancelled().await) };
    if !config.enabled {
        handle.update(|s| s.state = SyncState::Disabled);
        token.cancelled().await;
        return Ok(());
    }
    let site_id = match &config.site_id {
        Some(id) => id.clone(),
        None => {
            let candidate = uuid::Uuid::now_v7().to_string();
            store.write(move |c| outbox::site_id(c, &candidate)).await.map_err(|e| e.to_string())?
        }
    };
    handle.update(|s| s.site_id = Some(site_id.clone()));
    let target = match Target::new(&config) {
        Ok(target) => target,
        Err(error) => {
            tracing::error!(%error, "cloud sync cannot start");
            handle.update(|s| (s.state, s.last_error) = (SyncState::Stopped, Some(error)));
            token.cancelled().await;
            return Ok(());
        }
    };
    tracing::info!(target = config.target_kind(), %site_id, "cloud sync started");
    let mut engine = Engine {
        backoff: Backoff::new(config.retry_base, config.retry_cap),
        limit: BatchLimit::new(config.batch_rows, config.batch_bytes),
        handle: handle.clone(),
        store,
        target,
        site_id,
        selection: Vec::new(),
    };
    let (mut wait, mut forced) = (Duration::ZERO, false);
    loop {
        if !wait.is_zero() {
            let next = payload::time(now_ms() + wait.as_millis() as i64);
            handle.update(|s| s.next_attempt = Some(next));
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => forced = engine.backoff.failures() > 0,
                () = handle.woken() => forced = true,
            }
        }
        let outcome = tokio::select! {
            () = token.cancelled() => return Ok(()),
            outcome = engine.drain(forced) => outcome,
        };
        wait = engine.settle(outcome, config.interval).await;
        forced = false;
    }
}

struct Engine {
    handle: SyncHandle,
    store: Store,
    target: Target,
    site_id: String,
    backoff: Backoff,
    limit: BatchLimit,
    /// The tours being sent (their failures are recorded on them).
    selection: Vec<i64>,
}

impl Engine {
    /// Sends every pending tour that is due (all of them when `forced`).
    async fn drain(&mut self, forced: bool) -> Result<(), Halt> {
        let mut sent_any = false;
        loop {
            self.refresh().await;
            // Tours whose retry time comes with this round's timer are due too.
            let due = if forced { i64::MAX } else { now_ms() + 1000 };
            let pending = self.store.read(move |c| outbox::pending(c, due, TOURS_PER_SELECTION)).await?;
            if pending.is_empty() {
                break;
            }
            self.handle.update(|s| (s.state, s.last_attempt) = (SyncState::Sending, Some(payload::time(now_ms()))));
            self.selection = pending.iter().map(|p| p.session_id).collect();
            self.send_tours(pending).await?;
            sent_any = true;
        }
        if sent_any {
            let site = payload::body(&[payload::site_row(&self.site_id, now_ms())]);
            if let Err(f) = self.target.upsert(Table::Sites, site).await {
                tracing::debug!(error = %f.message, "could not note the site's last sync in nexero_sites");
            }
        }
        Ok(())
    }

    async fn send_tours(&mut self, pending: Vec<Pending>) -> Result<(), Halt> {
        let ids: Vec<i64> = pending.iter().map(|p| p.session_id).collect();
        let tours: Vec<TourRecord> = self.store.read(move |c| ids.iter().map(|id| outbox::tour(c, *id)).collect()).await?;
        let rows: Vec<Row> = tours.iter().map(|t| payload::session_row(t, &self.site_id)).collect();
        let refused = send_rows(&mut self.target, &self.store, &mut self.limit, Table::Sessions, &rows).await?;
        // A tour whose own row is refused waits whole (quarantined), events included.
        let mut open: Vec<Cursor> = pending
            .iter()
            .zip(&tours)
            .filter(|(p, _)| !refused.iter().any(|r| r.session_id == p.session_id))
            .map(|(p, t)| Cursor { pending: p.clone(), uuid: t.uuid.clone(), row: rows.iter().find(|r| r.session_id == t.id).cloned(), after: p.events_synced_to, done: false })
            .collect();
        let mut events = 0u64;
        while open.iter().any(|c| !c.done) {
            let chunk = self.next_chunk(&mut open).await?;
            events += chunk.len() as u64;
            self.send_events(&chunk, &open).await?;
            let mut marks: HashMap<i64, i64> = HashMap::new();
            for row in &chunk {
                let mark = marks.entry(row.session_id).or_default();
                *mark = (*mark).max(row.event_id.unwrap_or(0));
            }
            let marks: Vec<(i64, i64)> = marks.into_iter().collect();
            self.store.write(move |c| outbox::mark_events(c, &marks)).await?;
        }
        let versions: Vec<(i64, i64)> = open.iter().map(|c| (c.pending.session_id, c.pending.version)).collect();
        let tours_done = versions.len() as u64;
        self.store.write(move |c| outbox::mark_synced(c, &versions, now_ms())).await?;
        let now = payload::time(now_ms());
        self.handle.update(|s| {
            s.tours_sent += tours_done;
            s.events_sent += events;
            s.last_success = Some(now);
            s.last_error = None;
            s.batch_rows = self.limit.rows();
        });
        Ok(())
    }

    /// The next batch of events over the open tours, in tour then id order, within the limits.
    async fn next_chunk(&mut self, open: &mut [Cursor]) -> Result<Vec<Row>, StoreError> {
        let (max_rows, max_bytes) = (self.limit.rows(), self.limit.max_bytes);
        let mut chunk: Vec<Row> = Vec::new();
        let mut bytes = 0usize;
        for cursor in open.iter_mut().filter(|c| !c.done) {
            let room = max_rows - chunk.len();
            if room == 0 || bytes >= max_bytes {
                break;
            }
            let (session_id, after) = (cursor.pending.session_id, cursor.after);
            let records = self.store.read(move |c| outbox::events_after(c, session_id, after, room)).await?;
            let exhausted = records.len() < room;
            let mut all_taken = true;
            for record in &records {
                let row = payload::event_row(record, &cursor.uuid, &self.site_id);
                if !chunk.is_empty() && bytes + row.json.len() + 1 > max_bytes {
                    all_taken = false;
                    break;
                }
                bytes += row.json.len() + 1;
                cursor.after = record.id;
                chunk.push(row);
            }
            cursor.done = exhausted && all_taken;
        }
        Ok(chunk)
    }

    /// Sends one chunk, table by table. A missing tour upstream (23503) is sent again once.
    async fn send_events(&mut self, chunk: &[Row], open: &[Cursor]) -> Result<(), Halt> {
        let mut parents_resent = false;
        'again: loop {
            for table in Table::EVENTS {
                let rows: Vec<Row> = chunk.iter().filter(|r| r.table == table).cloned().collect();
                if rows.is_empty() {
                    continue;
                }
                match send_rows(&mut self.target, &self.store, &mut self.limit, table, &rows).await {
                    Ok(_) => {}
                    Err(Halt::MissingParent(failure)) if !parents_resent => {
                        tracing::warn!(error = %failure.message, "the cloud lacks a tour of these events; sending the tours again");
                        let parents: Vec<Row> = open
                            .iter()
                            .filter(|c| chunk.iter().any(|r| r.session_id == c.pending.session_id))
                            .filter_map(|c| c.row.clone())
                            .collect();
                        send_rows(&mut self.target, &self.store, &mut self.limit, Table::Sessions, &parents).await?;
                        parents_resent = true;
                        continue 'again;
                    }
                    Err(Halt::MissingParent(failure)) => return Err(Halt::Retry(failure, Class::MissingParent)),
                    Err(halt) => return Err(halt),
                }
            }
            return Ok(());
        }
    }

    /// After a round: the wait before the next one, with the status and the tours' records.
    async fn settle(&mut self, outcome: Result<(), Halt>, interval: Duration) -> Duration {
        let (failure, class) = match outcome {
            Ok(()) => {
                self.backoff.reset();
                self.refresh().await;
                self.handle.update(|s| (s.state, s.batch_rows) = (SyncState::Idle, self.limit.rows()));
                return interval;
            }
            Err(Halt::Store(e)) => {
                tracing::warn!(error = %e, "cloud sync could not use the local database; retrying");
                let wait = self.backoff.next(None);
                self.handle.update(|s| (s.state, s.last_error) = (SyncState::Retrying, Some(format!("local database: {e}"))));
                return wait;
            }
            Err(Halt::Stop(f)) => (f, Class::Stop),
            Err(Halt::Retry(f, class)) => (f, class),
            Err(Halt::MissingParent(f)) => (f, Class::MissingParent),
        };
        let error = describe(&failure, class);
        let (state, wait) = if class == Class::Stop {
            tracing::error!(%error, "cloud sync stopped; fix the configuration (it retries every few minutes)");
            let wait = self.backoff.next(failure.retry_after);
            (SyncState::Stopped, wait.max(STOPPED_RETRY.min(self.backoff.cap())))
        } else {
            let wait = self.backoff.next(failure.retry_after);
            tracing::warn!(%error, retry_in_secs = wait.as_secs(), "cloud sync failed; will retry");
            (SyncState::Retrying, wait)
        };
        let ids = std::mem::take(&mut self.selection);
        let (message, next) = (error.clone(), now_ms() + wait.as_millis() as i64);
        if let Err(e) = self.store.write(move |c| outbox::record_failure(c, &ids, &message, next)).await {
            tracing::debug!(error = %e, "could not record the sync failure on the tours");
        }
        self.refresh().await;
        self.handle.update(|s| (s.state, s.last_error, s.batch_rows) = (state, Some(error), self.limit.rows()));
        wait
    }

    async fn refresh(&self) {
        self.handle.refreshed().await;
    }
}

/// A tour being sent: how far its events have been taken.
struct Cursor {
    pending: Pending,
    uuid: String,
    /// Its own row, sent again when the cloud says it lacks it.
    row: Option<Row>,
    after: i64,
    done: bool,
}
