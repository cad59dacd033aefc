//! Resends are recognised across tours and addresses: an `Idempotency-Key` for the resend window
//! whatever tour or address the resend arrives in, a body's own identity (its `Datetime`, an
//! event id) for the same headset; the same key with another body is refused naming the header.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{TestServer, UNIVERSAL};
use serde_json::json;

const TRACKING: &str = "/api/v1/unreal/tracking/event";

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_is_recognised_after_a_summary_a_restart_and_a_new_address() {
    let server = TestServer::start().await;
    let view = json!({"View": "Kitchen", "TotalDuration": "0:07"});
    let key = [("idempotency-key", "queued-upload-1")];
    let (status, first) = server.post_with(&server.client, UNIVERSAL, &view, &key).await;
    assert_eq!((status, first["duplicate"].as_bool()), (201, Some(false)), "{first}");

    // The headset's summary ends that tour; its queue replays the upload: still one event.
    let summary = json!({"session_id": "T-1", "session_start": "1764687000", "session_end": "1764687300"});
    assert_eq!(server.post(UNIVERSAL, &summary).await.0, 201);
    let (status, again) = server.post_with(&server.client, UNIVERSAL, &view, &key).await;
    assert_eq!((status, again["duplicate"].as_bool()), (201, Some(true)), "{again}");

    // It restarts (startup packet, a new tour) and replays again.
    assert_eq!(server.post_raw(UNIVERSAL, "").await.0, 201);
    let (_, again) = server.post_with(&server.client, UNIVERSAL, &view, &key).await;
    assert_eq!(again["duplicate"], true, "{again}");

    // DHCP gave it another address and it sends no device key.
    let moved = reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).build().unwrap();
    let (_, again) = server.post_with(&moved, UNIVERSAL, &view, &key).await;
    assert_eq!(again["duplicate"], true, "{again}");

    assert_eq!(server.count("SELECT count(*) FROM events WHERE name = 'Kitchen'"), 1);
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'duplicate'"), 3, "every resend is kept as such");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_another_body_is_refused_naming_the_header() {
    let server = TestServer::start().await;
    let key = [("idempotency-key", "k-7")];
    assert_eq!(server.post_with(&server.client, UNIVERSAL, &json!({"View": "A", "TotalDuration": "0:01"}), &key).await.0, 201);
    let (status, answer) = server.post_with(&server.client, UNIVERSAL, &json!({"View": "B", "TotalDuration": "0:01"}), &key).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["errors"][0]["field"], "Idempotency-Key", "{answer}");
    assert_eq!(server.count("SELECT count(*) FROM events WHERE name = 'B'"), 0, "nothing stored");
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'rejected' AND status = 422"), 1, "the body is kept");

    // Keys in another order are the same body: a resend, not a conflict.
    let (status, answer) = server.post_with(&server.client, UNIVERSAL, &json!({"TotalDuration": "0:01", "View": "A"}), &key).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (201, Some(true)), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_body_is_recognised_across_the_tours_of_its_headset() {
    let server = TestServer::start().await;
    let device = [("x-device-key", "headset-9")];
    let poi = json!({"POI": "Gym", "Click_Source": "Floating", "Castegory": "Amenities", "Datetime": "02-Dec-2025, 2:54:31 pm"});
    assert_eq!(server.post_with(&server.client, UNIVERSAL, &poi, &device).await.0, 201);
    // A startup packet ends the tour; the replayed POI lands in the next one: still one event.
    assert_eq!(server.post_with(&server.client, UNIVERSAL, &json!({}), &device).await.0, 201);
    let (status, answer) = server.post_with(&server.client, UNIVERSAL, &poi, &device).await;
    assert_eq!((status, answer["duplicate"].as_bool()), (201, Some(true)), "{answer}");
    // Another headset's identical body is its own event.
    assert_eq!(server.post_with(&server.client, UNIVERSAL, &poi, &[("x-device-key", "headset-10")]).await.0, 201);
    assert_eq!(server.count("SELECT count(*) FROM events WHERE name = 'Gym'"), 2);

    // A tracking event resent with its keys in another order (sent as raw text): one event.
    let event = r#"{"event_type": "gaze", "timestamp": 1764687252.5, "zone_name": "kitchen", "session_id": "T-9"}"#;
    let reordered = r#"{"session_id":"T-9","zone_name":"kitchen","timestamp":1764687252.5,"event_type":"gaze"}"#;
    for (body, duplicate) in [(event, false), (reordered, true)] {
        let answer = server.client.post(server.url(TRACKING)).header("x-device-key", "headset-9").body(body).send().await.unwrap();
        assert_eq!(answer.status(), 202);
        let answer: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(answer["duplicate"].as_bool(), Some(duplicate), "{answer}");
    }
    assert_eq!(server.count("SELECT count(*) FROM events WHERE kind = 'tracking'"), 1);
    server.stop().await;
}
