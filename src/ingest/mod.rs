//! The headset API under `/api/v1/unreal`, compatible with every Nexero headset build.
//!
//! Every upload route is one [`Endpoint`]: the router tags the request with it, `receive` reads
//! the body, the endpoint's parser (`parse`, pure code in `payload` and `tracking`) says what it
//! means, the store keeps the raw body in the inbox in the same transaction as what was parsed
//! from it — a body we cannot understand is kept too — and `answers` builds the old backend's
//! answer after the commit.

pub mod answers;
pub mod parse;
pub mod payload;
mod receive;
pub mod reprocess;
pub mod timefmt;
pub mod tracking;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use answers::{iso, seconds, Gist};
use payload::ParseContext;
use receive::Received;
pub use receive::BodyBudget;

use crate::error::Result;
use crate::model::Endpoint;
use crate::store::{now_ms, tours, Store};

/// What the headset API needs.
#[derive(Clone)]
pub struct IngestState {
    pub store: Store,
    pub parse: ParseContext,
    /// Largest body taken (`max_body_bytes`).
    pub max_body_bytes: usize,
    /// A request body must have arrived this long after its headers (`body_read_timeout_secs`).
    pub body_read_timeout: std::time::Duration,
    /// The memory uploads in progress may use, bodies and what parsing makes of them
    /// (`max_buffered_body_mb`).
    pub body_budget: BodyBudget,
}

/// The one route of the headset API that takes no upload, under [`Endpoint::PREFIX`].
pub const STATUS_ROUTE: &str = "/session/{id}/status";

pub fn router<S>() -> Router<S>
where
    IngestState: axum::extract::FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new().route(STATUS_ROUTE, get(session_status));
    for endpoint in Endpoint::ALL {
        // The body's share of the memory budget is held until the answer is ready.
        let upload = post(upload).layer(Extension(endpoint)).layer(axum::middleware::from_fn(receive::hold_body_budget));
        router = router.route(endpoint.route(), upload);
    }
    Router::new().nest(Endpoint::PREFIX, router)
}

/// Every upload route: parse by the endpoint's rules, store (or refuse and keep), answer.
async fn upload(State(state): State<IngestState>, received: Received) -> Result<Response> {
    let Received { meta, route_id } = received;
    let endpoint = meta.endpoint;
    let mut parsed = match endpoint.parse(&meta.body, meta.idempotency_key.as_deref(), route_id.as_deref(), state.parse) {
        Ok(parsed) => parsed,
        Err(error) => {
            let reason = error.summary();
            return Err(receive::refuse(&state, meta, error, reason).await);
        }
    };
    let gist = Gist::of(&mut parsed);
    let applied = state.store.apply(meta, None, parsed.action).await?;
    answers::answer(endpoint, gist, &applied, route_id.as_deref())
}

/// `GET /session/{id}/status`: by our UUID or the headset's own id; 200 `not_found` otherwise,
/// as the old backend answered.
async fn session_status(State(state): State<IngestState>, Path(id): Path<String>) -> Result<Response> {
    let now = now_ms();
    let reference = id.clone();
    let Some(s) = state.store.read(move |c| tours::by_reference(c, &reference)).await? else {
        return Ok(Json(json!({"session_id": id, "status": "not_found", "started_at": null, "duration_so_far": null})).into_response());
    };
    let mut answer = json!({
        "session_id": id, "uuid": s.uuid, "external_id": s.external_id, "status": s.status,
        "started_at": iso(s.started_at), "last_event_at": iso(s.last_event_at), "event_count": s.event_count,
        "customer_id": s.customer_id, "property_id": s.property_id, "time_warnings": s.time_warnings,
        "duration_so_far": if s.status == "active" { json!((now - s.started_at).max(0) / 1000) } else { Value::Null },
    });
    if let Some(ended) = s.ended_at {
        answer["ended_at"] = iso(ended);
        answer["duration_seconds"] = seconds(s.duration_ms);
    }
    Ok(Json(answer).into_response())
}
