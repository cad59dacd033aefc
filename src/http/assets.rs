//! Embedded files served under fixed names (the docs page and the OpenAPI document). The
//! dashboard embeds every file under `assets/` and serves the others under a versioned path.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::dashboard::pages;
use crate::error::AppError;

/// An embedded file with its content type; always revalidated (its name carries no version).
pub fn serve(name: &str) -> Response {
    match pages::file(name) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache".to_string())], file.data).into_response()
        }
        None => AppError::NotFound(format!("{name} is missing from this build")).into_response(),
    }
}
