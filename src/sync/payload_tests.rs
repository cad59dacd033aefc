use super::*;

fn tour(full: bool) -> TourRecord {
    let some = |s: &str| full.then(|| s.to_owned());
    TourRecord {
        id: 7,
        uuid: "0190e2a4-0000-7000-8000-000000000001".into(),
        external_id: some("HEADSET-1"),
        device_key: "quest-1".into(),
        status: "completed".into(),
        started_at: 1_767_225_600_000,
        ended_at: full.then_some(1_767_225_690_499),
        duration_ms: full.then_some(90_499),
        customer_id: some("C1"),
        property_id: some("P1"),
        device_type: some("Quest 3"),
        event_count: 2,
        time_warnings: None,
        created_at: 1_767_225_600_000,
        updated_at: 1_767_225_690_500,
    }
}

fn event(kind: &str, full: bool) -> EventRecord {
    let some = |s: &str| full.then(|| s.to_owned());
    EventRecord {
        id: 11,
        session_id: 7,
        uuid: uuid::Uuid::from_u128(0x0190e2a4_0000_7000_8000_0000000000aa).as_bytes().to_vec(),
        kind: kind.into(),
        event_type: "gaze".into(),
        name: some("Living room"),
        zone: some("Ground floor"),
        source: some("click"),
        occurred_at: 1_767_225_601_000,
        received_at: 1_767_225_602_000,
        dwell_text: some("0:45"),
        dwell_ms: full.then_some(45_000),
        dwell_invalid: None,
        object_name: some("sofa"),
        gaze_target: some("window"),
        interaction_type: some("look"),
        position: if full { [Some(1.0), Some(2.0), Some(3.5)] } else { [None; 3] },
        rotation: if full { [Some(0.0), Some(90.0), Some(0.0)] } else { [None; 3] },
        data: full.then(|| r#"{"b":1,"a":[true]}"#.to_owned()),
        inbox_id: 3,
    }
}

fn keys(json: &str) -> Vec<String> {
    // serde_json keeps no order for maps; compare as sets and by count.
    let value: Value = serde_json::from_str(json).unwrap();
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(columns: &[&str]) -> Vec<String> {
    let mut c: Vec<String> = columns.iter().map(|s| s.to_string()).collect();
    c.sort();
    c
}

#[test]
fn every_object_of_a_table_has_exactly_its_columns_full_or_empty() {
    for full in [true, false] {
        let row = session_row(&tour(full), "site");
        assert_eq!(keys(&row.json), sorted(Table::Sessions.columns()), "sessions, full={full}");
        for kind in ["view", "poi", "tracking", "unit_selection", "connect", "custom"] {
            let row = event_row(&event(kind, full), "tour", "site");
            let table = row.table;
            assert_eq!(keys(&row.json), sorted(table.columns()), "{kind}, full={full}");
            let value: Value = serde_json::from_str(&row.json).unwrap();
            let metadata: Vec<String> = value["metadata"].as_object().unwrap().keys().cloned().collect();
            assert_eq!(metadata.len(), 9, "metadata keys are uniform too: {metadata:?}");
        }
    }
    assert_eq!(keys(&site_row("s", 0).json), sorted(Table::Sites.columns()));
}

#[test]
fn kinds_go_to_their_tables() {
    assert_eq!(event_row(&event("view", true), "t", "s").table, Table::Views);
    assert_eq!(event_row(&event("poi", true), "t", "s").table, Table::Pois);
    for kind in ["tracking", "unit_selection", "connect", "custom"] {
        assert_eq!(event_row(&event(kind, true), "t", "s").table, Table::Tracking);
    }
}

#[test]
fn values_are_uuid_strings_rfc3339_times_and_json_objects() {
    let row = event_row(&event("tracking", true), "0190e2a4-0000-7000-8000-000000000001", "site-1");
    let v: Value = serde_json::from_str(&row.json).unwrap();
    assert_eq!(v["id"], "0190e2a4-0000-7000-8000-0000000000aa");
    assert_eq!(row.key, "0190e2a4-0000-7000-8000-0000000000aa");
    assert_eq!(v["timestamp"], "2026-01-01T00:00:01.000Z");
    assert_eq!(v["position"], json!({"x": 1.0, "y": 2.0, "z": 3.5}));
    assert_eq!(v["rotation"], json!({"pitch": 0.0, "yaw": 90.0, "roll": 0.0}));
    assert_eq!(v["metadata"]["data"], json!({"a": [true], "b": 1}));
    assert_eq!(v["metadata"]["kind"], "tracking");
    assert_eq!(v["dwell_time_ms"], 45_000);
    let empty = event_row(&event("tracking", false), "t", "s");
    let v: Value = serde_json::from_str(&empty.json).unwrap();
    assert!(v["position"].is_null() && v["metadata"]["data"].is_null() && v["zone_name"].is_null());

    let s: Value = serde_json::from_str(&session_row(&tour(true), "site-1").json).unwrap();
    assert_eq!(s["ended_at"], "2026-01-01T00:01:30.499Z");
    assert_eq!(s["duration_seconds"], 90, "90.499 s rounds to 90");
    assert_eq!(s["site_id"], "site-1");
    let view = event_row(&event("view", true), "t", "s");
    let v: Value = serde_json::from_str(&view.json).unwrap();
    assert_eq!((v["view_name"].clone(), v["duration_seconds"].clone(), v["duration_string"].clone()), (json!("Living room"), json!(45), json!("0:45")));
}

#[test]
fn text_that_is_not_json_is_kept_as_a_string() {
    let mut e = event("custom", true);
    e.data = Some("not json".into());
    let row = event_row(&e, "t", "s");
    let v: Value = serde_json::from_str(&row.json).unwrap();
    assert_eq!(v["metadata"]["data"], "not json");
}

#[test]
fn body_is_a_json_array_of_the_objects() {
    let rows = vec![session_row(&tour(true), "a"), session_row(&tour(false), "b")];
    let parsed: Value = serde_json::from_str(&body(&rows)).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);
    assert_eq!(body(&[]), "[]");
}
