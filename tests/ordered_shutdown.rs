//! SIGTERM while headsets are uploading: the appliance stops taking requests, answers those in
//! flight, drains the writer and exits 0 within a few seconds — and every upload it answered
//! with a 2xx is in the file.
#![cfg(unix)]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, serve_command, Appliance};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_keeps_every_acknowledged_upload_and_exits_cleanly() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut appliance = Appliance::spawn(serve_command(data_dir.path(), port).args(["--log", "warn"]).stdout(Stdio::null()).stderr(Stdio::null()));
    appliance.wait_until_healthy(port, Duration::from_secs(20));

    // 32 headsets upload as fast as they are answered, each upload naming a unique view.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = format!("http://127.0.0.1:{port}/api/v1/unreal/session");
    let mut headsets = Vec::new();
    for headset in 0..32 {
        let (url, acknowledged) = (url.clone(), acknowledged.clone());
        headsets.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let started = Instant::now();
            for n in 0.. {
                let view = format!("view-{headset}-{n}");
                let sent = client
                    .post(&url)
                    .header("x-device-key", format!("headset-{headset}"))
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"View": "{view}", "TotalDuration": "0:02"}}"#))
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status().is_success() => acknowledged.lock().unwrap().push(view),
                    Ok(answer) => assert_eq!(answer.status().as_u16(), 503, "only 2xx or 503 while stopping"),
                    // The listener is closed: the appliance has stopped taking requests.
                    Err(_) => break,
                }
                assert!(started.elapsed() < Duration::from_secs(30), "the appliance never stopped taking requests");
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acknowledged_before_stop = acknowledged.lock().unwrap().len();
    assert!(acknowledged_before_stop > 100, "the load ran: {acknowledged_before_stop} uploads acknowledged");
    appliance.terminate();
    let signalled = Instant::now();
    let exit = tokio::task::spawn_blocking(move || appliance.exit_within(Duration::from_secs(10))).await.unwrap();
    let stopped_in = signalled.elapsed();
    for headset in headsets {
        headset.await.unwrap();
    }
    let exit = exit.expect("the appliance exits within 10 s of SIGTERM under load");
    assert!(exit.success(), "SIGTERM is a clean stop, got {exit:?}");
    assert!(stopped_in < Duration::from_secs(5), "stopped in {stopped_in:?}");

    let db = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let stored: std::collections::HashSet<String> = common::column(&db, "SELECT name FROM events WHERE kind = 'view'").into_iter().collect();
    let acknowledged = acknowledged.lock().unwrap();
    let missing: Vec<&String> = acknowledged.iter().filter(|view| !stored.contains(*view)).collect();
    assert!(missing.is_empty(), "{} of {} acknowledged uploads are not in the file, e.g. {:?}", missing.len(), acknowledged.len(), &missing[..missing.len().min(5)]);
    let wal = std::fs::metadata(data_dir.path().join("nexero.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the WAL is checkpointed at the end of an ordered shutdown");
}
