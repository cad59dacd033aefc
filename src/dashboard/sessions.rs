//! Tours: the list (filters, search, sort, pages), one tour's detail and its events, and the
//! count of tours in progress. A tour in a path is our UUID or the headset's own id. A tour's
//! events are read and written as JSON on the blocking pool (a long tour has thousands).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::api::{json_body, ok, page, session_not_found, to_json, Answer};
use super::digest::{TourDigest, LISTED};
use super::query::Params;
use super::{shapes, DashboardState};
use crate::auth::Staff;
use crate::error::Result;
use crate::store::dashboard::{detail, tours};

/// Uploads listed in a tour's detail, and how much of each body.
const UPLOADS_LISTED: i64 = 500;
const BODY_BYTES: i64 = 64 * 1024;

/// `GET /api/v1/sessions`
pub async fn list(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Response> {
    let filter = params.tour_filter(state.tz)?;
    let order = params.tour_order()?;
    let (limit, offset) = params.page(50, 200)?;
    let (rows, total) = state.store.read(move |c| Ok((tours::page(c, &filter, order, limit, offset)?, tours::count(c, &filter)?))).await?;
    Ok(Json(page(rows.iter().map(shapes::tour).collect(), total, limit, offset)).into_response())
}

/// `GET /api/v1/sessions/active/count`
pub async fn active_count(_: Staff, State(state): State<DashboardState>) -> Result<Json<Answer<Value>>> {
    let count = state.store.read(tours::active_count).await?;
    Ok(ok(json!({"count": count, "active_sessions": count})))
}

/// A tour's detail: its row, the old API's event lists, and ours.
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(flatten)]
    tour: shapes::Tour<'a>,
    tracking_events: Vec<shapes::TrackingEvent<'a>>,
    poi_visits: Vec<shapes::Visit<'a>>,
    view_events: Vec<shapes::Visit<'a>>,
    timeline: Vec<shapes::TimelineEvent<'a>>,
    timeline_total: i64,
    timeline_truncated: bool,
    zones: Value,
    views: Value,
    path: Value,
    uploads: Vec<Value>,
}

/// `GET /api/v1/sessions/{id}`
pub async fn detail(_: Staff, State(state): State<DashboardState>, Path(id): Path<String>) -> Result<Response> {
    let found = state
        .store
        .read(move |c| {
            let Some(tour) = tours::by_reference(c, &id)? else { return Ok(None) };
            let mut digest = TourDigest::default();
            detail::each_event(c, tour.id, |e| {
                digest.add(e);
                Ok(true)
            })?;
            let uploads = detail::uploads(c, tour.id, UPLOADS_LISTED, BODY_BYTES)?;
            let uuid = tour.uuid.as_str();
            let detail = Detail {
                tour: shapes::tour(&tour),
                tracking_events: digest.events.iter().map(|e| shapes::tracking_event(e, uuid)).collect(),
                poi_visits: digest.pois.iter().map(|e| shapes::poi_visit(e, uuid)).collect(),
                view_events: digest.views.iter().map(|e| shapes::view_event(e, uuid)).collect(),
                timeline: digest.events.iter().map(shapes::timeline_event).collect(),
                timeline_total: digest.total,
                timeline_truncated: digest.total > LISTED as i64,
                zones: digest.zones(),
                views: digest.views(),
                path: digest.path(),
                uploads: uploads.iter().map(shapes::upload).collect(),
            };
            Ok(Some(to_json(&ok(detail).0)?))
        })
        .await?;
    Ok(json_body(found.ok_or_else(session_not_found)?))
}

/// `GET /api/v1/sessions/{id}/events?event_type&limit&offset`: every kind of event, in the old
/// `tracking_events` shape, in time order.
pub async fn events(_: Staff, State(state): State<DashboardState>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let (limit, offset) = params.page(200, 1000)?;
    let event_type = params.owned("event_type");
    let found = state
        .store
        .read(move |c| {
            let Some(tour) = tours::by_reference(c, &id)? else { return Ok(None) };
            let rows = detail::events(c, tour.id, event_type.as_deref(), limit, offset)?;
            let total = detail::count_events(c, tour.id, event_type.as_deref())?;
            let events = rows.iter().map(|e| shapes::tracking_event(e, &tour.uuid)).collect();
            Ok(Some(to_json(&page(events, total, limit, offset))?))
        })
        .await?;
    Ok(json_body(found.ok_or_else(session_not_found)?))
}
