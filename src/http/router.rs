//! The one router: every surface's routes, one fallback for an unknown path and one for a method
//! a route does not take — both answered with the JSON error body — and the path spelling the old
//! backend accepted (a trailing slash, any letter case) mapped onto our routes before routing.

use axum::http::{Method, Uri};
use axum::Router;

use super::{system, AppState};
use crate::error::AppError;
use crate::{auth, dashboard, ingest, live, sync};
use crate::model::{route_spelling, Endpoint};

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ingest::router())
        .merge(system::router())
        .merge(auth::router())
        .merge(dashboard::router())
        .merge(live::router())
        .merge(sync::control::router())
        // After every route is in: the fallback goes to each route there is.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {}; see /docs for the API", uri.path()))
}

/// A known path with a method it does not take (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}; see /docs for the API", uri.path()))
}

/// Rewrites the path of a request to the route it names when it differs only by trailing
/// slashes or letter case (`POST /API/v1/Unreal/Session/` is `/api/v1/unreal/session`). Path
/// parameters (a session id) keep their case, the query is kept, and any other path is left as
/// it is (and answered 404 as before).
pub fn normalise_path<B>(request: &mut axum::http::Request<B>) {
    let uri = request.uri();
    let Some(path) = canonical_path(uri.path()) else { return };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    let Ok(path_and_query) = path_and_query.parse() else { return };
    parts.path_and_query = Some(path_and_query);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
}

/// The route `path` names, spelt as the route is, when that differs from `path`.
fn canonical_path(path: &str) -> Option<String> {
    let canonical = ROUTES.iter().find_map(|route| route_spelling(route, path))?;
    (canonical != path).then_some(canonical)
}

/// Every route path, in the router's syntax with the prefix; built once, looked at on every
/// request.
static ROUTES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let headset = Endpoint::ALL.into_iter().map(|e| e.route()).chain([ingest::STATUS_ROUTE]);
    headset.map(|route| format!("{}{route}", Endpoint::PREFIX)).chain(system::ROUTES.iter().map(|r| r.to_string())).collect()
});

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn trailing_slashes_and_case_map_onto_the_routes() {
        assert_eq!(canonical_path("/api/v1/unreal/session/").as_deref(), Some("/api/v1/unreal/session"));
        assert_eq!(canonical_path("/API/V1/Unreal/Session").as_deref(), Some("/api/v1/unreal/session"));
        assert_eq!(canonical_path("/api/v1/unreal/Tracking/Batch//").as_deref(), Some("/api/v1/unreal/tracking/batch"));
        assert_eq!(
            canonical_path("/api/v1/unreal/Session/AbC-1/Heartbeat/").as_deref(),
            Some("/api/v1/unreal/session/AbC-1/heartbeat")
        );
        assert_eq!(canonical_path("/Health/").as_deref(), Some("/health"));
        assert_eq!(canonical_path("/api/v1/unreal/session"), None);
        assert_eq!(canonical_path("/"), None);
        assert_eq!(canonical_path("/api/v1/unreal/nothing/"), None);
        assert_eq!(canonical_path("/api/v1/unreal/session//heartbeat"), None);
    }
}
