//! What the ingest layer hands to the store: one upload, what it means, and what became of it.
//! Plain data, so parsing stays pure and the store stays free of HTTP.

use serde::Serialize;

/// Where and how an upload arrived; kept verbatim in the inbox.
#[derive(Clone, Debug)]
pub struct UploadMeta {
    pub received_at: i64,
    pub endpoint: String,
    pub client_addr: String,
    pub device_key: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The `Idempotency-Key` header: a resent upload with the same key is not stored twice.
    pub idempotency_key: Option<String>,
    /// The status answered when the upload is stored (201 or 202, by endpoint).
    pub ok_status: u16,
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
}

/// What the store did with an upload, after the commit.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub inbox_id: i64,
    pub tour: Option<TourInfo>,
    pub stored: usize,
    pub duplicates: usize,
    /// Heartbeat for a session that does not exist.
    pub session_missing: bool,
}
