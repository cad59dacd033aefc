//! One stored event as read back, every column: the dashboard's tour detail and exports and cloud
//! sync read events through this one type and mapping.

/// One stored event, every column: what the dashboard shows and cloud sync sends.
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub id: i64,
    /// The tour's row id.
    pub session_id: i64,
    /// UUIDv7, 16 bytes.
    pub uuid: Vec<u8>,
    pub kind: String,
    pub event_type: String,
    pub name: Option<String>,
    pub zone: Option<String>,
    pub source: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub dwell_text: Option<String>,
    /// The dwell time that counts; `None` when absent or flagged.
    pub dwell_ms: Option<i64>,
    /// Why the sent dwell time does not count.
    pub dwell_invalid: Option<String>,
    pub object_name: Option<String>,
    pub gaze_target: Option<String>,
    pub interaction_type: Option<String>,
    pub position: [Option<f64>; 3],
    pub rotation: [Option<f64>; 3],
    /// Every other field the headset sent, JSON.
    pub data: Option<String>,
    pub inbox_id: i64,
}

/// The columns `from_row` reads, in its order, for `SELECT {COLUMNS} FROM events …`.
pub(crate) const COLUMNS: &str = "id, session_id, uuid, kind, event_type, name, zone, source, occurred_at, received_at,
     dwell_text, dwell_ms, dwell_invalid, object_name, gaze_target, interaction_type, pos_x, pos_y, pos_z, rot_pitch,
     rot_yaw, rot_roll, data, inbox_id";

pub(crate) fn from_row(r: &rusqlite::Row) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: r.get(0)?,
        session_id: r.get(1)?,
        uuid: r.get(2)?,
        kind: r.get(3)?,
        event_type: r.get(4)?,
        name: r.get(5)?,
        zone: r.get(6)?,
        source: r.get(7)?,
        occurred_at: r.get(8)?,
        received_at: r.get(9)?,
        dwell_text: r.get(10)?,
        dwell_ms: r.get(11)?,
        dwell_invalid: r.get(12)?,
        object_name: r.get(13)?,
        gaze_target: r.get(14)?,
        interaction_type: r.get(15)?,
        position: [r.get(16)?, r.get(17)?, r.get(18)?],
        rotation: [r.get(19)?, r.get(20)?, r.get(21)?],
        data: r.get(22)?,
        inbox_id: r.get(23)?,
    })
}
