//! The HTTP surface: the shared state, the one router, the service routes (root, health, docs,
//! OpenAPI), the embedded files, and the server that bounds every connection in time and number.
//! Every route answers errors with `crate::error::AppError`.

pub mod assets;
mod router;
pub mod server;
mod slots;
pub mod state;
pub mod system;

pub use router::router;
pub use state::AppState;
