//! The HTTP surface: the shared state, the one router, the service routes (root, health, docs,
//! OpenAPI), the embedded files and the one error type every route answers with.

pub mod assets;
pub mod error;
mod router;
pub mod state;
pub mod system;

pub use router::router;
pub use state::AppState;
