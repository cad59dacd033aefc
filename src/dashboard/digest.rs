//! What one tour's events add up to, read in one pass in time order: the first events for the
//! lists, dwell per zone and per view, and the path through the places visited.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::period::iso;
use super::shapes::seconds;
use crate::store::event_record::EventRecord;
use crate::store::dashboard::rollups::PLACE_KINDS;

/// At most this many events in each list of a tour's detail (the rest: the events route, the CSV).
pub const LISTED: usize = 1000;

#[derive(Default)]
pub struct TourDigest {
    /// The first [`LISTED`] events, and the first of each of the POIs and views.
    pub events: Vec<EventRecord>,
    pub pois: Vec<EventRecord>,
    pub views: Vec<EventRecord>,
    pub total: i64,
    zones: Tally,
    view_dwell: Tally,
    path: Vec<Step>,
}

/// Visits and valid dwell per name, in the order first seen.
#[derive(Default)]
struct Tally {
    index: HashMap<String, usize>,
    rows: Vec<(String, i64, i64)>,
}

impl Tally {
    fn add(&mut self, name: &str, dwell_ms: Option<i64>) {
        let at = match self.index.get(name) {
            Some(at) => *at,
            None => {
                self.rows.push((name.to_string(), 0, 0));
                self.index.insert(name.to_string(), self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        self.rows[at].1 += 1;
        self.rows[at].2 += dwell_ms.unwrap_or(0);
    }

    /// Most dwell first.
    fn json(&self, key: &str) -> Value {
        let mut rows: Vec<&(String, i64, i64)> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
        rows.iter().map(|(name, visits, dwell)| json!({key: name, "visits": visits, "dwell_seconds": seconds(*dwell)})).collect()
    }
}

/// A stay in one place: from the first event there (less its reported dwell) until the next
/// place.
struct Step {
    place: String,
    entered_at: i64,
    last_at: i64,
    dwell_ms: i64,
    timed: bool,
}

impl TourDigest {
    pub fn add(&mut self, e: EventRecord) {
        self.total += 1;
        self.tally(&e);
        let kind_list = match e.kind.as_str() {
            "poi" => Some(&mut self.pois),
            "view" => Some(&mut self.views),
            _ => None,
        };
        if let Some(list) = kind_list.filter(|l| l.len() < LISTED) {
            list.push(e.clone());
        }
        if self.events.len() < LISTED {
            self.events.push(e);
        }
    }

    /// Counts the event in the zones, the views and the path.
    fn tally(&mut self, e: &EventRecord) {
        let zone = e.zone.as_deref().filter(|z| !z.is_empty() && PLACE_KINDS.contains(&e.kind.as_str()));
        if let Some(zone) = zone {
            self.zones.add(zone, e.dwell_ms);
        }
        if e.kind == "view" {
            self.view_dwell.add(e.name.as_deref().unwrap_or_default(), e.dwell_ms);
        }
        // A view is a place too: the buyer was in it for its dwell time.
        let place = zone.or_else(|| e.name.as_deref().filter(|n| e.kind == "view" && !n.is_empty()));
        let Some(place) = place else { return };
        match self.path.last_mut() {
            Some(step) if step.place == place => {
                step.last_at = e.occurred_at;
                step.dwell_ms += e.dwell_ms.unwrap_or(0);
                step.timed |= e.dwell_ms.is_some();
            }
            _ => self.path.push(Step {
                place: place.to_string(),
                entered_at: e.occurred_at - e.dwell_ms.unwrap_or(0),
                last_at: e.occurred_at,
                dwell_ms: e.dwell_ms.unwrap_or(0),
                timed: e.dwell_ms.is_some(),
            }),
        }
    }

    pub fn zones(&self) -> Value {
        self.zones.json("zone")
    }

    pub fn views(&self) -> Value {
        self.view_dwell.json("name")
    }

    /// The places in the order visited: a stay's dwell is the sum of the dwell times its events
    /// reported, or, when none did (tracking events), the time until the next place.
    pub fn path(&self) -> Value {
        let next_entered = self.path.iter().skip(1).map(|s| Some(s.entered_at)).chain([None]);
        self.path
            .iter()
            .zip(next_entered)
            .map(|(step, next)| {
                let dwell = if step.timed { step.dwell_ms } else { (next.unwrap_or(step.last_at) - step.entered_at).max(0) };
                json!({"zone": step.place, "entered_at": iso(step.entered_at), "dwell_seconds": seconds(dwell)})
            })
            .collect()
    }
}
