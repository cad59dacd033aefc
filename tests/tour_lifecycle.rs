//! How tours open and close without session ids: per device, until a summary, a startup packet
//! or the idle timeout.

mod common;

use std::time::Duration;

use common::{TestServer, UNIVERSAL};
use serde_json::json;

async fn post_as(server: &TestServer, device: &str, body: serde_json::Value) -> serde_json::Value {
    let response = server.client.post(server.url(UNIVERSAL)).header("X-Device-Key", device).body(body.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_tour_times_out_and_the_next_event_opens_a_new_one() {
    let server = TestServer::start_with(|o| o.session_idle_timeout_secs = Some(10)).await;
    let first = post_as(&server, "quest-1", json!({"View": "Home", "TotalDuration": "0:02"})).await;
    let tour = first["session_id"].as_str().unwrap().to_string();
    let (_, status) = server.get(&format!("/api/v1/unreal/session/{tour}/status")).await;
    assert_eq!(status["status"], "active");
    assert!(status["duration_so_far"].is_number());

    // The writer sweeps idle tours every few seconds; wait past the timeout plus one sweep.
    let mut closed = serde_json::Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        closed = server.get(&format!("/api/v1/unreal/session/{tour}/status")).await.1;
        if closed["status"] != "active" {
            break;
        }
    }
    assert_eq!(closed["status"], "timed_out", "{closed}");
    assert!(closed["ended_at"].is_string());

    let next = post_as(&server, "quest-1", json!({"View": "Home", "TotalDuration": "0:03"})).await;
    assert_ne!(next["session_id"], first["session_id"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_startup_packet_ends_the_previous_tour_and_devices_are_kept_apart() {
    let server = TestServer::start().await;
    let a1 = post_as(&server, "quest-a", json!({"View": "Home", "TotalDuration": "0:02"})).await;
    let b1 = post_as(&server, "quest-b", json!({"View": "Home", "TotalDuration": "0:02"})).await;
    assert_ne!(a1["session_id"], b1["session_id"], "each headset has its own tour");
    let a2 = post_as(&server, "quest-a", json!({"POI": "Gym", "Parent": "Amenities", "POI_Duration": "0:04"})).await;
    assert_eq!(a1["session_id"], a2["session_id"]);

    let ignored = post_as(&server, "quest-a", json!({})).await;
    assert_eq!(ignored["status"], "ignored");
    let response = server.client.post(server.url(UNIVERSAL)).header("X-Device-Key", "quest-a").send().await.unwrap();
    assert_eq!(response.status(), 201, "an empty body is a startup packet as well");
    let (_, status) = server.get(&format!("/api/v1/unreal/session/{}/status", a1["session_id"].as_str().unwrap())).await;
    assert_eq!(status["status"], "abandoned");
    let a3 = post_as(&server, "quest-a", json!({"View": "Home", "TotalDuration": "0:02"})).await;
    assert_ne!(a3["session_id"], a1["session_id"]);
    let b2 = post_as(&server, "quest-b", json!({"View": "Pool", "TotalDuration": "0:05"})).await;
    assert_eq!(b2["session_id"], b1["session_id"], "another headset's restart does not touch this tour");

    // Without a device header, the client address identifies the headset.
    let (_, n1) = server.post(UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:01"})).await;
    let (_, n2) = server.post(UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:01"})).await;
    assert_eq!(n1["session_id"], n2["session_id"]);
    let device: String = server
        .db()
        .query_row("SELECT device_key FROM tour_sessions WHERE uuid = ?1", [n1["session_id"].as_str().unwrap()], |r| r.get(0))
        .unwrap();
    assert_eq!(device, "127.0.0.1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tour_opened_by_a_dwell_starts_when_that_dwell_began() {
    let server = TestServer::start().await;
    let before = chrono::Utc::now().timestamp_millis();
    let answer = post_as(&server, "quest-z", json!({"View": "Lobby", "TotalDuration": "2:00"})).await;
    let started: i64 = server
        .db()
        .query_row("SELECT started_at FROM tour_sessions WHERE uuid = ?1", [answer["session_id"].as_str().unwrap()], |r| r.get(0))
        .unwrap();
    assert!(started <= before - 119_000 && started >= before - 125_000, "{started} vs {before}");
    server.stop().await;
}
