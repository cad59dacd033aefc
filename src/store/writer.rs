//! The single writer thread: group commit with a savepoint per request.
//!
//! Requests queue on a bounded channel. The thread takes everything queued (up to a cap), runs
//! each request inside its own SAVEPOINT of one transaction (a failing request cannot spoil the
//! others), commits once, and only then answers every request. One fsync serves many requests,
//! so `synchronous=FULL` costs little, and "2xx means committed" holds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::upload::{self, Cache, Rollup};
use super::{now_ms, StoreError};

/// Requests taken into one transaction at most, so one commit stays short.
const MAX_GROUP_JOBS: usize = 1024;
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct WriterOptions {
    pub tz: chrono_tz::Tz,
    pub max_dwell_ms: i64,
    pub idle_timeout_ms: i64,
    pub min_free_bytes: u64,
    /// Requests that may wait for the writer before new ones are refused (503).
    pub queue_capacity: usize,
}

/// What a request's closure sees on the writer thread.
pub struct WriteCtx<'a> {
    pub conn: &'a Connection,
    pub cache: &'a mut Cache,
    pub options: &'a WriterOptions,
    pub now: i64,
    /// This request's roll-up deltas; kept only if the request succeeds.
    pub rollup: Rollup,
}

trait Job: Send {
    /// Runs inside the request's savepoint; false rolls the savepoint back.
    fn run(&mut self, ctx: &mut WriteCtx) -> bool;
    /// Answers the request once the group's fate is known.
    fn finish(self: Box<Self>, commit: &Result<(), StoreError>);
}

struct Submitted<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Submitted<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, ctx: &mut WriteCtx) -> bool {
        let result = (self.work.take().expect("a job runs once"))(ctx);
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

enum Message {
    Job(Box<dyn Job>),
    Stop(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    sender: SyncSender<Message>,
    queued: Arc<AtomicUsize>,
}

impl Writer {
    pub fn start(conn: Connection, options: WriterOptions, db_path: PathBuf) -> Result<Writer, StoreError> {
        let (sender, receiver) = mpsc::sync_channel(options.queue_capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = queued.clone();
        std::thread::Builder::new()
            .name("nexero-writer".into())
            .spawn(move || WriterThread::new(conn, options, db_path, thread_queued).run(receiver))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { sender, queued })
    }

    /// Queues `work` and waits for its committed result.
    pub async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Submitted { work: Some(work), result: None, reply });
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(Message::Job(job)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(StoreError::Overloaded);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(StoreError::Unavailable("the appliance is shutting down".into()));
            }
        }
        answer.await.map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Lets the writer finish what is queued, checkpoint the WAL and exit.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        // The queue may be full: wait for room off the async threads.
        let sender = self.sender.clone();
        let queued = tokio::task::spawn_blocking(move || sender.send(Message::Stop(done)).is_ok()).await;
        if queued.unwrap_or(false) {
            let _ = wait.await;
        }
    }
}

struct WriterThread {
    conn: Connection,
    options: WriterOptions,
    cache: Cache,
    db_dir: PathBuf,
    queued: Arc<AtomicUsize>,
    disk_checked: Option<(Instant, Result<(), StoreError>)>,
    last_sweep: Instant,
}

impl WriterThread {
    fn new(conn: Connection, options: WriterOptions, db_path: PathBuf, queued: Arc<AtomicUsize>) -> Self {
        let db_dir = db_path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        WriterThread { conn, options, cache: Cache::default(), db_dir, queued, disk_checked: None, last_sweep: Instant::now() }
    }

    fn run(mut self, receiver: Receiver<Message>) {
        loop {
            let first = match receiver.recv_timeout(SWEEP_EVERY) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    self.sweep();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut jobs = Vec::new();
            let mut stop = None;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Job(job) => jobs.push(job),
                    Message::Stop(done) => {
                        stop = Some(done);
                        // Take whatever is still queued, then stop.
                        while let Ok(Message::Job(job)) = receiver.try_recv() {
                            jobs.push(job);
                        }
                        break;
                    }
                }
                if jobs.len() < MAX_GROUP_JOBS {
                    next = receiver.try_recv().ok();
                }
            }
            if !jobs.is_empty() {
                self.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
                self.commit_group(jobs);
            }
            if self.last_sweep.elapsed() >= SWEEP_EVERY {
                self.sweep();
            }
            if let Some(done) = stop {
                self.checkpoint();
                let _ = done.send(());
                return;
            }
        }
        self.checkpoint();
    }

    fn commit_group(&mut self, mut jobs: Vec<Box<dyn Job>>) {
        let outcome = self.disk_ok().and_then(|()| self.run_group(&mut jobs));
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, requests = jobs.len(), "group commit failed; every request in it is answered with an error");
            self.cache = Cache::default();
        }
        for job in jobs {
            job.finish(&outcome);
        }
    }

    fn run_group(&mut self, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            // Roll-up deltas of the whole group, written once per key just before the commit.
            let mut group_rollup = Rollup::default();
            for job in jobs.iter_mut() {
                // Cached statements: a savepoint per request is the writer's hottest overhead.
                self.conn.prepare_cached("SAVEPOINT request")?.execute([])?;
                let mut ctx = WriteCtx {
                    conn: &self.conn,
                    cache: &mut self.cache,
                    options: &self.options,
                    now: now_ms(),
                    rollup: Rollup::default(),
                };
                if job.run(&mut ctx) {
                    group_rollup.merge(ctx.rollup);
                    self.conn.prepare_cached("RELEASE request")?.execute([])?;
                } else {
                    self.conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                    // The cache may describe rows that were just rolled back.
                    self.cache = Cache::default();
                }
            }
            group_rollup.flush(&self.conn)?;
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

    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        let mut ctx =
            WriteCtx { conn: &self.conn, cache: &mut self.cache, options: &self.options, now: now_ms(), rollup: Rollup::default() };
        if let Err(e) = upload::close_idle_tours(&mut ctx) {
            tracing::warn!(error = %e, "closing idle tours failed; will retry");
        }
    }

    fn checkpoint(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "WAL checkpoint at shutdown failed");
        }
    }
}
