//! Event rows: every event of an upload is attributed to its tour, its dwell time judged once
//! (here, where it is stored), and counted in the request's roll-up.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{inbox, resends};
use super::rollup::RollupKey;
use super::tours::{self, TourRow};
use super::upload::WriteCtx;
use super::StoreError;
use crate::model::{DwellInput, DwellVerdict, NewEvent, TourInfo, UploadMeta};

/// How every event row is written (the benchmark's raw-insert ceiling uses the same statement).
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (uuid, session_id, inbox_id, kind, event_type, name, zone, source, occurred_at,
         received_at, dwell_text, dwell_ms, dwell_invalid, object_name, gaze_target, interaction_type,
         pos_x, pos_y, pos_z, rot_pitch, rot_yaw, rot_roll, data, dedupe_key)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
             ?22, ?23, ?24)
     ON CONFLICT DO NOTHING";


pub(super) struct StoredEvents {
    pub inbox_id: i64,
    pub stored: usize,
    pub duplicates: usize,
    /// The tour of the upload's first event.
    pub tour: TourInfo,
    /// The dwell time of the upload's first event, as stored.
    pub first_dwell: Option<DwellVerdict>,
}

pub(super) fn store_events(
    ctx: &mut WriteCtx,
    meta: &UploadMeta,
    existing: Option<i64>,
    upload_ref: Option<&str>,
    events: Vec<NewEvent>,
) -> Result<StoredEvents, StoreError> {
    let at = meta.received_at;
    let sent = events.len();
    // Resolve every event's tour first: the inbox row names the upload's tour.
    let mut tours: Vec<TourRow> = Vec::new();
    let mut event_tours = Vec::with_capacity(events.len());
    {
        let mut by_reference: HashMap<Option<&str>, usize> = HashMap::new();
        for event in &events {
            let reference = event.session_ref.as_deref().or(upload_ref);
            let index = match by_reference.get(&reference) {
                Some(index) => *index,
                None => {
                    let backdate = match &event.dwell {
                        Some(DwellInput::Duration { parsed: Ok(ms), .. }) => judge(ctx.options.max_dwell_ms, *ms).0.unwrap_or(0),
                        _ => 0,
                    };
                    tours.push(tours::resolve(ctx, &meta.device_key, reference, at, backdate)?);
                    by_reference.insert(reference, tours.len() - 1);
                    tours.len() - 1
                }
            };
            event_tours.push(index);
        }
    }
    let first_tour = match event_tours.first() {
        Some(index) => tours[*index].id,
        // An empty batch still names (or opens) its tour, so the answer can report it.
        None => tours::resolve(ctx, &meta.device_key, upload_ref, at, 0)?.id,
    };
    let detail = events.first().map(|e| e.kind.as_str()).unwrap_or("empty batch");
    let inbox_id =
        inbox::record(ctx.conn, meta, existing, &inbox::Outcome {
            status: meta.endpoint.success_status(),
            outcome: "stored",
            detail,
            events: sent as i64,
            tour_id: Some(first_tour),
        })?;

    let mut per_tour: HashMap<i64, i64> = HashMap::new();
    let mut stored = 0usize;
    let mut first_dwell = None;
    // The headset's earlier tours, looked up once per tour of the upload, only when it has keys.
    let mut earlier: HashMap<i64, Vec<i64>> = HashMap::new();
    let since = ctx.now - ctx.options.resend_window_ms;
    let mut insert = ctx.conn.prepare_cached(INSERT_EVENT)?;
    for (position, (event, index)) in events.into_iter().zip(event_tours).enumerate() {
        let tour = &tours[index];
        let dwell = resolve_dwell(ctx.conn, ctx.options.max_dwell_ms, tour, &event)?;
        if position == 0 && event.dwell.is_some() {
            first_dwell = Some(DwellVerdict { ms: dwell.ms, valid: dwell.invalid.is_none() });
        }
        // A resend that went to an earlier tour of the headset is not stored again.
        if let Some(key) = event.dedupe_key {
            let earlier = match earlier.entry(tour.id) {
                Entry::Occupied(found) => found.into_mut(),
                Entry::Vacant(slot) => slot.insert(resends::earlier_tours(ctx.conn, &meta.device_key, tour.id, since)?),
            };
            if resends::event_seen(ctx.conn, earlier, key)? {
                continue;
            }
        }
        let occurred_at = event.occurred_at.or(dwell.ended_at).unwrap_or(at);
        let detail = event.tracking.unwrap_or_default();
        let position = detail.position.map(|p| p.map(Some)).unwrap_or([None; 3]);
        let rotation = detail.rotation.map(|r| r.map(Some)).unwrap_or([None; 3]);
        let inserted = insert.execute(params![
            Uuid::now_v7().as_bytes().as_slice(),
            tour.id,
            inbox_id,
            event.kind.as_str(),
            event.event_type,
            event.name,
            event.zone,
            event.source,
            occurred_at,
            at,
            dwell.text,
            dwell.ms,
            dwell.invalid,
            detail.object_name,
            detail.gaze_target,
            detail.interaction_type,
            position[0],
            position[1],
            position[2],
            rotation[0],
            rotation[1],
            rotation[2],
            event.data,
            event.dedupe_key,
        ])?;
        if inserted == 0 {
            continue;
        }
        stored += 1;
        *per_tour.entry(tour.id).or_default() += 1;
        let key = RollupKey {
            at: occurred_at,
            property: tour.property_id.as_deref(),
            kind: event.kind.as_str(),
            zone: event.zone.as_deref(),
            name: event.name.as_deref().or(Some(&event.event_type)),
        };
        ctx.rollup.add(ctx.options.tz, key, dwell.ms, 1);
    }
    drop(insert);
    let mut first_tour_info = None;
    for tour in &tours {
        let added = per_tour.get(&tour.id).copied().unwrap_or(0);
        let info = tours::touch(ctx, tour.id, at, added)?;
        if !tour.active && added > 0 {
            // A late event changes a tour that ended (and may be in the cloud already): queue it again.
            super::sync::queue(ctx.conn, tour.id, ctx.now)?;
        }
        if tour.id == first_tour {
            first_tour_info = Some(info);
        }
    }
    let duplicates = sent - stored;
    if duplicates > 0 {
        inbox::note_duplicates(ctx.conn, inbox_id, stored, duplicates)?;
    }
    let tour = match first_tour_info {
        Some(info) => info,
        None => tours::info(ctx.conn, first_tour)?,
    };
    Ok(StoredEvents { inbox_id, stored, duplicates, tour, first_dwell })
}

/// The one rule for a reported dwell time: longer than `max_dwell_secs` is an uninitialised
/// headset timer, kept as sent but not counted. Gives (the dwell to count, why not).
fn judge(max_dwell_ms: i64, ms: i64) -> (Option<i64>, Option<String>) {
    if ms > max_dwell_ms {
        (None, Some(format!("longer than max_dwell_secs ({} s): an uninitialised headset timer", max_dwell_ms / 1000)))
    } else {
        (Some(ms), None)
    }
}

struct ResolvedDwell {
    text: Option<String>,
    ms: Option<i64>,
    invalid: Option<String>,
    ended_at: Option<i64>,
}

fn resolve_dwell(conn: &Connection, max_dwell_ms: i64, tour: &TourRow, event: &NewEvent) -> Result<ResolvedDwell, StoreError> {
    let none = ResolvedDwell { text: None, ms: None, invalid: None, ended_at: None };
    let Some(dwell) = &event.dwell else { return Ok(none) };
    let judge = |ms| judge(max_dwell_ms, ms);
    Ok(match dwell {
        DwellInput::Duration { text, parsed: Ok(ms) } => {
            let (ms, invalid) = judge(*ms);
            ResolvedDwell { text: Some(text.clone()), ms, invalid, ended_at: None }
        }
        DwellInput::Duration { text, parsed: Err(e) } => {
            ResolvedDwell { text: Some(text.clone()), ms: None, invalid: Some(e.clone()), ended_at: None }
        }
        DwellInput::EndedAt { text, at_ms } => {
            // The time since the previous event of the same kind in this tour (else the tour start).
            let previous: Option<i64> = conn
                .prepare_cached(
                    "SELECT max(occurred_at) FROM events WHERE session_id = ?1 AND kind = ?2 AND occurred_at <= ?3",
                )?
                .query_row(params![tour.id, event.kind.as_str(), at_ms], |r| r.get(0))?;
            let since = previous.unwrap_or(tour.started_at).min(*at_ms);
            let (ms, invalid) = judge(at_ms - since);
            ResolvedDwell { text: Some(text.clone()), ms, invalid, ended_at: Some(*at_ms) }
        }
    })
}

