//! The single writer thread: group commit with a savepoint per request.
//!
//! Requests queue on a bounded channel. The thread takes everything queued (up to a cap), runs
//! each request inside its own SAVEPOINT of one transaction (a failing request cannot spoil the
//! others), commits once, and only then answers every request. One fsync serves many requests,
//! so `synchronous=FULL` costs little, and "2xx means committed" holds.
//!
//! The writer knows nothing of tours or events: it runs closures against the connection and a
//! state of the caller's type `S`, which hears when a request or a group fails (to drop caches)
//! and gets a last word before each commit (to flush roll-ups).
//!
//! Fairness: a request that carries a large batch is queued apart, and a group takes at most one
//! of them, so a small upload never waits behind more than one large batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::StoreError;

/// Requests taken into one transaction at most, so one commit stays short.
const MAX_GROUP_JOBS: usize = 1024;
/// Large requests that may wait for the writer; beyond this they are refused (503) even when
/// small ones are still taken.
const MAX_QUEUED_LARGE: usize = 64;
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the writer thread keeps between requests on behalf of the code whose jobs it runs.
pub trait WriterState: Send + 'static {
    /// A request's savepoint was rolled back (`ok` false) or released (`ok` true).
    fn request_done(&mut self, ok: bool);
    /// Runs inside the transaction, after the group's requests and before COMMIT.
    fn before_commit(&mut self, conn: &Connection) -> Result<(), StoreError>;
    /// The whole transaction was rolled back.
    fn group_failed(&mut self);
}

#[derive(Clone, Debug)]
pub struct WriterOptions {
    pub min_free_bytes: u64,
    /// Requests that may wait for the writer before new ones are refused (503).
    pub queue_capacity: usize,
}

trait Job<S>: Send {
    /// Runs inside the request's savepoint; false rolls the savepoint back.
    fn run(&mut self, conn: &Connection, state: &mut S) -> bool;
    /// Answers the request once the group's fate is known.
    fn finish(self: Box<Self>, commit: &Result<(), StoreError>);
}

struct Submitted<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<S, T, F> Job<S> for Submitted<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut S) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, state: &mut S) -> bool {
        let result = (self.work.take().expect("a job runs once"))(conn, state);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: &Result<(), StoreError>) {
        let answer = match commit {
            Ok(()) => self.result.unwrap_or_else(|| Err(StoreError::Internal("request was not run".into()))),
            Err(e) => Err(e.clone()),
        };
        // The requester may have gone away (client disconnected); the data is committed anyway.
        let _ = self.reply.send(answer);
    }
}

enum Message<S> {
    Job(Box<dyn Job<S>>),
    Stop(oneshot::Sender<()>),
}

pub struct Writer<S> {
    small: Sender<Message<S>>,
    large: Sender<Message<S>>,
    queued: Arc<AtomicUsize>,
    running: watch::Receiver<bool>,
}

impl<S> Clone for Writer<S> {
    fn clone(&self) -> Self {
        Writer { small: self.small.clone(), large: self.large.clone(), queued: self.queued.clone(), running: self.running.clone() }
    }
}

/// How big a request is, for the writer's fairness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Small,
    /// A large batch: at most one per group.
    Large,
}

/// Tells the watchers when the writer thread ends, however it ends (a panic included).
struct EndsRunning(watch::Sender<bool>);

impl Drop for EndsRunning {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

impl<S: WriterState> Writer<S> {
    /// Starts the thread; `held` (the data file's lock) is released when it ends.
    pub fn start<H: Send + 'static>(conn: Connection, state: S, options: WriterOptions, db_dir: PathBuf, held: H) -> Result<Writer<S>, StoreError> {
        let (small, small_receiver) = crossbeam_channel::bounded(options.queue_capacity);
        let (large, large_receiver) = crossbeam_channel::bounded(options.queue_capacity.min(MAX_QUEUED_LARGE));
        let queued = Arc::new(AtomicUsize::new(0));
        let (running_tx, running) = watch::channel(true);
        let thread = WriterThread { conn, state, options, db_dir, queued: queued.clone(), disk_checked: None };
        std::thread::Builder::new()
            .name("nexero-writer".into())
            .spawn(move || {
                let _ends = EndsRunning(running_tx);
                let _held = held;
                thread.run(small_receiver, large_receiver)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { small, large, queued, running })
    }

    /// Queues `work` and waits for its committed result.
    pub async fn submit<T, F>(&self, size: Size, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut S) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Submitted { work: Some(work), result: None, reply });
        let queue = match size {
            Size::Small => &self.small,
            Size::Large => &self.large,
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(refused) = queue.try_send(Message::Job(job)) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match refused {
                TrySendError::Full(_) => StoreError::Overloaded,
                TrySendError::Disconnected(_) => StoreError::Unavailable("the appliance is shutting down".into()),
            });
        }
        answer.await.map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    /// Lets the writer finish what is queued, checkpoint the WAL and exit.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        // The queue may be full: wait for room off the async threads.
        let sender = self.small.clone();
        let queued = tokio::task::spawn_blocking(move || sender.send(Message::Stop(done)).is_ok()).await;
        if queued.unwrap_or(false) {
            let _ = wait.await;
        }
        self.stopped().await;
    }
}

impl<S> Writer<S> {
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Resolves when the writer thread has ended, for whatever reason.
    pub async fn stopped(&self) {
        let mut running = self.running.clone();
        let _ = running.wait_for(|running| !running).await;
    }

}

struct WriterThread<S> {
    conn: Connection,
    state: S,
    options: WriterOptions,
    db_dir: PathBuf,
    queued: Arc<AtomicUsize>,
    disk_checked: Option<(Instant, Result<(), StoreError>)>,
}

impl<S: WriterState> WriterThread<S> {
    fn run(mut self, small: Receiver<Message<S>>, large: Receiver<Message<S>>) {
        loop {
            // Wait for anything; then build a group: at most one large request, every small one
            // queued (up to the cap).
            let first = crossbeam_channel::select! {
                recv(small) -> message => message,
                recv(large) -> message => message,
            };
            let Ok(first) = first else { break };
            let mut jobs = Vec::new();
            let mut stop = None;
            match first {
                Message::Job(job) => jobs.push(job),
                Message::Stop(done) => stop = Some(done),
            }
            if stop.is_none() {
                if let Ok(Message::Job(job)) = large.try_recv() {
                    jobs.push(job);
                }
                while jobs.len() < MAX_GROUP_JOBS {
                    match small.try_recv() {
                        Ok(Message::Job(job)) => jobs.push(job),
                        Ok(Message::Stop(done)) => {
                            stop = Some(done);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            self.commit(jobs);
            if let Some(done) = stop {
                // Finish whatever is still queued (fairness no longer matters), then stop.
                let mut rest = small.try_iter().chain(large.try_iter()).filter_map(|message| match message {
                    Message::Job(job) => Some(job),
                    Message::Stop(_) => None,
                });
                loop {
                    let group: Vec<_> = rest.by_ref().take(MAX_GROUP_JOBS).collect();
                    if group.is_empty() {
                        break;
                    }
                    self.commit(group);
                }
                self.checkpoint();
                let _ = done.send(());
                return;
            }
        }
        self.checkpoint();
    }

    fn commit(&mut self, jobs: Vec<Box<dyn Job<S>>>) {
        if !jobs.is_empty() {
            self.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
            self.commit_group(jobs);
        }
    }

    fn commit_group(&mut self, mut jobs: Vec<Box<dyn Job<S>>>) {
        let outcome = self.disk_ok().and_then(|()| self.run_group(&mut jobs));
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, requests = jobs.len(), "group commit failed; every request in it is answered with an error");
            self.state.group_failed();
        }
        for job in jobs {
            job.finish(&outcome);
        }
    }

    fn run_group(&mut self, jobs: &mut [Box<dyn Job<S>>]) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            for job in jobs.iter_mut() {
                // Cached statements: a savepoint per request is the writer's hottest overhead.
                self.conn.prepare_cached("SAVEPOINT request")?.execute([])?;
                let ok = job.run(&self.conn, &mut self.state);
                if ok {
                    self.conn.prepare_cached("RELEASE request")?.execute([])?;
                } else {
                    self.conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                }
                self.state.request_done(ok);
            }
            self.state.before_commit(&self.conn)?;
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Refuses writes while free disk space is below the configured floor.
    fn disk_ok(&mut self) -> Result<(), StoreError> {
        if let Some((at, verdict)) = &self.disk_checked {
            if at.elapsed() < DISK_CHECK_EVERY {
                return verdict.clone();
            }
        }
        let verdict = match fs4::available_space(&self.db_dir) {
            Ok(free) if free < self.options.min_free_bytes => Err(StoreError::Unavailable(format!(
                "only {} MB of disk space left (the floor is min_free_disk_mb = {}); free some space",
                free / 1_000_000,
                self.options.min_free_bytes / 1_000_000
            ))),
            _ => Ok(()),
        };
        self.disk_checked = Some((Instant::now(), verdict.clone()));
        verdict
    }

    fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
        }
    }
}
