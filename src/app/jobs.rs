//! The background jobs the supervisor runs: periodic write-side upkeep through the writer queue.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

const SWEEP_EVERY: Duration = Duration::from_secs(5);
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Ends tours whose headset has gone quiet for longer than the idle timeout.
pub async fn close_idle_tours(store: Store, token: CancellationToken) -> Result<(), String> {
    every(SWEEP_EVERY, token, "closed idle tours as timed out", move || {
        let store = store.clone();
        async move { store.close_idle_tours().await }
    })
    .await
}

/// Forgets `Idempotency-Key`s older than the resend window.
pub async fn forget_old_resend_keys(store: Store, token: CancellationToken) -> Result<(), String> {
    every(FORGET_EVERY, token, "forgot Idempotency-Keys older than the resend window", move || {
        let store = store.clone();
        async move { store.forget_old_resend_keys().await }
    })
    .await
}

/// Forgets expired staff sessions (and an expired setup link).
pub async fn forget_expired_sessions(store: Store, token: CancellationToken) -> Result<(), String> {
    every(FORGET_EVERY, token, "forgot expired staff sessions", move || {
        let store = store.clone();
        async move { store.write(crate::store::staff::delete_expired).await }
    })
    .await
}

/// Runs `work` every `period` until cancelled, logging `done` with how many rows it changed. A
/// busy or unavailable writer (503) is no failure: the next round catches up.
async fn every<F, Fut>(period: Duration, token: CancellationToken, done: &'static str, work: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize, StoreError>>,
{
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = tokio::time::sleep(period) => {}
        }
        match work().await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "{done}"),
            Err(StoreError::Overloaded | StoreError::Unavailable(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
