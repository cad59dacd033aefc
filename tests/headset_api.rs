//! Every endpoint and payload generation of the reference (§1) and what the old test clients
//! expect (§5): status codes and the response fields they read.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

const EPOCH: i64 = 1_727_653_800;

#[tokio::test(flavor = "multi_thread")]
async fn the_g1_test_client_flow() {
    let server = TestServer::start().await;
    let (status, created) = server
        .post(UNIVERSAL, &json!({"session_start": EPOCH.to_string(), "session_end": (EPOCH + 300).to_string(),
                                  "customer_id": "cust_test_12345", "property_id": "prop_luxury_villa_001"}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["duration_seconds"], 300);
    let session_id = created["session_id"].as_str().expect("session_id").to_string();
    assert_eq!(uuid::Uuid::parse_str(&session_id).unwrap().get_version_num(), 7);

    let event = json!({"event_type": "zone_enter", "timestamp": EPOCH as f64 + 1.5, "session_id": session_id,
                       "zone_name": "kitchen", "position": {"x": 10.5, "y": 2.0, "z": 15.3},
                       "rotation": {"pitch": 0.0, "yaw": 90.0, "roll": 0.0}});
    let (status, answer) = server.post("/api/v1/unreal/tracking/event", &event).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "received");

    let events: Vec<Value> = (0..10)
        .map(|i| json!({"event_type": if i % 2 == 0 { "gaze" } else { "interaction" }, "timestamp": EPOCH as f64 + 2.0 * i as f64,
                        "session_id": session_id, "zone_name": "living_room", "gaze_target": "window",
                        "dwell_time_ms": 500 + i * 100, "interaction_type": "click", "object_name": "door"}))
        .collect();
    let (status, batch) = server
        .post("/api/v1/unreal/tracking/batch", &json!({"session_id": session_id, "sent_at": EPOCH as f64 + 30.0, "events": events}))
        .await;
    assert_eq!(status, 202, "{batch}");
    assert_eq!((batch["total_events"].as_i64(), batch["processed"].as_i64(), batch["failed"].as_i64()), (Some(10), Some(10), Some(0)));
    assert_eq!(batch["success_rate"].as_f64(), Some(100.0));

    let (status, answer) = server.get(&format!("/api/v1/unreal/session/{session_id}/status")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "completed");
    assert_eq!(answer["event_count"], 11);

    // The tour is over: the heartbeat is answered 200, as the G1 client expects, but it says so.
    let (status, answer) = server.post(&format!("/api/v1/unreal/session/{session_id}/heartbeat"), &json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("completed")));
    let (status, _) = server.post(&format!("/api/v1/unreal/heartbeat/{session_id}"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, answer) = server.post("/api/v1/unreal/heartbeat/no-such-session", &json!({})).await;
    assert_eq!(status, 404, "{answer}");

    let stored: (String, f64, i64, String) = server
        .db()
        .query_row("SELECT zone, pos_z, occurred_at, (SELECT uuid FROM tour_sessions WHERE id = session_id)
                    FROM events WHERE event_type = 'zone_enter'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert_eq!(stored, ("kitchen".into(), 15.3, EPOCH * 1000 + 1500, session_id));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_g3_endpoint_samples_and_rejections() {
    let server = TestServer::start().await;
    let (status, answer) = server
        .post(UNIVERSAL, &json!({"session_start": EPOCH.to_string(), "session_end": (EPOCH + 120).to_string(),
                                  "customer_id": "test_customer_001", "property_id": "test_property_001"}))
        .await;
    assert_eq!((status, answer["data_type"].as_str()), (201, Some("session")));
    for (body, seconds) in [
        (json!({"POI": "Kitchen", "Parent": "Unit_A", "POI_Duration": "0:45"}), 45),
        (json!({"POI": "Master Bedroom", "Parent": "Unit_A", "POI_Duration": "1:30"}), 90),
        (json!({"POI": "", "Parent": "Amenities", "POI_Duration": "0:15"}), 15),
        (json!({"POI": "Swimming Pool", "Parent": "Amenities", "POI_Duration": "2:00"}), 120),
    ] {
        let (status, answer) = server.post(UNIVERSAL, &body).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!((answer["data_type"].as_str(), answer["duration_seconds"].as_i64()), (Some("poi"), Some(seconds)));
        assert_eq!(answer["parent"], body["Parent"]);
    }
    for (body, seconds) in [
        (json!({"View": "Amenities", "TotalDuration": "0:13"}), 13),
        (json!({"View": "Unit_Overview", "TotalDuration": "1:45"}), 105),
        (json!({"View": "Property_View", "TotalDuration": "0:30"}), 30),
    ] {
        let (status, answer) = server.post(UNIVERSAL, &body).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!((answer["view"].clone(), answer["duration_seconds"].as_i64()), (body["View"].clone(), Some(seconds)));
    }
    for body in [json!({"random_field": "should fail", "another_field": 123}), json!({"POI": "Kitchen"}), json!({"View": "Amenities"})] {
        let (status, answer) = server.post(UNIVERSAL, &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let keys: Vec<&str> = answer["received_keys"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let sent: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, sent, "the 400 names the keys received");
    }
    // Refused bodies are still kept, and counted.
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'rejected' AND status = 400"), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session_timestamps_as_strings_numbers_and_fractions() {
    let server = TestServer::start().await;
    for (start, end, expected_start) in [
        (json!(EPOCH), json!(EPOCH + 60), EPOCH * 1000),
        (json!(EPOCH.to_string()), json!((EPOCH + 60).to_string()), EPOCH * 1000),
        (json!(EPOCH as f64 + 0.75), json!(EPOCH as f64 + 60.5), EPOCH * 1000 + 750),
        (json!("1727653800.25"), json!("1727653860"), EPOCH * 1000 + 250),
        (json!(EPOCH * 1000 + 5), json!((EPOCH + 60) * 1000), EPOCH * 1000 + 5),
        (json!("2024-09-29T23:50:00Z"), json!("2024-09-29T23:51:00.500+00:00"), EPOCH * 1000),
        (json!("2024-09-30T05:20:00+05:30"), json!("2024-09-29 23:51:00"), EPOCH * 1000),
        (json!("29-Sep-2024, 11:50:00 PM"), json!("29-sep-2024, 11:51:00pm"), EPOCH * 1000),
        (json!("2024.09.29-23.50.00"), json!("2024.09.29-23.51.00"), EPOCH * 1000),
    ] {
        let (status, answer) = server.post(UNIVERSAL, &json!({"session_start": start, "session_end": end})).await;
        assert_eq!(status, 201, "{start} {end} -> {answer}");
        assert_eq!(answer["warnings"], json!([]), "{start}");
        let uuid = answer["session_id"].as_str().unwrap();
        let started: i64 =
            server.db().query_row("SELECT started_at FROM tour_sessions WHERE uuid = ?1", [uuid], |r| r.get(0)).unwrap();
        assert_eq!(started, expected_start, "{start}");
        let (status, answer) = server.get(&format!("/api/v1/unreal/session/{uuid}/status")).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("completed")));
    }
    // Unreadable times with no tour to take them from: refused naming both fields (no tour is
    // made up), and the summary is not lost: its body stays in the inbox.
    let (status, answer) = server.post(UNIVERSAL, &json!({"session_id": "odd", "session_start": "teatime", "session_end": "later"})).await;
    assert_eq!(status, 422);
    assert_eq!(answer["errors"].as_array().unwrap().len(), 2, "{answer}");
    let raw: String = server
        .db()
        .query_row("SELECT CAST(body AS TEXT) FROM inbox WHERE status = 422 AND CAST(body AS TEXT) LIKE '%teatime%'", [], |r| r.get(0))
        .unwrap();
    assert!(raw.contains("later"));
    assert_eq!(server.count("SELECT count(*) FROM tour_sessions WHERE external_id = 'odd'"), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn site_time_zone_applies_to_zone_less_times() {
    let server = TestServer::start_with(|o| o.site_timezone = Some("Asia/Kolkata".into())).await;
    let (_, answer) = server
        .post(UNIVERSAL, &json!({"session_id": "IST", "session_start": "02-Dec-2025, 8:00:00 pm", "session_end": "2025-12-02T14:31:00Z"}))
        .await;
    assert_eq!(answer["started_at"], "2025-12-02T14:30:00.000+00:00");
    assert_eq!(answer["duration_seconds"], 60);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_g5_shapes_and_sesh_id_linkage() {
    let server = TestServer::start().await;
    let sesh = "46D673E04225F8C2B5D52F99796B2CDF";
    let (status, answer) = server.post(UNIVERSAL, &json!({})).await;
    assert_eq!((status, answer["status"].as_str(), answer["processed"].as_bool()), (201, Some("ignored"), Some(false)));
    let bodies = [
        json!({"ViewMode": "Amenities", "Duration": "0:13", "sesh_id": sesh}),
        json!({"POI": "Gym", "Click_Source": "Floating", "Castegory": "Amenities", "Datetime": "02-Dec-2025, 2:54:31 pm", "POI_Duration": "0:04", "sesh_id": sesh}),
        json!({"POI": "Spa", "Click_Source": "NavBar", "Category": "Amenities", "sesh_id": sesh}),
        json!({"Name": "A-101", "Sqft": "1250", "Type": "2BHK", "Datetime": "02-Dec-2025, 2:55:00 pm", "sesh_id": sesh}),
        json!({"Name": "B-202", "Sqft": 980, "Type": "1BHK", "sesh_id": sesh}),
        json!({"Connect_Type": "Site Visit", "sesh_id": sesh}),
    ];
    for body in &bodies {
        let (status, answer) = server.post(UNIVERSAL, body).await;
        assert_eq!(status, 201, "{body} -> {answer}");
        assert_eq!(answer["processed"], true);
        assert_eq!(answer["external_session_id"], sesh);
    }
    let (status, answer) = server
        .post(UNIVERSAL, &json!({"session_id": sesh, "session_start": "02-Dec-2025, 2:54:12 pm", "session_end": "02-Dec-2025, 2:56:12 pm", "duration": "2:00"}))
        .await;
    assert_eq!((status, answer["event_type"].as_str()), (201, Some("session_summary")));
    assert_eq!(server.count("SELECT count(*) FROM tour_sessions"), 1, "all linked to one tour by sesh_id");
    let kinds: Vec<String> = common::column(&server.db(), "SELECT kind FROM events ORDER BY id");
    assert_eq!(kinds, ["view", "poi", "poi", "unit_selection", "unit_selection", "connect"]);
    let gym: (String, String, i64, i64) = server
        .db()
        .query_row("SELECT zone, source, occurred_at, dwell_ms FROM events WHERE name = 'Gym'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert_eq!(gym, ("Amenities".into(), "Floating".into(), 1_764_687_271_000, 4000));
    let sqft: String = server.db().query_row("SELECT data FROM events WHERE name = 'B-202'", [], |r| r.get(0)).unwrap();
    assert_eq!(sqft, r#"{"Sqft":980}"#, "extra keys are kept as sent");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datetime_in_a_duration_field_means_time_since_the_previous_view() {
    let server = TestServer::start().await;
    for (at, _) in [("02-Dec-2025, 2:54:20 pm", 0), ("02-Dec-2025, 2:54:45 pm", 25)] {
        let (status, _) = server.post(UNIVERSAL, &json!({"ViewMode": "Home", "Duration": at, "sesh_id": "T"})).await;
        assert_eq!(status, 201);
    }
    let dwell: Vec<i64> = common::column(&server.db(), "SELECT dwell_ms FROM events ORDER BY id");
    assert_eq!(dwell[1], 25_000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flexible_events_and_explicit_tour_boundaries() {
    let server = TestServer::start().await;
    let (status, started) = server
        .post("/api/v1/unreal/session/start", &json!({"session_start": EPOCH as f64, "customer_id": "c1", "property_id": "p1", "device_type": "Meta Quest 3"}))
        .await;
    assert_eq!(status, 201, "{started}");
    let uuid = started["session_id"].as_str().unwrap().to_string();
    for body in [
        json!({"event_type": "NavBar_Click", "Menu_Item": "Amenities", "timestamp": "1764540726"}),
        json!({"event_type": "Floor_Selected", "floor_number": 3, "building_id": "tower_a", "session_id": uuid}),
        json!({"event_type": "Button_Press", "button_name": "Floor_Select", "floor_number": 3}),
    ] {
        let (status, answer) = server.post("/api/v1/unreal/event", &body).await;
        assert_eq!(status, 201, "{body} -> {answer}");
        assert_eq!(answer["event_type"], body["event_type"]);
        assert_eq!(answer["session_id"], uuid.as_str(), "attributed to the device's open tour");
    }
    let (status, answer) = server.post("/api/v1/unreal/event", &json!({"Menu_Item": "x"})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "event_type");
    let kept: String = server.db().query_row("SELECT data FROM events WHERE event_type = 'Floor_Selected'", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, r#"{"building_id":"tower_a","floor_number":3}"#);

    let (status, ended) = server.post("/api/v1/unreal/session/end", &json!({"session_id": uuid, "session_end": EPOCH + 600})).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["duration_seconds"], 600);
    let (_, answer) = server.get(&format!("/api/v1/unreal/session/{uuid}/status")).await;
    assert_eq!((answer["status"].as_str(), answer["customer_id"].as_str()), (Some("completed"), Some("c1")));
    let (status, _) = server.post("/api/v1/unreal/session/end", &json!({"session_end": EPOCH})).await;
    assert_eq!(status, 422);
    let (status, answer) = server.get("/api/v1/unreal/session/unknown-id/status").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("not_found")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn route_aliases_reach_the_same_handlers() {
    let server = TestServer::start().await;
    let (status, _) = server.post("/api/v1/unreal/sessions", &json!({"View": "Home", "TotalDuration": "0:02"})).await;
    assert_eq!(status, 201);
    let (status, _) = server.post("/api/v1/unreal/events", &json!({"event_type": "gaze", "timestamp": EPOCH, "session_id": "s"})).await;
    assert_eq!(status, 202);
    let (status, answer) = server.post("/api/v1/unreal/batch", &json!({"session_id": "s", "sent_at": EPOCH, "events": []})).await;
    assert_eq!((status, answer["total_events"].as_i64(), answer["success_rate"].as_f64()), (202, Some(0), Some(0.0)));
    let (status, answer) = server.get("/api/v1/nope").await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_FOUND")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_info_health_and_docs() {
    let server = TestServer::start().await;
    let (status, info) = server.get("/").await;
    assert_eq!((status, info["status"].as_str()), (200, Some("running")));
    let (status, health) = server.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["facts"]["journal_mode"], "wal");
    assert!(health["facts"]["free_disk_bytes"].as_u64().unwrap() > 0);
    let probe: String = server.db().query_row("SELECT value FROM meta WHERE key = 'health_probe'", [], |r| r.get(0)).unwrap();
    assert!(probe.parse::<i64>().unwrap() > 0, "the health check really wrote");
    let (status, spec) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/api/v1/unreal/session"]["post"].is_object());
    let docs = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/openapi.json") && !html.contains("https://"), "the docs page works offline");
    server.stop().await;
}
