//! The typed structured-tracking bodies (`/tracking/event`, `/tracking/batch`): gaze, zone and
//! interaction events with positions. Validation errors carry JSON paths such as
//! `events[3].timestamp`.

use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::payload::dedupe_key;
use super::timefmt::timestamp_str_ms;
use crate::error::FieldError;
use crate::model::{EventKind, NewEvent, TrackingDetail};

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Seconds(f64),
    Text(String),
}

#[derive(Deserialize)]
struct Vec3 {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Deserialize)]
struct Rotation {
    pitch: f64,
    yaw: f64,
    roll: f64,
}

#[derive(Deserialize)]
struct TrackingEventIn {
    event_type: String,
    timestamp: Timestamp,
    session_id: Option<String>,
    zone_name: Option<String>,
    object_name: Option<String>,
    gaze_target: Option<String>,
    interaction_type: Option<String>,
    position: Option<Vec3>,
    rotation: Option<Rotation>,
    dwell_time_ms: Option<f64>,
    metadata: Option<Box<RawValue>>,
    event_id: Option<String>,
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    session_id: Option<String>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// A parsed batch: the events that passed, and one error per event that did not.
pub struct Batch {
    pub session_ref: Option<String>,
    pub events: Vec<NewEvent>,
    pub errors: Vec<FieldError>,
    pub total: usize,
}

/// The JSON path prefix of an event: `events[3]` in a batch, nothing for a single event. Built
/// only when an error needs it.
fn prefix(index: Option<usize>) -> String {
    index.map(|i| format!("events[{i}]")).unwrap_or_default()
}

/// Deserialises `text` as `T`, reporting the failing JSON path under the event's prefix.
fn typed<'a, T: Deserialize<'a>>(text: &'a str, index: Option<usize>) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text)).map_err(|e| {
        let prefix = prefix(index);
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, ".") => "body".to_string(),
            (true, _) => path,
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{path}"),
        };
        let reason = e.inner().to_string();
        let reason = reason.split(" at line ").next().unwrap_or(&reason).to_string();
        FieldError { field, reason }
    })
}

pub fn event(text: &str, tz: Tz) -> Result<NewEvent, FieldError> {
    one(text, None, tz)
}

pub fn batch(text: &str, tz: Tz) -> Result<Batch, FieldError> {
    let envelope: BatchIn = typed(text, None)?;
    let total = envelope.events.len();
    let mut events = Vec::with_capacity(total);
    let mut errors = Vec::new();
    for (i, raw) in envelope.events.iter().enumerate() {
        match one(raw.get(), Some(i), tz) {
            Ok(event) => events.push(event),
            Err(e) => errors.push(e),
        }
    }
    Ok(Batch { session_ref: envelope.session_id.filter(|s| !s.trim().is_empty()), events, errors, total })
}

fn one(text: &str, index: Option<usize>, tz: Tz) -> Result<NewEvent, FieldError> {
    let field = |name: &str| match index {
        None => name.to_string(),
        Some(_) => format!("{}.{name}", prefix(index)),
    };
    let e: TrackingEventIn = typed(text, index)?;
    if e.event_type.trim().is_empty() {
        return Err(FieldError { field: field("event_type"), reason: "must not be empty".into() });
    }
    let occurred_at = match &e.timestamp {
        Timestamp::Seconds(n) => timestamp_str_ms(&n.to_string(), tz),
        Timestamp::Text(s) => timestamp_str_ms(s, tz),
    }
    .map_err(|reason| FieldError { field: field("timestamp"), reason })?;
    let dwell_time_ms = match e.dwell_time_ms {
        Some(ms) if !ms.is_finite() || ms < 0.0 => {
            return Err(FieldError { field: field("dwell_time_ms"), reason: "must be a non-negative number".into() })
        }
        other => other.map(|ms| ms.round() as i64),
    };
    let dwell = dwell_time_ms.map(|ms| crate::model::DwellInput::Duration { text: ms.to_string(), parsed: Ok(ms) });
    Ok(NewEvent {
        kind: EventKind::Tracking,
        event_type: e.event_type,
        name: None,
        zone: e.zone_name,
        source: None,
        occurred_at: Some(occurred_at),
        dwell,
        tracking: Some(TrackingDetail {
            object_name: e.object_name,
            gaze_target: e.gaze_target,
            interaction_type: e.interaction_type,
            position: e.position.map(|p| [p.x, p.y, p.z]),
            rotation: e.rotation.map(|r| [r.pitch, r.yaw, r.roll]),
        }),
        data: e.metadata.map(|m| m.get().to_string()),
        // Tracking events carry their own time, so an identical body is a resend.
        dedupe_key: dedupe_key(e.event_id.as_deref(), Some(text)),
        session_ref: e.session_id.filter(|s| !s.trim().is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_reports_each_bad_event_by_path() {
        let text = r#"{"session_id": "s1", "sent_at": 1.0, "events": [
            {"event_type": "gaze", "timestamp": 1727653800.5, "position": {"x": 1, "y": 2, "z": 3}},
            {"event_type": "gaze", "timestamp": "not a time"},
            {"event_type": "gaze", "timestamp": 1727653801, "position": {"x": "far"}}]}"#;
        let b = batch(text, chrono_tz::UTC).unwrap();
        assert_eq!((b.total, b.events.len()), (3, 1));
        let fields: Vec<&str> = b.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["events[1].timestamp", "events[2].position.x"]);
        assert_eq!(b.events[0].occurred_at, Some(1_727_653_800_500));
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let e = batch(r#"{"session_id": "s1"}"#, chrono_tz::UTC).err().unwrap();
        assert_eq!(e.field, "body");
        assert!(e.reason.contains("events"), "{}", e.reason);
        let e = batch(r#"{"events": 5}"#, chrono_tz::UTC).err().unwrap();
        assert_eq!(e.field, "events");
    }
}
