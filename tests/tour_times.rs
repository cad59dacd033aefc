//! A tour's times are never invented and never negative: a summary whose times cannot be used
//! takes what the appliance observed of the headset's open tour (and says so), and with no tour
//! to observe it is refused naming the fields, its body kept. A tour keeps the headset's id for
//! its whole life; look-ups ignore letter case; a heartbeat never revives an ended tour.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

fn unix_seconds(offset_secs: i64) -> String {
    (chrono::Utc::now().timestamp() + offset_secs).to_string()
}

async fn open_tour(server: &TestServer, device: &str) {
    let (status, _) = server
        .post_with(&server.client, UNIVERSAL, &json!({"View": "Lobby", "TotalDuration": "0:05"}), &[("x-device-key", device)])
        .await;
    assert_eq!(status, 201);
}

async fn summary(server: &TestServer, device: &str, body: Value) -> (u16, Value) {
    server.post_with(&server.client, UNIVERSAL, &body, &[("x-device-key", device)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_summary_without_a_usable_pair_of_times_and_no_open_tour_is_refused_naming_the_fields() {
    let server = TestServer::start().await;
    for body in [
        json!({"session_end": "1728234890"}),
        json!({"session_start": "1728234890"}),
        json!({"session_start": "invalid", "session_end": "invalid"}),
    ] {
        let (status, answer) = summary(&server, "lonely-headset", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {answer}");
        let fields: Vec<&str> = answer["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["session_start", "session_end"], "{answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "session_start"]), "FastAPI's shape: {answer}");
    }
    assert_eq!(server.count("SELECT count(*) FROM tour_sessions"), 0, "no tour is made up");
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'rejected' AND status = 422"), 3, "the bodies are kept");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_sided_summary_closes_the_open_tour_with_what_was_observed_and_says_so() {
    let server = TestServer::start().await;

    // Only an end, plausible for the tour: the tour ends then and starts at its first upload.
    open_tour(&server, "h1").await;
    let (status, answer) = summary(&server, "h1", json!({"session_end": unix_seconds(2)})).await;
    assert_eq!(status, 201, "{answer}");
    assert!(answer["duration_seconds"].as_i64().unwrap() >= 0, "{answer}");
    let warnings = answer["warnings"].to_string();
    assert!(warnings.contains("session_start"), "the answer says which time was not the headset's: {answer}");
    let (_, status_answer) = server.get(&format!("/api/v1/unreal/session/{}/status", answer["session_id"].as_str().unwrap())).await;
    assert!(status_answer["time_warnings"].as_str().unwrap().contains("session_start"), "shown with the tour later: {status_answer}");

    // An end in 2024 is not plausible for a tour that started now: the arrival is used.
    open_tour(&server, "h2").await;
    let (status, answer) = summary(&server, "h2", json!({"session_end": "1728234890"})).await;
    assert_eq!(status, 201, "{answer}");
    let duration = answer["duration_seconds"].as_i64().unwrap();
    assert!((0..60).contains(&duration), "observed, not invented: {answer}");
    assert!(answer["warnings"].to_string().contains("session_end"), "{answer}");

    // Only a start, long before the tour: not believed either.
    open_tour(&server, "h3").await;
    let (status, answer) = summary(&server, "h3", json!({"session_start": "1728234890"})).await;
    assert_eq!(status, 201);
    assert!((0..60).contains(&answer["duration_seconds"].as_i64().unwrap()), "not hundreds of days: {answer}");

    // Both unreadable: the observed tour, with warnings naming both.
    open_tour(&server, "h4").await;
    let (status, answer) = summary(&server, "h4", json!({"session_start": "invalid", "session_end": "invalid"})).await;
    assert_eq!(status, 201);
    let warnings = answer["warnings"].to_string();
    assert!(warnings.contains("session_start") && warnings.contains("session_end"), "{answer}");

    assert_eq!(server.count("SELECT count(*) FROM tour_sessions WHERE status = 'completed'"), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tour_keeps_the_headsets_id_and_is_found_by_either_id_in_any_case() {
    let server = TestServer::start().await;
    let start = json!({"session_id": "HEADSET-GUID-42", "session_start": unix_seconds(-60)});
    let (status, started) = server.post("/api/v1/unreal/session/start", &start).await;
    assert_eq!(status, 201, "{started}");
    let uuid = started["session_id"].as_str().unwrap().to_owned();

    let (status, ended) = server.post("/api/v1/unreal/session/end", &json!({"session_id": uuid, "session_end": unix_seconds(0)})).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["external_session_id"], "HEADSET-GUID-42", "ending by our UUID keeps the headset's id");

    for reference in ["HEADSET-GUID-42", "headset-guid-42", uuid.as_str(), &uuid.to_uppercase()] {
        let (_, answer) = server.get(&format!("/api/v1/unreal/session/{reference}/status")).await;
        assert_eq!((answer["status"].as_str(), answer["uuid"].as_str()), (Some("completed"), Some(uuid.as_str())), "{reference}: {answer}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_to_an_ended_tour_says_so_and_changes_nothing() {
    let server = TestServer::start().await;
    let (_, started) = server.post("/api/v1/unreal/session/start", &json!({"session_id": "HB-1", "session_start": unix_seconds(-30)})).await;
    let (status, answer) = server.post("/api/v1/unreal/session/HB-1/heartbeat", &json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("alive")), "{answer}");
    let (status, _) = server.post("/api/v1/unreal/session/end", &json!({"session_id": "HB-1", "session_end": unix_seconds(0)})).await;
    assert_eq!(status, 200);
    let last_event_at = server.count("SELECT last_event_at FROM tour_sessions WHERE external_id = 'HB-1'");

    let (status, answer) = server.post("/api/v1/unreal/heartbeat/hb-1", &json!({})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("completed")), "not \"alive\": {answer}");
    assert_eq!(server.count("SELECT last_event_at FROM tour_sessions WHERE external_id = 'HB-1'"), last_event_at);
    assert_eq!(started["external_session_id"], "HB-1");
    server.stop().await;
}
