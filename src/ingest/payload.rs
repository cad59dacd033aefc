//! Recognises every generation of headset payload sent to the universal endpoint.
//!
//! Key names changed between headset builds (`Source` → `POI_Source`, `Parent` → `Castegory`,
//! `View` → `ViewMode`, `TotalDuration` → `Duration`), so keys are matched by aliases under the one
//! rule of [`same_key`]. Anything not used for the typed columns is kept as JSON in `data`.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::timefmt::{duration_ms, json_type, timestamp_ms};
use crate::model::{Action, DwellInput, EventKind, NewEvent, SessionSummary};

const SESSION_ID: &[&str] = &["sessionid", "seshid"];
const SESSION_START: &[&str] = &["sessionstart"];
const SESSION_END: &[&str] = &["sessionend"];
const SESSION_DURATION: &[&str] = &["duration", "totalsessionduration"];
const VIEW_NAME: &[&str] = &["view", "viewmode", "viewname"];
const VIEW_DURATION: &[&str] = &["totalduration", "duration", "viewduration"];
const POI_NAME: &[&str] = &["poi", "poiname"];
const POI_ZONE: &[&str] = &["parent", "castegory", "category"];
const POI_SOURCE: &[&str] = &["poisource", "clicksource", "source"];
const POI_DURATION: &[&str] = &["poiduration", "timespent"];
const EVENT_TIME: &[&str] = &["datetime", "timestamp"];
const UNIT_NAME: &[&str] = &["name"];
const UNIT_SQFT: &[&str] = &["sqft"];
const UNIT_TYPE: &[&str] = &["type"];
const CONNECT_TYPE: &[&str] = &["connecttype"];
const EVENT_TYPE: &[&str] = &["eventtype"];
const EVENT_ID: &[&str] = &["eventid"];

/// Why a body was refused: a clear reason, the offending field and the keys we saw.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: String,
    pub field: Option<String>,
    pub received_keys: Vec<String>,
}

/// A JSON object whose keys can be looked up by alias; tracks which keys were used.
struct Fields {
    by_norm: BTreeMap<String, String>,
    object: Map<String, Value>,
    used: Vec<String>,
}

/// The one rule for key names, at every depth of every body: case, `_`, `-` and spaces do not
/// count, so `Parent_ID`, `parent-id`, `ParentId` and `parent id` are the same key.
fn key_chars(key: &str) -> impl Iterator<Item = char> + '_ {
    key.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase)
}

/// Whether a key as sent names `field` under the one rule (see [`key_chars`]).
pub fn same_key(sent: &str, field: &str) -> bool {
    sent == field || key_chars(sent).eq(key_chars(field))
}

impl Fields {
    fn new(object: Map<String, Value>) -> Fields {
        let by_norm = object.keys().map(|k| (key_chars(k).collect(), k.clone())).collect();
        Fields { by_norm, object, used: Vec::new() }
    }

    fn key(&self, aliases: &[&str]) -> Option<&String> {
        aliases.iter().find_map(|a| self.by_norm.get(*a))
    }

    fn has(&self, aliases: &[&str]) -> bool {
        self.key(aliases).is_some()
    }

    /// The value under the first alias present, marking it used.
    fn take(&mut self, aliases: &[&str]) -> Option<(String, Value)> {
        let key = self.key(aliases)?.clone();
        let value = self.object.get(&key)?.clone();
        self.used.push(key.clone());
        Some((key, value))
    }

    /// A text field; numbers and booleans are accepted as their text, null as absent.
    fn text(&mut self, aliases: &[&str]) -> Result<Option<String>, Rejection> {
        match self.take(aliases) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s)),
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Some(b.to_string())),
            Some((key, other)) => Err(self.reject(&key, format!("must be a string, got {}", json_type(&other)))),
        }
    }

    fn reject(&self, field: &str, reason: String) -> Rejection {
        Rejection { reason: format!("{field}: {reason}"), field: Some(field.to_string()), received_keys: self.keys() }
    }

    fn keys(&self) -> Vec<String> {
        self.object.keys().cloned().collect()
    }

    /// Every unused key, as JSON text (`None` when nothing is left).
    fn rest(&self) -> Option<String> {
        let rest: Map<String, Value> =
            self.object.iter().filter(|(k, _)| !self.used.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        (!rest.is_empty()).then(|| Value::Object(rest).to_string())
    }
}

fn json_object(value: Value) -> Result<Map<String, Value>, Rejection> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(Rejection {
            reason: format!("the request body must be a JSON object, got {}", json_type(&other)),
            field: None,
            received_keys: vec![],
        }),
    }
}

/// Parsing context: the site time zone for zone-less timestamps.
#[derive(Clone, Copy)]
pub struct ParseContext {
    pub tz: Tz,
}

/// Classifies a body posted to `POST /api/v1/unreal/session`.
pub fn universal(value: Value, ctx: ParseContext, idempotency_key: Option<&str>) -> Result<Action, Rejection> {
    universal_with_warnings(value, ctx, idempotency_key).map(|(action, _)| action)
}

/// [`universal`], with what did not stop its event from being stored, each naming the field as
/// sent (`TotalDuration: unrecognised duration "abc": …`). A summary has its own `warnings`.
pub fn universal_with_warnings(value: Value, ctx: ParseContext, idempotency_key: Option<&str>) -> Result<(Action, Vec<String>), Rejection> {
    let object = json_object(value)?;
    if object.values().all(|v| v.is_null() || v.as_str() == Some("")) {
        return Ok((Action::Startup, vec![]));
    }
    let mut f = Fields::new(object);
    if f.has(SESSION_START) || f.has(SESSION_END) {
        return summary(&mut f, ctx).map(|s| (Action::Summary(s), vec![]));
    }
    let kind = if f.has(VIEW_NAME) && f.has(VIEW_DURATION) {
        EventKind::View
    } else if (f.has(POI_NAME) || f.has(POI_DURATION)) && (f.has(POI_ZONE) || f.has(POI_SOURCE)) {
        EventKind::Poi
    } else if f.has(UNIT_NAME) && f.has(UNIT_SQFT) {
        EventKind::UnitSelection
    } else if f.has(CONNECT_TYPE) {
        EventKind::Connect
    } else if f.has(EVENT_TYPE) {
        EventKind::Custom
    } else {
        return Err(Rejection {
            reason: "unknown payload: expected a session summary (session_start/session_end), a view \
                     (View or ViewMode with TotalDuration or Duration), a POI (POI or POI_Duration with \
                     Parent, Castegory, Category, POI_Source, Source or Click_Source), a unit selection \
                     (Name and Sqft), a Connect_Type or an event_type"
                .into(),
            field: None,
            received_keys: f.keys(),
        });
    };
    single_event(&mut f, kind, ctx, idempotency_key)
}

/// The flexible `POST /api/v1/unreal/event`: `event_type` is required, every other key is kept.
/// Its keys are kept, not read as durations, so it has no warnings.
pub fn flexible(value: Value, ctx: ParseContext, idempotency_key: Option<&str>) -> Result<Action, Rejection> {
    let object = json_object(value)?;
    let mut f = Fields::new(object);
    if !f.has(EVENT_TYPE) {
        return Err(Rejection { reason: "event_type: field required".into(), field: Some("event_type".into()), received_keys: f.keys() });
    }
    single_event(&mut f, EventKind::Custom, ctx, idempotency_key).map(|(action, _)| action)
}

fn single_event(f: &mut Fields, kind: EventKind, ctx: ParseContext, idempotency_key: Option<&str>) -> Result<(Action, Vec<String>), Rejection> {
    let mut warnings = Vec::new();
    let mut event = headset_event(f, kind, ctx, &mut warnings)?;
    event.dedupe_key = resend_key(f, &event, idempotency_key)?;
    event.data = f.rest();
    Ok((Action::Events { session_ref: None, events: vec![event] }, warnings))
}

fn headset_event(f: &mut Fields, kind: EventKind, ctx: ParseContext, warnings: &mut Vec<String>) -> Result<NewEvent, Rejection> {
    let session_ref = f.text(SESSION_ID)?.filter(|s| !s.trim().is_empty());
    let occurred_at = match f.take(EVENT_TIME) {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::String(s))) if s.trim().is_empty() => None,
        Some((key, v)) => Some(timestamp_ms(&v, ctx.tz).map_err(|e| f.reject(&key, e))?),
    };
    let mut event = NewEvent {
        kind,
        event_type: kind.as_str().to_string(),
        name: None,
        zone: None,
        source: None,
        occurred_at,
        dwell: None,
        tracking: None,
        data: None,
        dedupe_key: None,
        session_ref,
    };
    // A duration that cannot be read is stored as sent and flagged invalid; the answer says why.
    let mut event_dwell = |f: &mut Fields, aliases: &[&str]| -> Result<Option<DwellInput>, Rejection> {
        let Some((key, dwell)) = dwell(f, aliases, ctx)? else { return Ok(None) };
        if let DwellInput::Duration { parsed: Err(e), .. } = &dwell {
            warnings.push(format!("{key}: {e}"));
        }
        Ok(Some(dwell))
    };
    match kind {
        EventKind::View => {
            event.name = f.text(VIEW_NAME)?;
            event.dwell = event_dwell(f, VIEW_DURATION)?;
        }
        EventKind::Poi => {
            event.name = f.text(POI_NAME)?;
            event.zone = f.text(POI_ZONE)?;
            event.source = f.text(POI_SOURCE)?;
            event.dwell = event_dwell(f, POI_DURATION)?;
        }
        EventKind::UnitSelection => {
            event.name = f.text(UNIT_NAME)?;
            event.zone = f.text(UNIT_TYPE)?;
            event.dwell = event_dwell(f, VIEW_DURATION)?;
            // Sqft stays in `data`, as sent.
        }
        EventKind::Connect => event.name = f.text(CONNECT_TYPE)?,
        EventKind::Custom | EventKind::Tracking => {
            event.event_type = f.text(EVENT_TYPE)?.unwrap_or_default();
            if event.event_type.trim().is_empty() {
                return Err(f.reject("event_type", "must not be empty".into()));
            }
        }
    }
    Ok(event)
}

/// A duration field, with its key as sent; a G5 date-time in a duration field means "left at
/// this moment".
fn dwell(f: &mut Fields, aliases: &[&str], ctx: ParseContext) -> Result<Option<(String, DwellInput)>, Rejection> {
    let Some((key, value)) = f.take(aliases) else { return Ok(None) };
    let text = match &value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(f.reject(&key, format!("must be a duration string, got {}", json_type(other)))),
    };
    let parsed = duration_ms(&value);
    if parsed.is_err() {
        if let Ok(at_ms) = timestamp_ms(&value, ctx.tz) {
            return Ok(Some((key, DwellInput::EndedAt { text, at_ms })));
        }
    }
    Ok(Some((key, DwellInput::Duration { text, parsed })))
}

/// A summary is stored even when its times cannot be read (upstream lost every summary with a
/// human-readable date that way); problems become warnings.
fn summary(f: &mut Fields, ctx: ParseContext) -> Result<SessionSummary, Rejection> {
    let mut s = SessionSummary { session_ref: f.text(SESSION_ID)?.filter(|s| !s.trim().is_empty()), ..Default::default() };
    let time = |f: &mut Fields, aliases: &[&str], warnings: &mut Vec<String>| -> Result<(Option<i64>, Option<String>), Rejection> {
        match f.take(aliases) {
            None | Some((_, Value::Null)) => Ok((None, None)),
            Some((key, v @ (Value::String(_) | Value::Number(_)))) => {
                let raw = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                match timestamp_ms(&v, ctx.tz) {
                    Ok(ms) => Ok((Some(ms), Some(raw))),
                    Err(e) => {
                        warnings.push(format!("{key}: {e}"));
                        Ok((None, Some(raw)))
                    }
                }
            }
            Some((key, other)) => Err(f.reject(&key, format!("must be a timestamp string or number, got {}", json_type(&other)))),
        }
    };
    let mut warnings = Vec::new();
    (s.started_at, s.raw_start) = time(f, SESSION_START, &mut warnings)?;
    (s.ended_at, s.raw_end) = time(f, SESSION_END, &mut warnings)?;
    if let Some((_, DwellInput::Duration { text, parsed })) = dwell(f, SESSION_DURATION, ctx)? {
        match parsed {
            Ok(ms) => s.duration_ms = Some(ms),
            Err(e) => warnings.push(format!("duration: {e}")),
        }
        s.raw_duration = Some(text);
    }
    if let (Some(start), Some(end)) = (s.started_at, s.ended_at) {
        if end < start {
            warnings.push("session_end is before session_start; the server's own times are used".into());
            (s.started_at, s.ended_at) = (None, None);
        }
    }
    s.customer_id = f.text(&["customerid"])?;
    s.property_id = f.text(&["propertyid"])?;
    s.device_type = f.text(&["devicetype"])?;
    s.warnings = warnings;
    Ok(s)
}

/// Builds the summary for the documented `POST /session/start` and `/session/end` bodies.
pub fn tour_boundary(value: Value, ctx: ParseContext) -> Result<SessionSummary, Rejection> {
    let object = json_object(value)?;
    summary(&mut Fields::new(object), ctx)
}

/// An explicit id wins; otherwise a body carrying its own time identifies itself.
fn resend_key(f: &mut Fields, event: &NewEvent, idempotency_key: Option<&str>) -> Result<Option<i64>, Rejection> {
    let explicit_id = f.text(EVENT_ID)?;
    let timed_body = event.occurred_at.and_then(|_| serde_json::to_string(&f.object).ok());
    Ok(dedupe_key(explicit_id.as_deref().or(idempotency_key), timed_body.as_deref()))
}

/// A resend is recognisable by an explicit id, or by an identical body that carries its own time.
pub fn dedupe_key(explicit_id: Option<&str>, timed_body: Option<&str>) -> Option<i64> {
    let hash = |tag: &[u8], text: &str| {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(tag);
        hasher.update(text.as_bytes());
        hasher.digest() as i64
    };
    explicit_id.map(|id| hash(b"id:", id)).or_else(|| timed_body.map(|body| hash(b"body:", body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ParseContext {
        ParseContext { tz: chrono_tz::UTC }
    }

    fn one_event(v: Value) -> NewEvent {
        match universal(v, ctx(), None).unwrap() {
            Action::Events { mut events, .. } => events.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn generations_are_recognised() {
        let e = one_event(json!({"View": "Amenities", "TotalDuration": "0:13"}));
        assert_eq!((e.kind, e.name.as_deref()), (EventKind::View, Some("Amenities")));
        let e = one_event(json!({"ViewMode": "Amenities", "Duration": "0:13", "sesh_id": "abc"}));
        assert_eq!((e.kind, e.session_ref.as_deref()), (EventKind::View, Some("abc")));
        let e = one_event(json!({"POI": "", "Source": "", "Parent": "Location", "POI_Duration": "0:01"}));
        assert_eq!((e.kind, e.zone.as_deref(), e.source.as_deref()), (EventKind::Poi, Some("Location"), Some("")));
        let e = one_event(json!({"POI": "Gym", "Click_Source": "Floating", "Castegory": "Amenities", "Datetime": "02-Dec-2025, 2:54:31 pm"}));
        assert_eq!((e.zone.as_deref(), e.source.as_deref()), (Some("Amenities"), Some("Floating")));
        assert_eq!(e.occurred_at, Some(1_764_687_271_000));
        assert!(e.dedupe_key.is_some(), "a timed body is recognisable on resend");
        let e = one_event(json!({"Name": "A-101", "Sqft": 1250, "Type": "2BHK"}));
        assert_eq!((e.kind, e.zone.as_deref()), (EventKind::UnitSelection, Some("2BHK")));
        assert_eq!(e.data.as_deref(), Some(r#"{"Sqft":1250}"#));
        let e = one_event(json!({"Connect_Type": "Site Visit"}));
        assert_eq!((e.kind, e.name.as_deref()), (EventKind::Connect, Some("Site Visit")));
        assert!(matches!(universal(json!({}), ctx(), None), Ok(Action::Startup)));
        assert!(matches!(universal(json!({"View": "", "x": null}), ctx(), None), Ok(Action::Startup)));
    }

    #[test]
    fn unknown_and_partial_shapes_are_rejected_with_their_keys() {
        for body in [json!({"random_field": "should fail", "another_field": 123}), json!({"POI": "Kitchen"}), json!({"View": "Amenities"})] {
            let r = universal(body.clone(), ctx(), None).unwrap_err();
            assert!(!r.received_keys.is_empty(), "{body}");
        }
        let r = universal(json!({"View": {"a": 1}, "TotalDuration": "0:01"}), ctx(), None).unwrap_err();
        assert_eq!(r.field.as_deref(), Some("View"));
        assert!(universal(json!([1, 2]), ctx(), None).is_err());
    }

    #[test]
    fn summaries_keep_unreadable_times_as_warnings() {
        let Action::Summary(s) = universal(json!({"session_id": "X", "session_start": "soon", "session_end": "02-Dec-2025, 2:30:14 pm", "duration": "0:14"}), ctx(), None).unwrap() else { panic!() };
        assert_eq!(s.started_at, None);
        assert_eq!(s.raw_start.as_deref(), Some("soon"));
        assert_eq!(s.duration_ms, Some(14_000));
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn an_unreadable_duration_is_stored_with_a_warning_naming_the_field() {
        let (action, warnings) = universal_with_warnings(json!({"View": "Lobby", "TotalDuration": "abc"}), ctx(), None).unwrap();
        let Action::Events { events, .. } = action else { panic!() };
        assert!(matches!(&events[0].dwell, Some(DwellInput::Duration { text, parsed: Err(_) }) if text == "abc"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("TotalDuration: unrecognised duration \"abc\""), "{warnings:?}");
        assert!(universal_with_warnings(json!({"View": "Lobby", "TotalDuration": "0:04"}), ctx(), None).unwrap().1.is_empty());
    }
}
