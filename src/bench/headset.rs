//! A simulated headset: realistic tours in the formats real headsets send (reference §2 and the
//! G5 shapes): a startup packet, a garbage first view and POI duration, views, POIs, unit
//! selections, then a summary with the en-IN timestamps and a 32-hex session id.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

const VIEWS: &[&str] = &["Home", "Location", "Amenities", "Floor_Plan", "Unit_Overview", "Balcony_View"];
const ZONES: &[&str] = &["Location", "Amenities", "Unit_A", "Clubhouse"];
const POIS: &[&str] = &["", "Gym", "Pool", "Spa", "Garden", "Kitchen", "Master_Bedroom", "Living_Room", "Balcony"];
const SOURCES: &[&str] = &["", "Floating", "NavBar"];
const UNITS: &[(&str, &str, &str)] = &[("A-101", "1250", "2BHK"), ("B-202", "980", "1BHK"), ("C-303", "1610", "3BHK")];

/// Laid out the way the Unreal VaRest plugin sends JSON: tab-indented, one key per line.
fn tabbed(pairs: &[(&str, String)]) -> String {
    let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("\t\"{k}\": \"{v}\"")).collect();
    format!("{{\n{}\n}}", fields.join(",\n"))
}

/// The en-IN medium layout real headsets use: `02-Dec-2025, 2:54:12 pm`.
fn en_in(t: DateTime<Utc>) -> String {
    t.format("%d-%b-%Y, %-I:%M:%S %P").to_string()
}

pub struct Headset {
    pub device: String,
    rng: fastrand::Rng,
    pending: VecDeque<String>,
    tour_started: DateTime<Utc>,
    tours: u64,
}

impl Headset {
    pub fn new(index: usize, seed: u64) -> Headset {
        Headset {
            device: format!("sim-headset-{index:03}"),
            rng: fastrand::Rng::with_seed(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            pending: VecDeque::new(),
            tour_started: Utc::now(),
            tours: 0,
        }
    }

    /// Tours completed (summaries produced) so far.
    pub fn tours(&self) -> u64 {
        self.tours
    }

    /// The next body this headset posts to `/api/v1/unreal/session`.
    pub fn next_body(&mut self) -> String {
        if self.pending.is_empty() {
            self.plan_tour();
        }
        match self.pending.pop_front() {
            // The summary is written when it is due, so its times are real.
            Some(body) if !body.is_empty() => body,
            _ => {
                self.tours += 1;
                self.summary()
            }
        }
    }

    fn plan_tour(&mut self) {
        let now = Utc::now();
        self.tour_started = now;
        let rng = &mut self.rng;
        // One build per tour: older builds say Source/Parent/View, newer POI_Source, G5 ViewMode/Castegory.
        let build = rng.u8(0..3);
        let garbage = |rng: &mut fastrand::Rng| format!("1,77,50,078:{:02}:{:02}", rng.u8(0..60), rng.u8(0..60));
        let mut bodies = vec!["{}".to_string(), tabbed(&[("View", String::new()), ("TotalDuration", garbage(rng))])];
        bodies.push(tabbed(&[("POI", String::new()), ("POI_Source", String::new()), ("Parent", "Location".into()), ("POI_Duration", garbage(rng))]));
        let events = rng.usize(20..60);
        for _ in 0..events {
            let seconds = rng.u32(1..90);
            let duration = format!("{}:{:02}", seconds / 60, seconds % 60);
            let body = match rng.u8(0..20) {
                0..=7 => match build {
                    2 => tabbed(&[("ViewMode", VIEWS[rng.usize(..VIEWS.len())].into()), ("Duration", duration)]),
                    _ => tabbed(&[("View", VIEWS[rng.usize(..VIEWS.len())].into()), ("TotalDuration", duration)]),
                },
                8..=17 => {
                    let (poi, zone, source) = (POIS[rng.usize(..POIS.len())], ZONES[rng.usize(..ZONES.len())], SOURCES[rng.usize(..3)]);
                    match build {
                        0 => tabbed(&[("POI", poi.into()), ("Source", source.into()), ("Parent", zone.into()), ("POI_Duration", duration)]),
                        1 => tabbed(&[("POI", poi.into()), ("POI_Source", source.into()), ("Parent", zone.into()), ("POI_Duration", duration)]),
                        _ => tabbed(&[("POI", poi.into()), ("Click_Source", source.into()), ("Castegory", zone.into()), ("POI_Duration", duration)]),
                    }
                }
                _ => {
                    let (name, sqft, kind) = UNITS[rng.usize(..UNITS.len())];
                    tabbed(&[("Name", name.into()), ("Sqft", sqft.into()), ("Type", kind.into()), ("Datetime", en_in(Utc::now()))])
                }
            };
            bodies.push(body);
        }
        bodies.push(String::new()); // where the summary goes
        self.pending = bodies.into();
    }

    fn summary(&mut self) -> String {
        let end = Utc::now();
        let seconds = (end - self.tour_started).num_seconds().max(0);
        tabbed(&[
            ("session_id", format!("{:032X}", self.rng.u128(..))),
            ("session_start", en_in(self.tour_started)),
            ("session_end", en_in(end)),
            ("duration", format!("{}:{:02}", seconds / 60, seconds % 60)),
        ])
    }
}
