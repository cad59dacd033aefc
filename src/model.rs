//! What the ingest layer hands to the store: one upload, what it means, and what became of it.
//! Plain data, so parsing stays pure and the store stays free of HTTP.

use serde::Serialize;

/// Every headset route that takes an upload, under [`Endpoint::PREFIX`]. The one table of them:
/// the router, the answers, the inbox and `nexero reprocess` all go by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/session` and `/sessions`: every generation of headset payload.
    Session,
    Sessions,
    /// A flexible event with `event_type`.
    Event,
    TrackingEvent,
    Events,
    TrackingBatch,
    Batch,
    SessionStart,
    SessionEnd,
    SessionHeartbeat,
    Heartbeat,
}

impl Endpoint {
    pub const PREFIX: &'static str = "/api/v1/unreal";
    pub const ALL: [Endpoint; 11] = [
        Endpoint::Session,
        Endpoint::Sessions,
        Endpoint::Event,
        Endpoint::TrackingEvent,
        Endpoint::Events,
        Endpoint::TrackingBatch,
        Endpoint::Batch,
        Endpoint::SessionStart,
        Endpoint::SessionEnd,
        Endpoint::SessionHeartbeat,
        Endpoint::Heartbeat,
    ];

    /// The route under the prefix, in the router's syntax.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Session => "/session",
            Endpoint::Sessions => "/sessions",
            Endpoint::Event => "/event",
            Endpoint::TrackingEvent => "/tracking/event",
            Endpoint::Events => "/events",
            Endpoint::TrackingBatch => "/tracking/batch",
            Endpoint::Batch => "/batch",
            Endpoint::SessionStart => "/session/start",
            Endpoint::SessionEnd => "/session/end",
            Endpoint::SessionHeartbeat => "/session/{id}/heartbeat",
            Endpoint::Heartbeat => "/heartbeat/{id}",
        }
    }

    /// The status answered when an upload to this endpoint is stored.
    pub fn success_status(self) -> u16 {
        match self {
            Endpoint::TrackingEvent | Endpoint::Events | Endpoint::TrackingBatch | Endpoint::Batch => 202,
            Endpoint::SessionEnd | Endpoint::SessionHeartbeat | Endpoint::Heartbeat => 200,
            Endpoint::Session | Endpoint::Sessions | Endpoint::Event | Endpoint::SessionStart => 201,
        }
    }

    /// The endpoint and path an inbox row records (`POST /api/v1/unreal/session`), matched as the
    /// router matches paths (see [`route_spelling`]).
    pub fn from_inbox(recorded: &str) -> Option<(Endpoint, String)> {
        let path = recorded.strip_prefix("POST ")?;
        let endpoint = Endpoint::ALL.into_iter().find(|e| route_spelling(&format!("{}{}", Endpoint::PREFIX, e.route()), path).is_some())?;
        Some((endpoint, path.to_owned()))
    }
}

/// `path` spelt as the route `pattern` (router syntax, `{id}` for a parameter) when it names that
/// route ignoring trailing slashes and the letter case of the route's own words, as the old
/// backend took them; parameters keep their case.
pub fn route_spelling(pattern: &str, path: &str) -> Option<String> {
    let called: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let pattern: Vec<&str> = pattern.split('/').collect();
    let fits = pattern.len() == called.len()
        && pattern.iter().zip(&called).all(|(p, c)| if p.starts_with('{') { !c.is_empty() } else { p.eq_ignore_ascii_case(c) });
    fits.then(|| pattern.iter().zip(&called).map(|(p, c)| if p.starts_with('{') { *c } else { *p }).collect::<Vec<_>>().join("/"))
}

/// Where and how an upload arrived; kept verbatim in the inbox.
#[derive(Clone, Debug)]
pub struct UploadMeta {
    pub received_at: i64,
    pub endpoint: Endpoint,
    /// The path the headset called.
    pub path: String,
    pub client_addr: String,
    pub device_key: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The `Idempotency-Key` header: a resent upload with the same key is not stored twice.
    pub idempotency_key: Option<String>,
}

impl UploadMeta {
    /// How the inbox records where the upload came in.
    pub fn endpoint_text(&self) -> String {
        format!("POST {}", self.path)
    }

    /// What makes two bodies the same upload: the JSON with its keys in one order (`serde_json`'s
    /// map is sorted), else the bytes as sent.
    pub fn fingerprint(&self) -> i64 {
        let normalised = serde_json::from_slice::<serde_json::Value>(&self.body).ok().map(|v| v.to_string());
        xxhash_rust::xxh3::xxh3_64(normalised.as_deref().map_or(&self.body[..], str::as_bytes)) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    View,
    Poi,
    UnitSelection,
    Connect,
    Tracking,
    Custom,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::Poi => "poi",
            EventKind::UnitSelection => "unit_selection",
            EventKind::Connect => "connect",
            EventKind::Tracking => "tracking",
            EventKind::Custom => "custom",
        }
    }
}

/// A dwell time as the headset reported it.
#[derive(Clone, Debug)]
pub enum DwellInput {
    /// A duration such as "0:45"; `Err` holds why it could not be read.
    Duration { text: String, parsed: Result<i64, String> },
    /// G5 headsets may send the moment the view or POI was left instead of a duration; the dwell
    /// is then the time since the previous event of the same kind in the same tour.
    EndedAt { text: String, at_ms: i64 },
}

#[derive(Clone, Debug, Default)]
pub struct TrackingDetail {
    pub object_name: Option<String>,
    pub gaze_target: Option<String>,
    pub interaction_type: Option<String>,
    pub position: Option<[f64; 3]>,
    pub rotation: Option<[f64; 3]>,
}

#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: EventKind,
    /// The headset's own type name ("gaze", "NavBar_Click"), or the kind for headset shapes.
    pub event_type: String,
    /// View name, POI name, unit name, connect type.
    pub name: Option<String>,
    /// Zone: a POI's parent/category, a tracking event's zone.
    pub zone: Option<String>,
    /// How it was reached: POI source / click source.
    pub source: Option<String>,
    /// When it happened by the headset's clock, if it said.
    pub occurred_at: Option<i64>,
    pub dwell: Option<DwellInput>,
    pub tracking: Option<TrackingDetail>,
    /// Every other field, as JSON text.
    pub data: Option<String>,
    /// Set when a resend of the same event can be recognised.
    pub dedupe_key: Option<i64>,
    /// The event's own session id (`sesh_id`, `session_id`), which wins over device attribution.
    pub session_ref: Option<String>,
}

/// The end-of-tour summary a headset sends.
#[derive(Clone, Debug, Default)]
pub struct SessionSummary {
    pub session_ref: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub raw_start: Option<String>,
    pub raw_end: Option<String>,
    pub raw_duration: Option<String>,
    pub customer_id: Option<String>,
    pub property_id: Option<String>,
    pub device_type: Option<String>,
    /// Parse problems that did not stop the summary from being stored.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// The empty packet a headset sends when the tour app starts.
    Startup,
    /// Events; `session_ref` is the upload-level session id for events without their own.
    Events { session_ref: Option<String>, events: Vec<NewEvent> },
    Summary(SessionSummary),
    /// An explicit tour start (the documented `/session/start`).
    StartTour(SessionSummary),
    Heartbeat { session_ref: String },
    /// Nothing usable; the upload is kept for a later `nexero reprocess`.
    Rejected { status: u16, reason: String },
}

/// A tour session as the headset endpoints report it.
#[derive(Clone, Debug, Serialize)]
pub struct TourInfo {
    pub uuid: String,
    pub external_id: Option<String>,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub last_event_at: i64,
    pub duration_ms: Option<i64>,
    pub event_count: i64,
    pub customer_id: Option<String>,
    pub property_id: Option<String>,
    /// Which of its times are not the headset's own, and why.
    pub time_warnings: Option<String>,
}

/// What the store did with an upload, after the commit.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub inbox_id: i64,
    pub tour: Option<TourInfo>,
    pub stored: usize,
    pub duplicates: usize,
    /// The dwell time of the upload's first event, as the store judged it.
    pub first_dwell: Option<DwellVerdict>,
    /// A resend of an upload already stored (same `Idempotency-Key` and body): nothing new.
    pub resend: bool,
    /// What was stored differently from what was sent, and why (a summary's unusable times).
    pub warnings: Vec<String>,
    /// Why the store refused the upload, when what it means depends on what is stored; the
    /// upload is kept in the inbox as refused.
    pub refusal: Option<Refusal>,
}

/// Why the store refused an upload that parsed.
#[derive(Clone, Debug)]
pub enum Refusal {
    /// A heartbeat (or other reference) to a tour that does not exist.
    UnknownTour,
    /// Fields that cannot be used given what is stored: (field, reason).
    Invalid(Vec<(String, String)>),
}

/// A reported dwell time as stored: the time counted (`None` when not counted) and whether it
/// was accepted as a real dwell time.
#[derive(Clone, Copy, Debug)]
pub struct DwellVerdict {
    pub ms: Option<i64>,
    pub valid: bool,
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn inbox_paths_match_as_the_router_matches_them() {
        let endpoint = |recorded: &str| Endpoint::from_inbox(recorded).map(|(e, _)| e);
        assert_eq!(endpoint("POST /api/v1/unreal/session"), Some(Endpoint::Session));
        assert_eq!(endpoint("POST /API/v1/Unreal/Session/"), Some(Endpoint::Session));
        assert_eq!(endpoint("POST /api/v1/unreal/tracking/BATCH"), Some(Endpoint::TrackingBatch));
        assert_eq!(endpoint("POST /api/v1/unreal/session/AbC-1/heartbeat"), Some(Endpoint::SessionHeartbeat));
        assert_eq!(endpoint("POST /api/v1/unreal/nothing"), None);
        assert_eq!(endpoint("GET /api/v1/unreal/session"), None);
        assert_eq!(Endpoint::from_inbox("POST /api/v1/unreal/session/").map(|(_, path)| path).as_deref(), Some("/api/v1/unreal/session/"));
    }
}
