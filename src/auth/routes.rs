//! Sign-in, sign-out, who am I, and the first-run setup.

use axum::Router;

use super::AuthState;

pub fn router<S>() -> Router<S>
where
    AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
}
