//! Files embedded in the binary from `assets/`: the docs page and the OpenAPI document today,
//! the dashboard next.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// An embedded file with its content type; always revalidated (its name carries no version).
pub fn serve(name: &str) -> Response {
    match Assets::get(name) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache".to_string())], file.data).into_response()
        }
        None => AppError::NotFound(format!("{name} is missing from this build")).into_response(),
    }
}
