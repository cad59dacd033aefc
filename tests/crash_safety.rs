//! Kill -9 mid-stream: every event that got a 2xx must be in the file after a restart, once.
//! Spawns the real binary (the release build when NEXERO_BIN points at it, as the test command does).
#![cfg(unix)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, Appliance};
use serde_json::json;

/// How long a (re)started appliance may take to answer /health.
const START: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut child = Appliance::serve(data_dir.path(), port);
    child.wait_until_healthy(port, START);

    const CLIENTS: usize = 8;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            // Bounded: at most 5,000 events per client, and it stops at the first failure.
            for n in 0..5_000 {
                let name = format!("c{c}-{n}");
                let body = json!({"POI": name, "POI_Source": "Floating", "Parent": "Amenities", "POI_Duration": "0:01"});
                let sent = client
                    .post(format!("{base}/api/v1/unreal/session"))
                    .header("X-Device-Key", format!("headset-{c}"))
                    .header("Idempotency-Key", &name)
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acked.lock().unwrap().push(name),
                    _ => return,
                }
            }
        }));
    }
    // Let the clients stream, then kill without warning while requests are in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.0.kill().expect("SIGKILL delivered");
    child.0.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "the clients got {} answers before the kill", acked.len());

    let mut child = Appliance::serve(data_dir.path(), port);
    child.wait_until_healthy(port, START);
    let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let mut stored = std::collections::HashMap::<String, i64>::new();
    let mut rows = conn.prepare("SELECT name, count(*) FROM events WHERE kind = 'poi' GROUP BY name").unwrap();
    for row in rows.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).unwrap() {
        let (name, count) = row.unwrap();
        stored.insert(name, count);
    }
    let missing: Vec<&String> = acked.iter().filter(|n| !stored.contains_key(*n)).collect();
    assert!(missing.is_empty(), "{} acknowledged events lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let doubled: Vec<(&String, &i64)> = stored.iter().filter(|(_, c)| **c != 1).collect();
    assert!(doubled.is_empty(), "events stored more than once: {doubled:?}");
    let inbox: i64 = conn.query_row("SELECT count(*) FROM inbox", [], |r| r.get(0)).unwrap();
    assert!(inbox >= acked.len() as i64);

    // Liveness after the crash: a resend of an acknowledged event is recognised.
    let sender = acked[0].trim_start_matches('c').split('-').next().unwrap();
    let resend = client
        .post(format!("{base}/api/v1/unreal/session"))
        .header("X-Device-Key", format!("headset-{sender}"))
        .header("Idempotency-Key", &acked[0])
        .body(json!({"POI": acked[0], "POI_Source": "Floating", "Parent": "Amenities", "POI_Duration": "0:01"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 201);
    let count: i64 = conn.query_row("SELECT count(*) FROM events WHERE name = ?1", [&acked[0]], |r| r.get(0)).unwrap();
    assert_eq!(count, 1);
    child.terminate();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "graceful stop after SIGTERM: {status}");
}
