//! The sales dashboard: its pages (embedded files, served to signed-in staff) and the JSON API
//! under `/api/v1` the pages use — also kept compatible with the old cloud dashboard API.

mod analytics;
mod api;
mod digest;
mod export;
mod overview;
pub mod pages;
pub mod period;
mod query;
mod sessions;
mod shapes;

pub use period::iso;

use axum::Router;
use tower_http::compression::CompressionLayer;

use crate::store::Store;

/// What the dashboard's pages and API need.
#[derive(Clone)]
pub struct DashboardState {
    pub store: Store,
    /// The site's time zone: a day, a period and "today" are the showroom's.
    pub tz: chrono_tz::Tz,
}

pub fn router<S>() -> Router<S>
where
    DashboardState: axum::extract::FromRef<S>,
    crate::auth::AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().merge(pages::router()).merge(api::router()).layer(CompressionLayer::new())
}
