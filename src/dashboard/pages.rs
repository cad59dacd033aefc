//! The dashboard's pages and files. Every file under `assets/` is embedded in the binary. Pages
//! are HTML, always revalidated (`no-cache`), and name every other file under
//! `/assets/<version>/…`, where the version is a hash of all embedded files: those URLs are cached
//! for good (`immutable`), and a build with any file changed has a new version, so a browser never
//! keeps a stale file. The app is one shell page routed in the browser; signed-out visitors are
//! sent to sign in and brought back.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::{EmbeddedFile, RustEmbed};
use sha2::{Digest, Sha256};

use super::DashboardState;
use crate::auth::AuthState;
use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The placeholder in a page that becomes the version of this build's files.
const VERSION_PLACEHOLDER: &str = "{{v}}";
/// The paths the app shell answers (besides `/`, which the service routes share with clients).
const APP_PATHS: [&str; 5] = ["/live", "/overview", "/tours", "/tours/{id}", "/headsets"];
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Sent with every page: scripts only from our own files (no inline script), no framing.
const PAGE_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    ),
];

/// A short hash of every embedded file's name and contents, computed once.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    let mut hasher = Sha256::new();
    for name in names {
        if let Some(file) = Assets::get(&name) {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(file.metadata.sha256_hash());
        }
    }
    hasher.finalize()[..6].iter().map(|byte| format!("{byte:02x}")).collect()
});

pub fn router<S>() -> Router<S>
where
    DashboardState: axum::extract::FromRef<S>,
    AuthState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let router = Router::new()
        .route("/login", get(|| async { page("login.html") }))
        .route("/setup", get(|| async { page("setup.html") }))
        .route("/assets/{version}/{*file}", get(versioned));
    APP_PATHS.into_iter().fold(router, |router, path| router.route(path, get(app)))
}

/// An embedded file by its path under `assets/`.
pub fn file(name: &str) -> Option<EmbeddedFile> {
    Assets::get(name)
}

/// The `Content-Type` of an embedded file, by its extension.
fn content_type(name: &str) -> String {
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    let known = match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => return mime_of(name),
    };
    known.to_string()
}

fn mime_of(name: &str) -> String {
    Assets::get(name)
        .map_or_else(|| "application/octet-stream".to_string(), |file| file.metadata.mimetype().to_string())
}

/// The app shell for a signed-in viewer; anyone else is sent to sign in, and back here after.
pub async fn app_shell(auth: &AuthState, headers: &HeaderMap, uri: &Uri) -> Response {
    match auth.viewer(headers).await {
        Ok(Some(_)) => page("index.html"),
        Ok(None) => {
            let here = uri.path_and_query().map_or("/", |path| path.as_str());
            Redirect::to(&format!("/login?next={}", encode_query_value(here))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn app(State(auth): State<AuthState>, uri: Uri, headers: HeaderMap) -> Response {
    app_shell(&auth, &headers, &uri).await
}

/// A page: its HTML naming this build's files, revalidated on every visit.
fn page(name: &str) -> Response {
    let Some(file) = Assets::get(name) else {
        return AppError::NotFound(format!("{name} is missing from this build")).into_response();
    };
    let html = String::from_utf8_lossy(&file.data).replace(VERSION_PLACEHOLDER, &VERSION);
    let mut response =
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html)
            .into_response();
    for (name, value) in PAGE_HEADERS {
        response.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}

/// A file under this build's version, cached for good. Another version is another build's (a
/// page loaded before an upgrade): not found, never this build's file under that name. Pages
/// are only served as pages (they need the version filled in).
async fn versioned(Path((version, name)): Path<(String, String)>) -> Response {
    let servable = version == *VERSION && !name.ends_with(".html") && !name.split('/').any(|part| part == "..");
    let Some(file) = servable.then(|| Assets::get(&name)).flatten() else {
        return AppError::NotFound(format!("/assets/{version}/{name} is not a file of this build; reload the page"))
            .into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, content_type(&name)),
        (header::CACHE_CONTROL, IMMUTABLE.to_string()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
    ];
    (headers, file.data).into_response()
}

/// Percent-encodes `text` for a query value, keeping `/` readable.
fn encode_query_value(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_is_one_query_value() {
        assert_eq!(encode_query_value("/tours?period=30d&q=a b"), "/tours%3Fperiod%3D30d%26q%3Da%20b");
    }

    #[test]
    fn files_have_their_content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("openapi.json"), "application/json");
    }
}
