//! The application state, split into what each surface uses: a handler asks for its own
//! sub-state (`State<IngestState>`), never for everything.

use axum::extract::FromRef;

use super::system::SystemState;
use crate::auth::control::ControlState;
use crate::auth::AuthState;
use crate::dashboard::DashboardState;
use crate::ingest::IngestState;
use crate::live::LiveState;
use crate::sync::control::SyncControlState;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub ingest: IngestState,
    pub system: SystemState,
    pub auth: AuthState,
    pub dashboard: DashboardState,
    pub live: LiveState,
    /// The local control token's digest (`nexero sync …` on this computer).
    pub control: ControlState,
    pub sync: SyncControlState,
}
