//! The application state, split into what each surface uses: a handler asks for its own
//! sub-state (`State<IngestState>`), never for everything.

use axum::extract::FromRef;

use super::system::SystemState;
use crate::ingest::IngestState;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub ingest: IngestState,
    pub system: SystemState,
}
