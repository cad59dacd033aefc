//! The background jobs the supervisor runs.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

const SWEEP_EVERY: Duration = Duration::from_secs(5);
const FORGET_EVERY: Duration = Duration::from_secs(3600);

/// Ends tours whose headset has gone quiet for longer than the idle timeout. A busy writer
/// (503) is no failure: the next sweep catches up.
pub async fn close_idle_tours(store: Store, token: CancellationToken) -> Result<(), String> {
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match store.close_idle_tours().await {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "closed idle tours as timed out"),
            Err(StoreError::Overloaded | StoreError::Unavailable(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Forgets `Idempotency-Key`s older than the resend window, once an hour.
pub async fn forget_old_resend_keys(store: Store, token: CancellationToken) -> Result<(), String> {
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = tokio::time::sleep(FORGET_EVERY) => {}
        }
        match store.forget_old_resend_keys().await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "forgot Idempotency-Keys older than the resend window"),
            Err(StoreError::Overloaded | StoreError::Unavailable(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
