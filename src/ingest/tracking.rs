//! The typed structured-tracking bodies (`/tracking/event`, `/tracking/batch`): gaze, zone and
//! interaction events with positions. Validation errors carry JSON paths such as
//! `events[3].timestamp`.
//!
//! Unreal's own spelling is taken: keys match their fields by the one key rule at every depth
//! (`payload::same_key`: `{"Position": {"X": …}}` is `position.x`), and a number may come as a
//! string holding one (`"dwell_time_ms": "2500"`), as VaRest sends it. Error paths use the
//! fields' own names. `metadata` is kept exactly as sent.

use std::borrow::Cow;
use std::fmt;

use chrono_tz::Tz;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::payload::{dedupe_key, same_key};
use super::timefmt::{number_str, timestamp_str_ms};
use crate::error::FieldError;
use crate::model::{EventKind, NewEvent, TrackingDetail};

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Seconds(f64),
    Text(String),
}

/// A number, or a string holding one (`"2500"`, `" 1.5 "`); any other string is refused with the
/// field's path.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string holding one")
            }
            fn visit_f64<E>(self, n: f64) -> Result<Number, E> {
                Ok(Number(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Number, E> {
                Ok(Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Number, E> {
                Ok(Number(n as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Number, E> {
                number_str(s).map(Number).ok_or_else(|| E::invalid_value(Unexpected::Str(s), &self))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}

#[derive(Deserialize)]
struct Vec3 {
    x: Number,
    y: Number,
    z: Number,
}

#[derive(Deserialize)]
struct Rotation {
    pitch: Number,
    yaw: Number,
    roll: Number,
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
    dwell_time_ms: Option<Number>,
    metadata: Option<Box<RawValue>>,
    event_id: Option<String>,
}

#[derive(Deserialize)]
struct BatchIn<'a> {
    session_id: Option<String>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The field names of a typed object, each with the shape of its value when that is a typed
/// object too. Must list the fields of the struct it describes.
struct Shape(&'static [(&'static str, Option<&'static Shape>)]);

static VEC3: Shape = Shape(&[("x", None), ("y", None), ("z", None)]);
static ROTATION: Shape = Shape(&[("pitch", None), ("yaw", None), ("roll", None)]);
/// `metadata` has no shape: it is kept as sent, its keys included.
static EVENT: Shape = Shape(&[
    ("event_type", None),
    ("timestamp", None),
    ("session_id", None),
    ("zone_name", None),
    ("object_name", None),
    ("gaze_target", None),
    ("interaction_type", None),
    ("position", Some(&VEC3)),
    ("rotation", Some(&ROTATION)),
    ("dwell_time_ms", None),
    ("metadata", None),
    ("event_id", None),
]);
/// Each of `events` is read as an event on its own.
static BATCH: Shape = Shape(&[("session_id", None), ("events", None), ("sent_at", None)]);

/// A JSON object's members in the order sent, their values unread.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members<'de>, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// `text` with the keys of its typed objects spelled as their fields are (`{"X": 1}` becomes
/// `{"x": 1}`), values copied as sent. The text itself when every key is spelled so already, or
/// when it is not an object: the typed pass then says what is wrong with it.
fn canonical<'a>(text: &'a str, shape: &Shape) -> Cow<'a, str> {
    let Ok(Members(members)) = serde_json::from_str::<Members>(text) else { return Cow::Borrowed(text) };
    let mut changed = false;
    let mut renamed = Vec::with_capacity(members.len());
    for (key, raw) in &members {
        let field = shape.0.iter().find(|(name, _)| same_key(key, name));
        let name = field.map_or(key.as_str(), |(name, _)| name);
        let value = match field {
            Some((_, Some(inner))) => canonical(raw.get(), inner),
            _ => Cow::Borrowed(raw.get()),
        };
        changed |= name != key || matches!(value, Cow::Owned(_));
        renamed.push((name, value));
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('{');
    for (i, (name, value)) in renamed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).expect("a string serialises"));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    Cow::Owned(out)
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
    let text = canonical(text, &BATCH);
    let envelope: BatchIn = typed(&text, None)?;
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
    let e: TrackingEventIn = typed(&canonical(text, &EVENT), index)?;
    if e.event_type.trim().is_empty() {
        return Err(FieldError { field: field("event_type"), reason: "must not be empty".into() });
    }
    let occurred_at = match &e.timestamp {
        Timestamp::Seconds(n) => timestamp_str_ms(&n.to_string(), tz),
        Timestamp::Text(s) => timestamp_str_ms(s, tz),
    }
    .map_err(|reason| FieldError { field: field("timestamp"), reason })?;
    let dwell_time_ms = match e.dwell_time_ms.map(|n| n.0) {
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
            position: e.position.map(|p| [p.x.0, p.y.0, p.z.0]),
            rotation: e.rotation.map(|r| [r.pitch.0, r.yaw.0, r.roll.0]),
        }),
        data: e.metadata.map(|m| m.get().to_string()),
        // Tracking events carry their own time, so the same body is a resend: compared as JSON
        // with its keys in one order (serde_json's map is sorted), not as bytes.
        dedupe_key: dedupe_key(e.event_id.as_deref(), Some(&normalised(text))),
        session_ref: e.session_id.filter(|s| !s.trim().is_empty()),
    })
}

/// A JSON text with its object keys in one order, for comparing bodies.
fn normalised(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text).map_or_else(|_| text.to_owned(), |value| value.to_string())
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

    #[test]
    fn one_key_rule_case_underscore_dash_and_space() {
        for sent in ["Parent_ID", "parent-id", "ParentId", "parent id", "PARENTID", "parent_id"] {
            assert!(same_key(sent, "parent_id"), "{sent}");
        }
        assert!(!same_key("parent_ids", "parent_id") && !same_key("parent.id", "parent_id"));
    }

    #[test]
    fn unreal_spelling_and_numbers_as_text() {
        let text = r#"{"Event_Type": "gaze", "TimeStamp": "1727653800", "Zone Name": "kitchen",
            "Position": {"X": "1.5", "Y": 2, "Z": " -3 "}, "ROTATION": {"Pitch": "0", "Yaw": "90.5", "Roll": 0},
            "Dwell-Time-MS": "2500", "Metadata": {"Foo_Bar": 1, "a": [1, 2]}}"#;
        let e = event(text, chrono_tz::UTC).unwrap();
        let t = e.tracking.unwrap();
        assert_eq!((e.event_type.as_str(), e.zone.as_deref(), e.occurred_at), ("gaze", Some("kitchen"), Some(1_727_653_800_000)));
        assert_eq!((t.position, t.rotation), (Some([1.5, 2.0, -3.0]), Some([0.0, 90.5, 0.0])));
        assert!(matches!(e.dwell, Some(crate::model::DwellInput::Duration { parsed: Ok(2500), .. })));
        assert_eq!(e.data.as_deref(), Some(r#"{"Foo_Bar": 1, "a": [1, 2]}"#), "metadata is kept as sent");
        assert_eq!(e.dedupe_key, dedupe_key(None, Some(&normalised(text))), "a resend is the same body, in any key order");

        let b = batch(r#"{"Session-ID": "s1", "EVENTS": [{"event_type": "gaze", "timestamp": 1727653800}]}"#, chrono_tz::UTC).unwrap();
        assert_eq!((b.session_ref.as_deref(), b.total, b.events.len()), (Some("s1"), 1, 1));
    }

    #[test]
    fn text_that_is_not_a_number_is_refused_by_path() {
        let text = r#"{"events": [
            {"event_type": "gaze", "timestamp": 1727653800, "dwell_time_ms": "abc"},
            {"event_type": "gaze", "timestamp": 1727653800, "Position": {"X": "far", "Y": 0, "Z": 0}},
            {"event_type": "gaze", "timestamp": 1727653800, "rotation": {"pitch": "NaN", "yaw": 0, "roll": 0}},
            {"event_type": "gaze", "timestamp": 1727653800, "dwell_time_ms": "-5"},
            {"event_type": "gaze", "timestamp": 1727653800, "position": {"x": 1, "X": 2, "y": 0, "z": 0}}]}"#;
        let b = batch(text, chrono_tz::UTC).unwrap();
        let fields: Vec<&str> = b.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["events[0].dwell_time_ms", "events[1].position.x", "events[2].rotation.pitch", "events[3].dwell_time_ms", "events[4].position"]);
        assert!(b.errors[0].reason.contains(r#"string "abc", expected a number"#), "{}", b.errors[0].reason);
        assert!(b.errors[4].reason.contains("duplicate field `x`"), "{}", b.errors[4].reason);
    }
}
