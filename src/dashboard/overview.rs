//! Tour KPIs over a period: the overview the dashboard shows, and the old API's dashboard
//! KPIs, session stats, engagement trend and funnel. Tours count in the period they started in;
//! periods are whole days in the site time zone.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::api::{ok, Answer};
use super::period::{day, Window};
use super::query::Params;
use super::{shapes, DashboardState};
use crate::auth::Staff;
use crate::error::Result;
use crate::store::dashboard::kpis::{self, PeriodTours, TourCounts};
use crate::store::dashboard::rollups::{self, Days, RankBy, Ranking};
use crate::store::dashboard::tours;

/// A period's tours, and the previous period's when asked for (the two read side by side).
async fn period_tours(
    state: &DashboardState,
    window: Window,
    property: Option<String>,
    previous: bool,
) -> Result<(PeriodTours, PeriodTours)> {
    let read = |starts: Vec<i64>| {
        let property = property.clone();
        state.store.read(move |c| kpis::period_tours(c, &starts, property.as_deref()))
    };
    let before = if previous { window.previous().day_starts(state.tz) } else { vec![] };
    Ok(tokio::try_join!(read(window.day_starts(state.tz)), read(before))?)
}

/// `round((current − previous) / previous × 100)`, or null when there was nothing before.
fn change_pct(current: f64, previous: f64) -> Option<i64> {
    (previous != 0.0).then(|| ((current - previous) / previous * 100.0).round() as i64)
}

/// The old API's change: 100 (or 0 when still nothing) when there was nothing before.
fn old_change(current: f64, previous: f64) -> i64 {
    change_pct(current, previous).unwrap_or(if current > 0.0 { 100 } else { 0 })
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn kpi(current: f64, previous: f64) -> Value {
    json!({"current": current.round() as i64, "previous": previous.round() as i64, "change_pct": change_pct(current, previous)})
}

/// `GET /api/v1/overview?period|date_from&date_to&property_id`
pub async fn overview(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "7d")?;
    let previous = window.previous();
    let property = params.owned("property_id");
    let (from, to) = (day(window.from), day(window.to));
    let tours = period_tours(&state, window, property.clone(), true);
    let tops = state.store.read(move |c| {
        let days = Days { from: &from, to: &to, property: property.as_deref() };
        let top = |kind, by_zone, named_only| {
            let ranking = Ranking { kind, by_zone, name: None, zone: None, named_only, order: RankBy::Dwell, limit: Some(10) };
            rollups::ranked(c, days, &ranking)
        };
        Ok((top("view", false, false)?, top("poi", true, true)?, top("unit_selection", true, false)?))
    });
    let ((current, before), (views, pois, units)) = tokio::try_join!(tours, async { Ok(tops.await?) })?;
    let (now, then) = (current.total(), before.total());
    let per_day: Vec<Value> = window
        .dates()
        .zip(&current.days)
        .zip(previous.dates().zip(&before.days))
        .map(|((date, counts), (previous_date, previous_counts))| {
            json!({"date": day(date), "tours": counts.tours, "previous_date": day(previous_date), "previous_tours": previous_counts.tours})
        })
        .collect();
    let ranked = |rows: &[rollups::Ranked], with_zone| rows.iter().map(|r| shapes::ranked(r, with_zone)).collect::<Vec<_>>();
    Ok(ok(json!({
        "period": {"from": day(window.from), "to": day(window.to), "days": window.days(),
                   "previous_from": day(previous.from), "previous_to": day(previous.to)},
        "kpis": {
            "tours": kpi(now.tours as f64, then.tours as f64),
            "avg_tour_seconds": kpi(now.mean_seconds(), then.mean_seconds()),
            "engaged_tours": kpi(now.engaged as f64, then.engaged as f64),
            "high_intent_tours": kpi(now.high_intent as f64, then.high_intent as f64),
            "unique_headsets": kpi(current.headsets as f64, before.headsets as f64),
        },
        "tours_per_day": per_day,
        "top_views": ranked(&views, false),
        "top_pois": ranked(&pois, true),
        "top_units": ranked(&units, true),
        "funnel": [
            {"name": "Tours", "value": now.tours},
            {"name": "Engaged", "value": now.engaged},
            {"name": "High intent", "value": now.high_intent},
        ],
    })))
}

/// High-intent tours as a percentage of all tours.
fn conversion(counts: &TourCounts) -> f64 {
    if counts.tours == 0 {
        0.0
    } else {
        counts.high_intent as f64 / counts.tours as f64 * 100.0
    }
}

/// `GET /api/v1/analytics/dashboard?period`: the old API's KPIs and their change.
pub async fn dashboard(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "30d")?;
    let property = params.owned("property_id");
    let (current, before) = period_tours(&state, window, property.clone(), true).await?;
    let previous = window.previous();
    let spans = [(day(window.from), day(window.to)), (day(previous.from), day(previous.to))];
    let (views, views_before, active) = state
        .store
        .read(move |c| {
            let views = |(from, to): &(String, String)| rollups::kind_events(c, Days { from, to, property: property.as_deref() }, "view");
            Ok((views(&spans[0])?, views(&spans[1])?, tours::active_count(c)?))
        })
        .await?;
    let (now, then) = (current.total(), before.total());
    Ok(ok(json!({
        "total_leads": current.customers,
        "leads_change": old_change(current.customers as f64, before.customers as f64),
        "total_views": views,
        "views_change": old_change(views as f64, views_before as f64),
        "active_sessions": active,
        "sessions_change": old_change(now.tours as f64, then.tours as f64),
        "conversion_rate": round2(conversion(&now)),
        "conversion_change": old_change(conversion(&now), conversion(&then)),
        "avg_engagement_time": round2(now.mean_seconds()),
        "engagement_change": old_change(now.mean_seconds(), then.mean_seconds()),
        "period": params.period_text("30d"),
        "period_days": window.days(),
    })))
}

/// `GET /api/v1/sessions/stats?period`
pub async fn stats(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "30d")?;
    let (current, _) = period_tours(&state, window, params.owned("property_id"), false).await?;
    let total = current.total();
    Ok(ok(json!({
        "period": params.period_text("30d"),
        "total_sessions": total.tours,
        "completed_sessions": total.ended,
        "avg_duration_seconds": total.mean_seconds() as i64,
        "unique_customers": current.customers,
        "unique_headsets": current.headsets,
    })))
}

/// `GET /api/v1/analytics/engagement-trends?period` (and `/analytics/engagement`): every day of
/// the period, with no tours too.
pub async fn engagement(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "30d")?;
    let (current, _) = period_tours(&state, window, params.owned("property_id"), false).await?;
    let days: Vec<Value> = window
        .dates()
        .zip(&current.days)
        .map(|(date, counts)| {
            let date = day(date);
            json!({"name": date, "date": date, "value": counts.tours, "session_count": counts.tours,
                   "avg_duration": counts.mean_seconds() as i64})
        })
        .collect();
    Ok(ok(Value::Array(days)))
}

/// `GET /api/v1/analytics/funnel?period`
pub async fn funnel(_: Staff, State(state): State<DashboardState>, params: Params) -> Result<Json<Answer<Value>>> {
    let window = params.window(state.tz, "30d")?;
    let (current, _) = period_tours(&state, window, params.owned("property_id"), false).await?;
    let total = current.total();
    Ok(ok(json!([
        {"name": "Sessions", "value": total.tours},
        {"name": "Engaged", "value": total.engaged},
        {"name": "High Intent", "value": total.high_intent},
        {"name": "Follow Up Scheduled", "value": 0},
    ])))
}
