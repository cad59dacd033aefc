//! Bad input always gets a clear 4xx naming the field and reason, is kept in the inbox, and loses
//! nothing already stored; resends never create duplicates; storage trouble is a 503, never a 2xx.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

const BATCH: &str = "/api/v1/unreal/tracking/batch";

/// A tour's batch: its events' times are the tour's own, so two tours never share an event (a
/// headset's event seen again, in any tour, is a resend).
fn batch_of(n: usize, session: &str) -> Value {
    let tour = session.bytes().fold(0u64, |hash, b| hash.wrapping_mul(31).wrapping_add(u64::from(b))) % 100_000;
    let start = 1_727_653_800.0 + tour as f64 * 1_000.0;
    let events: Vec<Value> =
        (0..n).map(|i| json!({"event_type": "gaze", "timestamp": start + i as f64 * 0.5, "zone_name": "kitchen", "dwell_time_ms": 700})).collect();
    json!({"session_id": session, "sent_at": 1_727_653_900.0, "events": events})
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_400s_that_say_where_and_are_kept() {
    let server = TestServer::start().await;
    let (status, _) = server.post(UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:02"})).await;
    assert_eq!(status, 201);

    let (status, answer) = server.post_raw(UNIVERSAL, "{\n\t\"View\": \"Home\",\n\t\"TotalDuration\": }").await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("line 3"), "{answer}");

    let (status, answer) = server.post_raw(UNIVERSAL, b"{\"View\": \"Ho\xffme\", \"TotalDuration\": \"0:01\"}".to_vec()).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("UTF-8"), "{answer}");

    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, answer) = server.post_raw(UNIVERSAL, format!("{{\"event_type\": \"x\", \"nested\": {deep}}}")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("recursion"), "{answer}");

    let (status, answer) = server.post(UNIVERSAL, &json!(["not", "an", "object"])).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("JSON object"), "{answer}");

    let (status, answer) = server.post(UNIVERSAL, &json!({"View": ["Home"], "TotalDuration": "0:02"})).await;
    assert_eq!((status, answer["errors"][0]["field"].as_str()), (400, Some("View")), "{answer}");

    // Every refused body is in the inbox, byte for byte, and the earlier event is untouched.
    let kept: Vec<Vec<u8>> = common::column(&server.db(), "SELECT body FROM inbox WHERE outcome = 'rejected' ORDER BY id");
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[1], b"{\"View\": \"Ho\xffme\", \"TotalDuration\": \"0:01\"}".to_vec());
    assert_eq!(server.count("SELECT count(*) FROM events"), 1);
    let (_, health) = server.get("/health").await;
    assert_eq!(health["facts"]["unrecognised_uploads"], 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_endpoints_answer_422_with_field_paths() {
    let server = TestServer::start().await;
    let (status, answer) = server.post("/api/v1/unreal/tracking/event", &json!({"event_type": "gaze", "timestamp": "noon"})).await;
    assert_eq!(status, 422);
    assert_eq!(answer["errors"][0]["field"], "timestamp");
    let (status, answer) = server.post("/api/v1/unreal/tracking/event", &json!({"event_type": 7, "timestamp": 1.0})).await;
    assert_eq!((status, answer["errors"][0]["field"].as_str()), (422, Some("event_type")), "{answer}");
    let (status, answer) = server.post(BATCH, &json!({"session_id": "s", "events": "many"})).await;
    assert_eq!((status, answer["errors"][0]["field"].as_str()), (422, Some("events")), "{answer}");

    // One bad event in a batch: the rest are stored and the counts are true.
    let mut body = batch_of(4, "s-partial");
    body["events"][2]["position"] = json!({"x": "left", "y": 0, "z": 0});
    let (status, answer) = server.post(BATCH, &body).await;
    assert_eq!(status, 202);
    assert_eq!((answer["total_events"].as_i64(), answer["processed"].as_i64(), answer["failed"].as_i64()), (Some(4), Some(3), Some(1)));
    assert_eq!(answer["success_rate"].as_f64(), Some(75.0));
    assert_eq!(answer["errors"][0]["field"], "events[2].position.x");
    assert_eq!(server.count("SELECT count(*) FROM events"), 3);

    // Nothing valid at all: 422, nothing stored, the body kept.
    let mut body = batch_of(2, "s-bad");
    body["events"] = json!([{"event_type": "gaze"}, {"timestamp": 1.0}]);
    let (status, answer) = server.post(BATCH, &body).await;
    assert_eq!(status, 422, "{answer}");
    let fields: Vec<&str> = answer["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["events[0]", "events[1]"]);
    assert_eq!(server.count("SELECT count(*) FROM events"), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413_but_a_whole_tour_batch_fits() {
    let server = TestServer::start_with(|o| o.max_body_bytes = Some(1024 * 1024)).await;
    let big = batch_of(5000, "s-big");
    assert!(big.to_string().len() < 1024 * 1024);
    let (status, answer) = server.post(BATCH, &big).await;
    assert_eq!((status, answer["processed"].as_i64()), (202, Some(5000)), "{answer}");
    let huge = format!("{{\"event_type\": \"x\", \"blob\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (status, answer) = server.post_raw("/api/v1/unreal/event", huge.clone()).await;
    assert_eq!((status, answer["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{answer}");
    assert_eq!(server.count("SELECT count(*) FROM events"), 5000);
    // The refusal is in the inbox with the start of what was sent, like any refused upload.
    let (kept, detail): (Vec<u8>, String) = server
        .db()
        .query_row("SELECT body, detail FROM inbox WHERE status = 413 AND outcome = 'rejected'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((kept.len(), &kept[..20]), (64 * 1024, &huge.as_bytes()[..20]));
    assert!(detail.contains(&format!("{} bytes sent", huge.len())), "{detail}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resends_do_not_create_duplicates() {
    let server = TestServer::start().await;
    let body = batch_of(100, "s-retry");
    let (_, first) = server.post(BATCH, &body).await;
    let (status, again) = server.post(BATCH, &body).await;
    assert_eq!(status, 202);
    assert_eq!((first["stored"].as_i64(), again["stored"].as_i64(), again["duplicates"].as_i64()), (Some(100), Some(0), Some(100)));
    assert_eq!(again["processed"], 100, "a resent batch is fully processed");
    assert_eq!(server.count("SELECT count(*) FROM events"), 100);
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'duplicate'"), 1);

    let event = json!({"event_type": "zone_enter", "timestamp": 1_727_653_999.25, "session_id": "s-retry", "zone_name": "hall"});
    for _ in 0..3 {
        assert_eq!(server.post("/api/v1/unreal/tracking/event", &event).await.0, 202);
    }
    let timed_poi = json!({"POI": "Gym", "Click_Source": "Floating", "Castegory": "Amenities", "Datetime": "02-Dec-2025, 2:54:31 pm"});
    for _ in 0..2 {
        assert_eq!(server.post(UNIVERSAL, &timed_poi).await.0, 201);
    }
    for _ in 0..2 {
        let response = server
            .client
            .post(server.url(UNIVERSAL))
            .header("Idempotency-Key", "view-42")
            .body(json!({"View": "Home", "TotalDuration": "0:03"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Identical untimed bodies are distinct events (real headsets repeat "0:01" POIs every second).
    for _ in 0..2 {
        assert_eq!(server.post(UNIVERSAL, &json!({"POI": "", "Parent": "Location", "POI_Duration": "0:01"})).await.0, 201);
    }
    assert_eq!(server.count("SELECT count(*) FROM events"), 100 + 1 + 1 + 1 + 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_trouble_is_a_503_with_retry_after_and_nothing_is_claimed() {
    // A free-space floor above what any disk has: every write must be refused honestly.
    let data_dir = tempfile::tempdir().unwrap();
    let settings = common::settings(data_dir.path(), |o| o.min_free_disk_mb = Some(u64::MAX / 2_000_000));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(nexero::launch(settings, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut response = None;
    for _ in 0..100 {
        if let Ok(r) = client.post(format!("{base}{UNIVERSAL}")).body(r#"{"View":"Home","TotalDuration":"0:02"}"#).send().await {
            response = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let response = response.expect("server answered");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "STORAGE_UNAVAILABLE");
    assert!(answer["message"].as_str().unwrap().contains("disk"), "{answer}");
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let stored: i64 = conn.query_row("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM inbox)", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_a_503_with_retry_after_and_a_retry_stores_everything_once() {
    // One upload may wait for the writer; a burst of tour-end batches must overflow that queue.
    let server = TestServer::start_with(|o| o.max_queued_uploads = Some(1)).await;
    const UPLOADS: usize = 24;
    const EVENTS: usize = 2000;
    let bodies: Vec<String> = (0..UPLOADS).map(|i| batch_of(EVENTS, &format!("s-burst-{i}")).to_string()).collect();
    let send = |body: String| {
        let request = server.client.post(server.url(BATCH)).header("content-type", "application/json").body(body);
        async move {
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (status, retry_after, response.json::<Value>().await.unwrap())
        }
    };
    let burst: Vec<_> = bodies.iter().cloned().map(|body| tokio::spawn(send(body))).collect();
    let mut answers = Vec::new();
    for upload in burst {
        answers.push(upload.await.unwrap());
    }

    let accepted = answers.iter().filter(|(status, ..)| *status == 202).count();
    let refused: Vec<usize> = (0..UPLOADS).filter(|i| answers[*i].0 == 503).collect();
    assert_eq!(accepted + refused.len(), UPLOADS, "only 202 or 503: {answers:?}");
    assert!(!refused.is_empty(), "a queue of one must overflow under {UPLOADS} concurrent batches");
    for i in &refused {
        let (_, retry_after, answer) = &answers[*i];
        assert_eq!((retry_after.as_deref(), answer["code"].as_str()), (Some("1"), Some("OVERLOADED")), "{answer}");
    }
    // Nothing was claimed for the refused uploads...
    assert_eq!(server.count("SELECT count(*) FROM events"), (accepted * EVENTS) as i64);
    assert_eq!(server.count("SELECT count(*) FROM inbox"), accepted as i64);
    // ...and a headset that retries them, as told, ends with every event stored once.
    for i in refused {
        let mut tries = 0;
        loop {
            let (status, ..) = send(bodies[i].clone()).await;
            if status == 202 {
                break;
            }
            tries += 1;
            assert!(tries < 50 && status == 503, "retry answered {status}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(server.count("SELECT count(*) FROM events"), (UPLOADS * EVENTS) as i64);
    assert_eq!(server.count("SELECT count(DISTINCT session_id) FROM events"), UPLOADS as i64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_database_is_refused_with_a_clear_message() {
    let data_dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = nexero::launch(common::settings(data_dir.path(), |_| {}), listener, async {}).await.unwrap_err();
    assert_eq!(error.exit_code(), 4);
    assert!(error.to_string().contains("newer Nexero"), "{error}");
}
