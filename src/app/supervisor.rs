//! The job supervisor: background jobs (the idle-tour sweep today; sync, backups and retention
//! next) run under one cancellation token. A job that fails or panics is restarted after a pause;
//! at shutdown every job is told to stop and given a moment to reach a safe point.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const RESTART_PAUSE: Duration = Duration::from_secs(5);
/// How long jobs may take to stop at shutdown before they are abandoned.
const STOP_WAIT: Duration = Duration::from_secs(10);

pub struct Supervisor {
    token: CancellationToken,
    jobs: JoinSet<()>,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor { token: CancellationToken::new(), jobs: JoinSet::new() }
    }

    /// Runs `job` until shutdown; it gets the token to watch and ends with `Ok` once cancelled.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, job: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let token = self.token.clone();
        self.jobs.spawn(async move {
            loop {
                // Its own task, so a panic is caught here instead of ending the supervisor.
                let outcome = tokio::spawn(job(token.clone())).await;
                if token.is_cancelled() {
                    return;
                }
                match outcome {
                    Ok(Ok(())) => tracing::warn!(job = name, "background job ended by itself; restarting it"),
                    Ok(Err(error)) => tracing::warn!(job = name, %error, "background job failed; restarting it"),
                    Err(panic) => tracing::error!(job = name, %panic, "background job panicked; restarting it"),
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(RESTART_PAUSE) => {}
                }
            }
        });
    }

    /// Tells every job to stop and waits (a bounded time) until they have.
    pub async fn shutdown(mut self) {
        self.token.cancel();
        let stopped = tokio::time::timeout(STOP_WAIT, async { while self.jobs.join_next().await.is_some() {} }).await;
        if stopped.is_err() {
            tracing::warn!("background jobs did not stop within {} s; abandoning them", STOP_WAIT.as_secs());
            self.jobs.abort_all();
        }
    }
}
