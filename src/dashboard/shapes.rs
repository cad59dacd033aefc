//! Stored rows as the API writes them: times ISO 8601 UTC, durations in seconds, and the old
//! cloud API's shapes (`tracking_events`, `poi_visits`, `view_events`) beside ours. Rows are
//! serialized straight from the stored data (a tour's detail lists thousands of events).

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::period::iso;
use crate::store::dashboard::detail::Upload;
use crate::store::event_record::EventRecord;
use crate::store::dashboard::rollups::Ranked;
use crate::store::dashboard::tours::TourRow;

/// Milliseconds as whole seconds (rounded), as the old API counted durations.
pub fn whole_seconds(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

/// Milliseconds as seconds with one decimal.
pub fn seconds(ms: i64) -> f64 {
    (ms as f64 / 100.0).round() / 10.0
}

/// A tour row: the old API's session fields (`id`, `started_at`, `ended_at`, `duration_seconds`,
/// `customer_id`, `property_id`, `status`, `created_at`, `updated_at`) and ours.
#[derive(Serialize)]
pub struct Tour<'a> {
    id: &'a str,
    external_id: Option<&'a str>,
    device_key: &'a str,
    headset_name: Option<&'a str>,
    status: &'a str,
    started_at: String,
    ended_at: Option<String>,
    duration_seconds: Option<i64>,
    event_count: i64,
    customer_id: Option<&'a str>,
    property_id: Option<&'a str>,
    device_type: Option<&'a str>,
    last_event_at: String,
    time_warnings: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

pub fn tour(t: &TourRow) -> Tour<'_> {
    Tour {
        id: &t.uuid,
        external_id: t.external_id.as_deref(),
        device_key: &t.device_key,
        headset_name: t.headset_name.as_deref(),
        status: &t.status,
        started_at: iso(t.started_at),
        ended_at: t.ended_at.map(iso),
        duration_seconds: t.duration_ms.map(whole_seconds),
        event_count: t.event_count,
        customer_id: t.customer_id.as_deref(),
        property_id: t.property_id.as_deref(),
        device_type: t.device_type.as_deref(),
        last_event_at: iso(t.last_event_at),
        time_warnings: t.time_warnings.as_deref(),
        created_at: iso(t.created_at),
        updated_at: iso(t.updated_at),
    }
}

pub fn event_id(e: &EventRecord) -> String {
    uuid::Uuid::from_slice(&e.uuid).map(|u| u.to_string()).unwrap_or_else(|_| e.id.to_string())
}

/// An event in the tour's timeline. `dwell_seconds` is null when no dwell was sent or the one
/// sent is flagged (then `flagged` says why).
#[derive(Serialize)]
pub struct TimelineEvent<'a> {
    id: String,
    occurred_at: String,
    kind: &'a str,
    event_type: &'a str,
    name: Option<&'a str>,
    zone: Option<&'a str>,
    source: Option<&'a str>,
    dwell_seconds: Option<f64>,
    dwell_text: Option<&'a str>,
    flagged: Option<&'a str>,
}

pub fn timeline_event(e: &EventRecord) -> TimelineEvent<'_> {
    TimelineEvent {
        id: event_id(e),
        occurred_at: iso(e.occurred_at),
        kind: &e.kind,
        event_type: &e.event_type,
        name: e.name.as_deref(),
        zone: e.zone.as_deref(),
        source: e.source.as_deref(),
        dwell_seconds: e.dwell_ms.map(seconds),
        dwell_text: e.dwell_text.as_deref(),
        flagged: e.dwell_invalid.as_deref(),
    }
}

#[derive(Serialize)]
struct Xyz {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Serialize)]
struct Rotation {
    pitch: f64,
    yaw: f64,
    roll: f64,
}

/// Any event in the old `tracking_events` shape. Views, POIs and other headset events map on:
/// `object_name` is their name when they have no object, and `metadata` holds the fields sent
/// beyond these plus `kind`, `name`, `source`, `dwell_text`, `flagged` and `received_at`.
#[derive(Serialize)]
pub struct TrackingEvent<'a> {
    id: String,
    session_id: &'a str,
    event_type: &'a str,
    timestamp: String,
    zone_name: Option<&'a str>,
    object_name: Option<&'a str>,
    position: Option<Xyz>,
    rotation: Option<Rotation>,
    gaze_target: Option<&'a str>,
    dwell_time_ms: Option<i64>,
    interaction_type: Option<&'a str>,
    metadata: Metadata<'a>,
}

pub fn tracking_event<'a>(e: &'a EventRecord, tour_uuid: &'a str) -> TrackingEvent<'a> {
    let position = match e.position {
        [Some(x), Some(y), Some(z)] => Some(Xyz { x, y, z }),
        _ => None,
    };
    let rotation = match e.rotation {
        [Some(pitch), Some(yaw), Some(roll)] => Some(Rotation { pitch, yaw, roll }),
        _ => None,
    };
    TrackingEvent {
        id: event_id(e),
        session_id: tour_uuid,
        event_type: &e.event_type,
        timestamp: iso(e.occurred_at),
        zone_name: e.zone.as_deref(),
        object_name: e.object_name.as_deref().or(e.name.as_deref()),
        position,
        rotation,
        gaze_target: e.gaze_target.as_deref(),
        dwell_time_ms: e.dwell_ms,
        interaction_type: e.interaction_type.as_deref(),
        metadata: Metadata(e),
    }
}

/// The fields a headset sent beyond the columns (`data`, a JSON object, entries kept as sent),
/// then ours.
struct Metadata<'a>(&'a EventRecord);

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let ours = [("name", &e.name), ("source", &e.source), ("dwell_text", &e.dwell_text), ("flagged", &e.dwell_invalid)];
        let data = e.data.as_deref();
        let entries = data.and_then(|d| serde_json::from_str::<BTreeMap<String, &RawValue>>(d).ok());
        let mut map = serializer.serialize_map(None)?;
        match (data, &entries) {
            (_, Some(entries)) => {
                let taken = |key: &str| key == "kind" || key == "received_at" || ours.iter().any(|(k, v)| *k == key && v.is_some());
                for (key, value) in entries.iter().filter(|(key, _)| !taken(key)) {
                    map.serialize_entry(key, value)?;
                }
            }
            (Some(data), None) => match serde_json::from_str::<&RawValue>(data) {
                Ok(value) => map.serialize_entry("data", value)?,
                Err(_) => map.serialize_entry("data", data)?,
            },
            (None, None) => {}
        }
        map.serialize_entry("kind", &e.kind)?;
        for (key, value) in ours {
            if let Some(value) = value {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("received_at", &iso(e.received_at))?;
        map.end()
    }
}

/// A POI or view event in the old `poi_visits` / `view_events` shape. `duration_seconds` is
/// null (not 0) for a flagged duration.
#[derive(Serialize)]
pub struct Visit<'a> {
    id: String,
    session_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    poi_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_zone: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    poi_source: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    view_name: Option<&'a str>,
    duration_string: Option<&'a str>,
    duration_seconds: Option<i64>,
    flagged: Option<&'a str>,
    event_time: String,
    received_at: String,
}

fn visit<'a>(e: &'a EventRecord, tour_uuid: &'a str) -> Visit<'a> {
    Visit {
        id: event_id(e),
        session_id: tour_uuid,
        poi_name: None,
        parent_zone: None,
        poi_source: None,
        view_name: None,
        duration_string: e.dwell_text.as_deref(),
        duration_seconds: e.dwell_ms.map(whole_seconds),
        flagged: e.dwell_invalid.as_deref(),
        event_time: iso(e.occurred_at),
        received_at: iso(e.received_at),
    }
}

pub fn poi_visit<'a>(e: &'a EventRecord, tour_uuid: &'a str) -> Visit<'a> {
    let name = e.name.as_deref().unwrap_or_default();
    Visit { poi_name: Some(name), parent_zone: Some(e.zone.as_deref()), poi_source: Some(e.source.as_deref()), ..visit(e, tour_uuid) }
}

pub fn view_event<'a>(e: &'a EventRecord, tour_uuid: &'a str) -> Visit<'a> {
    Visit { view_name: Some(e.name.as_deref().unwrap_or_default()), ..visit(e, tour_uuid) }
}

/// An upload behind a tour, its body as text (cut, and marked so, when long).
pub fn upload(u: &Upload) -> Value {
    json!({
        "id": u.id,
        "received_at": iso(u.received_at),
        "endpoint": u.endpoint,
        "status": u.status,
        "outcome": u.outcome,
        "detail": u.detail,
        "events_stored": u.events_stored,
        "content_type": u.content_type,
        "body": String::from_utf8_lossy(&u.body),
        "body_bytes": u.body_bytes,
        "body_truncated": (u.body.len() as i64) < u.body_bytes,
    })
}

/// A ranked view (`{name, visits, dwell_seconds}`), with its zone for POIs and units.
pub fn ranked(r: &Ranked, with_zone: bool) -> Value {
    let mut row = json!({"name": r.name, "visits": r.events, "dwell_seconds": seconds(r.dwell_ms)});
    if with_zone {
        row["zone"] = json!(r.zone);
    }
    row
}

/// The old API's name for a missing view, POI or zone name.
pub fn or_unknown(name: &str) -> &str {
    if name.is_empty() {
        "unknown"
    } else {
        name
    }
}

/// Mean whole seconds of valid dwell times (0 when none), as the old API's integer averages.
pub fn mean_seconds(dwell_ms: i64, count: i64) -> i64 {
    if count == 0 {
        0
    } else {
        whole_seconds(dwell_ms / count)
    }
}
