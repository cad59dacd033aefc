//! The live view: which headsets are touring now, pushed to browsers as Server-Sent Events.

use axum::Router;

use crate::store::Store;

#[derive(Clone)]
pub struct LiveState {
    pub store: Store,
}

pub fn router<S>() -> Router<S>
where
    LiveState: axum::extract::FromRef<S>,
    crate::auth::AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
}
