//! The dashboard's pages and files.

use axum::Router;

use super::DashboardState;

pub fn router<S>() -> Router<S>
where
    DashboardState: axum::extract::FromRef<S>,
    crate::auth::AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
}
