//! The HTTP surface: the shared state, the one router, the service routes (root, health, docs,
//! OpenAPI) and the embedded files. Every route answers errors with `crate::error::AppError`.

pub mod assets;
mod router;
pub mod state;
pub mod system;

pub use router::router;
pub use state::AppState;
