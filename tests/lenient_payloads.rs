//! Unreal's own spelling is taken, as the old backend's models took it: keys match ignoring case,
//! `_`, `-` and spaces at every depth (`{"X": …}`, `{"Pitch": …}`, `Session-ID`), and a number
//! may come as a string holding one (`"2500"`, `"1.5"`), as VaRest sends it. Text that is not a
//! number is still refused, naming the field's path; a duration that cannot be read is stored,
//! flagged, and named in the answer.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

const EVENT: &str = "/api/v1/unreal/tracking/event";
const BATCH: &str = "/api/v1/unreal/tracking/batch";
const EPOCH: f64 = 1_727_653_800.0;

type Pose = (f64, f64, f64, f64, f64, f64);

/// Position and rotation of the stored tracking events of `event_type`, in order.
fn poses(server: &TestServer, event_type: &str) -> Vec<Pose> {
    let db = server.db();
    let mut statement = db
        .prepare("SELECT pos_x, pos_y, pos_z, rot_pitch, rot_yaw, rot_roll FROM events WHERE event_type = ?1 ORDER BY id")
        .unwrap();
    let rows = statement.query_map([event_type], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)));
    rows.unwrap().collect::<Result<_, _>>().unwrap()
}

fn fields(answer: &Value) -> Vec<&str> {
    answer["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn fvector_and_frotator_casing_in_tracking_events_and_batches() {
    let server = TestServer::start().await;
    let event = json!({"Event_Type": "zone_enter", "Timestamp": EPOCH + 0.5, "Session_Id": "s-unreal", "Zone_Name": "kitchen",
                       "Position": {"X": 10.5, "Y": 2.0, "Z": 15.3}, "Rotation": {"Pitch": 0.0, "Yaw": 90.0, "Roll": -1.5}});
    let (status, answer) = server.post(EVENT, &event).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(poses(&server, "zone_enter"), [(10.5, 2.0, 15.3, 0.0, 90.0, -1.5)]);

    let events: Vec<Value> = (0..3)
        .map(|i| json!({"EventType": "gaze", "TimeStamp": EPOCH + i as f64, "GazeTarget": "window", "DwellTimeMs": 700,
                        "Position": {"X": i, "Y": 1.25, "Z": -2}, "Rotation": {"Pitch": 5, "Yaw": 180.5, "Roll": i}}))
        .collect();
    let (status, answer) = server.post(BATCH, &json!({"SessionId": "s-unreal", "SentAt": EPOCH + 30.0, "Events": events})).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!((answer["total_events"].as_i64(), answer["processed"].as_i64(), answer["failed"].as_i64()), (Some(3), Some(3), Some(0)));
    let expected: Vec<Pose> = (0..3).map(|i| (i as f64, 1.25, -2.0, 5.0, 180.5, i as f64)).collect();
    assert_eq!(poses(&server, "gaze"), expected);
    let kept: Vec<(String, i64, String)> = {
        let db = server.db();
        let mut statement = db
            .prepare("SELECT gaze_target, dwell_ms, (SELECT external_id FROM tour_sessions t WHERE t.id = session_id)
                      FROM events WHERE event_type = 'gaze' ORDER BY id")
            .unwrap();
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>();
        rows.unwrap()
    };
    assert_eq!(kept, vec![("window".to_string(), 700, "s-unreal".to_string()); 3]);
    assert_eq!(server.count("SELECT count(DISTINCT session_id) FROM events"), 1, "one tour: the envelope's SessionId was read");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_sent_as_strings_are_stored_as_numbers() {
    let server = TestServer::start().await;
    let event = json!({"event_type": "gaze", "timestamp": "1727653801.25", "session_id": "s-text", "dwell_time_ms": "2500",
                       "position": {"x": "1.5", "y": " 2 ", "z": "-3"}, "rotation": {"pitch": "0", "yaw": "90.5", "roll": "1e1"}});
    let (status, answer) = server.post(EVENT, &event).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(poses(&server, "gaze"), [(1.5, 2.0, -3.0, 0.0, 90.5, 10.0)]);
    let stored: (i64, i64, String, String, String) = server
        .db()
        .query_row("SELECT dwell_ms, occurred_at, typeof(dwell_ms), typeof(pos_x), typeof(rot_roll) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(stored, (2500, 1_727_653_801_250, "integer".into(), "real".into(), "real".into()));

    // In a batch too, next to events that send real numbers.
    let (status, answer) = server
        .post(BATCH, &json!({"session_id": "s-text", "events": [
            {"event_type": "zone_enter", "timestamp": "1727653802", "dwell_time_ms": "700.4", "position": {"x": "4", "y": 5, "z": "6.5"}},
            {"event_type": "zone_enter", "timestamp": 1727653803, "dwell_time_ms": 800, "position": {"x": 7, "y": 8, "z": 9}}]}))
        .await;
    assert_eq!((status, answer["processed"].as_i64(), answer["failed"].as_i64()), (202, Some(2), Some(0)), "{answer}");
    let dwell: Vec<i64> = common::column(&server.db(), "SELECT dwell_ms FROM events WHERE event_type = 'zone_enter' ORDER BY id");
    assert_eq!(dwell, [700, 800]);
    let x: Vec<f64> = common::column(&server.db(), "SELECT pos_x FROM events WHERE event_type = 'zone_enter' ORDER BY id");
    assert_eq!(x, [4.0, 7.0]);

    // The universal endpoint: Sqft and unix seconds as text.
    let (status, answer) = server.post(UNIVERSAL, &json!({"Name": "A-101", "Sqft": "1250", "Type": "2BHK", "Datetime": "1764687271"})).await;
    assert_eq!((status, answer["data_type"].as_str()), (201, Some("unit_selection")), "{answer}");
    let at: i64 = server.db().query_row("SELECT occurred_at FROM events WHERE name = 'A-101'", [], |r| r.get(0)).unwrap();
    assert_eq!(at, 1_764_687_271_000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_that_is_not_a_number_is_refused_with_its_field_path() {
    let server = TestServer::start().await;
    let good = json!({"event_type": "gaze", "timestamp": EPOCH, "dwell_time_ms": "500"});
    let bad = json!({"event_type": "gaze", "timestamp": EPOCH + 1.0, "dwell_time_ms": "abc"});

    // Alone in a batch: 422 naming the path, nothing stored, the body kept.
    let (status, answer) = server.post(BATCH, &json!({"session_id": "s-bad", "events": [bad]})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(fields(&answer), ["events[0].dwell_time_ms"]);
    assert!(answer["message"].as_str().unwrap().contains("abc"), "{answer}");
    assert_eq!(server.count("SELECT count(*) FROM events"), 0);
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'rejected'"), 1);

    // Next to a good event: the good one is stored, the bad one named.
    let (status, answer) = server.post(BATCH, &json!({"session_id": "s-bad", "events": [bad, good]})).await;
    assert_eq!((status, answer["processed"].as_i64(), answer["failed"].as_i64()), (202, Some(1), Some(1)), "{answer}");
    assert_eq!(fields(&answer), ["events[0].dwell_time_ms"]);
    assert_eq!(server.count("SELECT count(*) FROM events"), 1);

    // Unreal's casing does not hide the path: it is named by the field's own name.
    let body = json!({"Event_Type": "gaze", "Timestamp": EPOCH, "Position": {"X": "left", "Y": "0", "Z": "0"}});
    let (status, answer) = server.post(EVENT, &body).await;
    assert_eq!((status, fields(&answer)), (422, vec!["position.x"]), "{answer}");
    for (value, field) in [(json!("NaN"), "rotation.yaw"), (json!(""), "rotation.yaw"), (json!(true), "rotation.yaw")] {
        let body = json!({"event_type": "gaze", "timestamp": EPOCH, "rotation": {"pitch": 0, "yaw": value, "roll": 0}});
        let (status, answer) = server.post(EVENT, &body).await;
        assert_eq!((status, fields(&answer)), (422, vec![field]), "{value}: {answer}");
    }
    let (status, answer) = server.post(EVENT, &json!({"event_type": "gaze", "timestamp": EPOCH, "dwell_time_ms": "-5"})).await;
    assert_eq!((status, fields(&answer)), (422, vec!["dwell_time_ms"]), "{answer}");
    assert_eq!(server.count("SELECT count(*) FROM events"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_match_ignoring_case_underscore_dash_and_space_at_every_depth() {
    let server = TestServer::start().await;
    // Top level of the universal endpoint.
    let (status, answer) =
        server.post(UNIVERSAL, &json!({"POI-Name": "Gym", "poi source": "Floating", "PARENT": "Amenities", "Poi_Duration": "0:05", "Sesh-ID": "T-1"})).await;
    assert_eq!((status, answer["data_type"].as_str(), answer["parent"].as_str()), (201, Some("poi"), Some("Amenities")), "{answer}");
    let poi: (String, String, String, i64) = server
        .db()
        .query_row("SELECT name, zone, source, dwell_ms FROM events WHERE kind = 'poi'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert_eq!(poi, ("Gym".into(), "Amenities".into(), "Floating".into(), 5000));
    let (status, answer) = server
        .post(UNIVERSAL, &json!({"Session-ID": "T-1", "SessionStart": "1727653800", "session end": "1727654100", "DURATION": "5:00"}))
        .await;
    assert_eq!((status, answer["external_session_id"].as_str(), answer["duration_seconds"].as_i64()), (201, Some("T-1"), Some(300)), "{answer}");
    let (status, answer) = server.post("/api/v1/unreal/event", &json!({"Event-Type": "NavBar_Click", "Menu_Item": "Amenities"})).await;
    assert_eq!((status, answer["event_type"].as_str()), (201, Some("NavBar_Click")), "{answer}");

    // Every depth of the typed bodies: the envelope, the event, position and rotation; metadata
    // is kept exactly as sent, its keys included.
    let batch = r#"{"session-id": "s-nested", "EVENTS": [{"event-type": "gaze", "time stamp": 1727653800, "Gaze_Target": "window",
        "ObjectName": "door", "position": {"x": 1, "Y": 2, "z": 3}, "ROTATION": {"PITCH": 4, "yaw": 5, "Roll": 6},
        "Meta-Data": {"Parent_ID": 7, "parent-id": [1, 2]}}]}"#;
    let (status, answer) = server.post_raw(BATCH, batch).await;
    assert_eq!((status, answer["processed"].as_i64()), (202, Some(1)), "{answer}");
    assert_eq!(poses(&server, "gaze"), [(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]);
    let stored: (String, String, String, String) = server
        .db()
        .query_row(
            "SELECT gaze_target, object_name, data, (SELECT external_id FROM tour_sessions t WHERE t.id = session_id)
             FROM events WHERE event_type = 'gaze'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(stored, ("window".into(), "door".into(), r#"{"Parent_ID": 7, "parent-id": [1, 2]}"#.into(), "s-nested".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_dwell_is_stored_as_sent_and_flagged() {
    let server = TestServer::start().await;
    let (status, answer) = server.post(UNIVERSAL, &json!({"View": "Lobby", "TotalDuration": "abc"})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!((answer["view"].as_str(), answer["duration"].as_str(), answer["duration_valid"].as_bool()), (Some("Lobby"), Some("abc"), Some(false)));
    let stored: (String, String, Option<i64>, Option<String>) = server
        .db()
        .query_row("SELECT kind, name, dwell_ms, dwell_text FROM events", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert_eq!(stored, ("view".into(), "Lobby".into(), None, Some("abc".into())));
    let invalid: String = server.db().query_row("SELECT dwell_invalid FROM events", [], |r| r.get(0)).unwrap();
    assert!(invalid.contains("abc"), "{invalid}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_names_an_unreadable_dwell_in_its_warnings() {
    let server = TestServer::start().await;
    let (status, answer) = server.post(UNIVERSAL, &json!({"View": "Lobby", "TotalDuration": "abc"})).await;
    assert_eq!(status, 201, "{answer}");
    let warnings: Vec<&str> = answer["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    assert_eq!(warnings.len(), 1, "{answer}");
    assert!(warnings[0].starts_with("TotalDuration: ") && warnings[0].contains("abc"), "{answer}");
    // A readable duration brings no warning.
    let (_, answer) = server.post(UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:04"})).await;
    assert!(answer["warnings"].as_array().is_none_or(Vec::is_empty), "{answer}");
    server.stop().await;
}
