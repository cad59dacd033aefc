//! The one place rows become the cloud's JSON, for both targets: PostgREST gets the array as its
//! body, the direct target passes the same text to `jsonb_populate_recordset`.
//!
//! Every object of a table has the same keys (a missing value is `null`, never an omitted key:
//! PostgREST refuses mixed key sets with PGRST102), uuids are strings, times are RFC 3339 UTC with
//! milliseconds, jsonb columns are nested objects. Each table's column list is a constant the
//! serialisation is tested against.

use serde::Serialize;
use serde_json::{json, Value};

use crate::store::sync::{EventRecord, TourRecord};

/// A cloud table sync writes, with how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Sessions,
    Tracking,
    Views,
    Pois,
    Sites,
}

impl Table {
    pub const EVENTS: [Table; 3] = [Table::Tracking, Table::Views, Table::Pois];

    pub fn name(self) -> &'static str {
        match self {
            Table::Sessions => "vr_sessions",
            Table::Tracking => "tracking_events",
            Table::Views => "view_events",
            Table::Pois => "poi_visits",
            Table::Sites => "nexero_sites",
        }
    }

    /// The columns every object carries, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Sessions => &[
                "id", "site_id", "started_at", "ended_at", "duration_seconds", "status", "customer_id", "property_id",
                "device_type", "external_id", "device_key", "event_count", "time_warnings", "created_at", "updated_at",
            ],
            Table::Tracking => &[
                "id", "session_id", "event_type", "timestamp", "zone_name", "object_name", "position", "rotation",
                "gaze_target", "dwell_time_ms", "interaction_type", "metadata", "site_id",
            ],
            Table::Views => &[
                "id", "session_id", "view_name", "duration_string", "duration_seconds", "duration_ms", "received_at",
                "event_time", "metadata", "site_id",
            ],
            Table::Pois => &[
                "id", "session_id", "poi_name", "parent_zone", "poi_source", "duration_string", "duration_seconds",
                "duration_ms", "received_at", "event_time", "metadata", "site_id",
            ],
            Table::Sites => &["site_id", "last_sync_at"],
        }
    }

    /// The unique key the upsert resolves on.
    pub fn conflict_column(self) -> &'static str {
        match self {
            Table::Sites => "site_id",
            _ => "id",
        }
    }

    /// Tours and sites change and are overwritten; events never change and are inserted once.
    pub fn merges(self) -> bool {
        matches!(self, Table::Sessions | Table::Sites)
    }

    /// The cloud table an event of this kind goes to.
    pub fn for_kind(kind: &str) -> Table {
        match kind {
            "view" => Table::Views,
            "poi" => Table::Pois,
            _ => Table::Tracking,
        }
    }
}

/// One row ready to send: the object's JSON text and what it stands for locally.
#[derive(Clone, Debug)]
pub struct Row {
    pub table: Table,
    pub session_id: i64,
    /// None for a tour's own row.
    pub event_id: Option<i64>,
    /// The conflict key (for the duplicate guard).
    pub key: String,
    pub json: String,
}

/// The JSON array body of `rows`.
pub fn body(rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.iter().map(|r| r.json.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&row.json);
    }
    out.push(']');
    out
}

/// RFC 3339 in UTC with milliseconds: `2026-01-01T09:30:00.000Z`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whole seconds, rounded half up (the old tables' integer seconds).
fn seconds(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

#[derive(Serialize)]
struct SessionObject<'a> {
    id: &'a str,
    site_id: &'a str,
    started_at: String,
    ended_at: Option<String>,
    duration_seconds: Option<i64>,
    status: &'a str,
    customer_id: Option<&'a str>,
    property_id: Option<&'a str>,
    device_type: Option<&'a str>,
    external_id: Option<&'a str>,
    device_key: &'a str,
    event_count: i64,
    time_warnings: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

pub fn session_row(tour: &TourRecord, site_id: &str) -> Row {
    let object = SessionObject {
        id: &tour.uuid,
        site_id,
        started_at: time(tour.started_at),
        ended_at: tour.ended_at.map(time),
        duration_seconds: tour.duration_ms.map(|ms| seconds(ms.max(0))),
        status: &tour.status,
        customer_id: tour.customer_id.as_deref(),
        property_id: tour.property_id.as_deref(),
        device_type: tour.device_type.as_deref(),
        external_id: tour.external_id.as_deref(),
        device_key: &tour.device_key,
        event_count: tour.event_count,
        time_warnings: tour.time_warnings.as_deref(),
        created_at: time(tour.created_at),
        updated_at: time(tour.updated_at),
    };
    Row { table: Table::Sessions, session_id: tour.id, event_id: None, key: tour.uuid.clone(), json: to_json(&object) }
}

/// What an event has no column of its own for: the same keys on every table.
#[derive(Serialize)]
struct Metadata<'a> {
    kind: &'a str,
    event_type: &'a str,
    name: Option<&'a str>,
    zone: Option<&'a str>,
    source: Option<&'a str>,
    received_at: String,
    dwell_text: Option<&'a str>,
    dwell_invalid: Option<&'a str>,
    /// The headset's other fields (a JSON object as sent; text if it was not JSON).
    data: Value,
}

#[derive(Serialize)]
struct TrackingObject<'a> {
    id: &'a str,
    session_id: &'a str,
    event_type: &'a str,
    timestamp: String,
    zone_name: Option<&'a str>,
    object_name: Option<&'a str>,
    position: Value,
    rotation: Value,
    gaze_target: Option<&'a str>,
    dwell_time_ms: Option<i64>,
    interaction_type: Option<&'a str>,
    metadata: Metadata<'a>,
    site_id: &'a str,
}

#[derive(Serialize)]
struct ViewObject<'a> {
    id: &'a str,
    session_id: &'a str,
    view_name: Option<&'a str>,
    duration_string: Option<&'a str>,
    duration_seconds: Option<i64>,
    duration_ms: Option<i64>,
    received_at: String,
    event_time: String,
    metadata: Metadata<'a>,
    site_id: &'a str,
}

#[derive(Serialize)]
struct PoiObject<'a> {
    id: &'a str,
    session_id: &'a str,
    poi_name: Option<&'a str>,
    parent_zone: Option<&'a str>,
    poi_source: Option<&'a str>,
    duration_string: Option<&'a str>,
    duration_seconds: Option<i64>,
    duration_ms: Option<i64>,
    received_at: String,
    event_time: String,
    metadata: Metadata<'a>,
    site_id: &'a str,
}

/// The event's uuid as text (a malformed stored uuid still yields a row; the cloud refuses it
/// and it is quarantined, instead of stopping the queue).
pub fn event_uuid(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes).map_or_else(|_| format!("invalid:{}", bytes.len()), |u| u.to_string())
}

/// An event's row (for its table). `session_uuid` is its tour's uuid.
pub fn event_row(e: &EventRecord, session_uuid: &str, site_id: &str) -> Row {
    let id = event_uuid(&e.uuid);
    let data = match &e.data {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
    };
    let metadata = Metadata {
        kind: &e.kind,
        event_type: &e.event_type,
        name: e.name.as_deref(),
        zone: e.zone.as_deref(),
        source: e.source.as_deref(),
        received_at: time(e.received_at),
        dwell_text: e.dwell_text.as_deref(),
        dwell_invalid: e.dwell_invalid.as_deref(),
        data,
    };
    let table = Table::for_kind(&e.kind);
    let json = match table {
        Table::Views => to_json(&ViewObject {
            id: &id,
            session_id: session_uuid,
            view_name: e.name.as_deref(),
            duration_string: e.dwell_text.as_deref(),
            duration_seconds: e.dwell_ms.map(seconds),
            duration_ms: e.dwell_ms,
            received_at: time(e.received_at),
            event_time: time(e.occurred_at),
            metadata,
            site_id,
        }),
        Table::Pois => to_json(&PoiObject {
            id: &id,
            session_id: session_uuid,
            poi_name: e.name.as_deref(),
            parent_zone: e.zone.as_deref(),
            poi_source: e.source.as_deref(),
            duration_string: e.dwell_text.as_deref(),
            duration_seconds: e.dwell_ms.map(seconds),
            duration_ms: e.dwell_ms,
            received_at: time(e.received_at),
            event_time: time(e.occurred_at),
            metadata,
            site_id,
        }),
        _ => to_json(&TrackingObject {
            id: &id,
            session_id: session_uuid,
            event_type: &e.event_type,
            timestamp: time(e.occurred_at),
            zone_name: e.zone.as_deref(),
            object_name: e.object_name.as_deref(),
            position: triple(&e.position, ["x", "y", "z"]),
            rotation: triple(&e.rotation, ["pitch", "yaw", "roll"]),
            gaze_target: e.gaze_target.as_deref(),
            dwell_time_ms: e.dwell_ms,
            interaction_type: e.interaction_type.as_deref(),
            metadata,
            site_id,
        }),
    };
    Row { table, session_id: e.session_id, event_id: Some(e.id), key: id, json }
}

/// `{"x": 1.0, "y": 2.0, "z": 3.0}`, or null when the event has none.
fn triple(values: &[Option<f64>; 3], names: [&str; 3]) -> Value {
    if values.iter().all(Option::is_none) {
        return Value::Null;
    }
    json!({ names[0]: values[0], names[1]: values[1], names[2]: values[2] })
}

/// The site row: when this appliance last delivered (its name is the cloud admin's to set).
pub fn site_row(site_id: &str, now_ms: i64) -> Row {
    let json = json!({ "site_id": site_id, "last_sync_at": time(now_ms) }).to_string();
    Row { table: Table::Sites, session_id: 0, event_id: None, key: site_id.to_owned(), json }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("sync rows serialize")
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
