//! Paths, methods and broken uploads as headsets and browsers send them: the spellings the old
//! backend took (a trailing slash, other letter case) store the upload and the inbox keeps the path
//! as called; a wrong method is a JSON 405; `/redoc` leads to the docs; an upload cut short by a
//! disconnect or a stall leaves its inbox row; a full disk makes `/health` unhealthy.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{raw_http, TestServer, UNIVERSAL};
use serde_json::{json, Value};

/// The inbox rows as (endpoint, status, outcome, body length, detail), oldest first.
fn inbox(server: &TestServer) -> Vec<(String, i64, String, usize, String)> {
    let db = server.db();
    let mut rows = db.prepare("SELECT endpoint, status, outcome, length(body), coalesce(detail, '') FROM inbox ORDER BY id").unwrap();
    rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as usize, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until the inbox has `n` rows (a refusal of a broken upload is written after the
/// connection is gone).
fn wait_for_rows(server: &TestServer, n: usize) -> Vec<(String, i64, String, usize, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = inbox(server);
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port(server: &TestServer) -> u16 {
    server.base.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_slashes_and_letter_case_store_the_upload_with_the_path_as_called() {
    let server = TestServer::start().await;
    let called = [
        ("/api/v1/unreal/session/", 201),
        ("/API/V1/Unreal/Session", 201),
        ("/api/v1/unreal/Sessions//", 201),
        ("/api/v1/unreal/tracking/Event/", 202),
    ];
    for (n, (path, expected)) in called.iter().enumerate() {
        let body = if path.contains("racking") {
            json!({"event_type": "gaze", "session_id": "s-paths", "timestamp": 1_727_653_800 + n, "zone_name": "kitchen"})
        } else {
            json!({"View": format!("view-{n}"), "TotalDuration": "0:03"})
        };
        let (status, answer) = server.post(path, &body).await;
        assert_eq!(status, *expected, "{path}: {answer}");
    }
    let rows = inbox(&server);
    let recorded: Vec<(&str, &str)> = rows.iter().map(|(endpoint, _, outcome, ..)| (endpoint.as_str(), outcome.as_str())).collect();
    let expected: Vec<(String, &str)> = called.iter().map(|(path, _)| (format!("POST {path}"), "stored")).collect();
    assert_eq!(recorded, expected.iter().map(|(e, o)| (e.as_str(), *o)).collect::<Vec<_>>());
    assert_eq!(server.count("SELECT count(*) FROM events WHERE kind = 'view'"), 3);

    // The status route and the service routes take other spellings too; ids keep their case.
    let (status, answer) = server.get("/api/v1/unreal/Session/Some-ID/Status/").await;
    assert_eq!((status, answer["session_id"].as_str(), answer["status"].as_str()), (200, Some("Some-ID"), Some("not_found")));
    assert_eq!(server.get("/Health/").await.0, 200);
    // Anything else is still a JSON 404.
    let (status, answer) = server.post("/api/v1/unreal/sessionz/", &json!({})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_FOUND")), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_is_a_json_405_and_redoc_leads_to_the_docs() {
    let server = TestServer::start().await;
    for (method, path) in [("GET", UNIVERSAL), ("GET", "/api/v1/unreal/tracking/batch/"), ("DELETE", "/health"), ("POST", "/docs")] {
        let response = server.client.request(method.parse().unwrap(), server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        assert!(allow.is_some(), "{method} {path}: a 405 names the methods allowed");
        let answer: Value = response.json().await.expect("a JSON body");
        assert_eq!(answer["code"], "METHOD_NOT_ALLOWED", "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(method), "{answer}");
    }
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(server.url("/redoc")).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/docs");
    let docs = server.client.get(server.url("/redoc")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_short_by_a_disconnect_leaves_its_inbox_row() {
    let server = TestServer::start().await;
    let sent = r#"{"View": "Kitchen", "TotalDuration": "0:0"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port(&server))).unwrap();
    let head = "POST /api/v1/unreal/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Device-Key: cut-headset\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(format!("{head}{sent}").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(stream);

    let rows = wait_for_rows(&server, 1);
    assert_eq!(rows.len(), 1, "the cut-short upload has its row: {rows:?}");
    let (endpoint, status, outcome, length, detail) = &rows[0];
    assert_eq!((endpoint.as_str(), *status, outcome.as_str(), *length), ("POST /api/v1/unreal/session", 400, "rejected", sent.len()));
    assert!(detail.contains(&format!("{} of 1000 bytes", sent.len())), "{detail}");
    let kept: Vec<u8> = server.db().query_row("SELECT body FROM inbox", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, sent.as_bytes());
    // Nothing was made of it, and the appliance goes on.
    assert_eq!(server.count("SELECT count(*) FROM events"), 0);
    assert_eq!(server.post(UNIVERSAL, &json!({"View": "Hall", "TotalDuration": "0:02"})).await.0, 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_body_is_answered_408_kept_in_the_inbox_and_its_connection_closed() {
    let server = TestServer::start_with(|o| o.body_read_timeout_secs = Some(1)).await;
    let sent = r#"{"events": [{"event_type": "gaze", "zone_"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port(&server))).unwrap();
    let head = "POST /api/v1/unreal/tracking/batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n";
    stream.write_all(format!("{head}{sent}").as_bytes()).unwrap();
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The answer comes after the timeout, and then the server closes the connection (EOF).
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("the server closes the connection, no reset");
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "closed after {waited:?}");

    let rows = wait_for_rows(&server, 1);
    let (endpoint, status, outcome, length, detail) = &rows[0];
    assert_eq!((endpoint.as_str(), *status, outcome.as_str(), *length), ("POST /api/v1/unreal/tracking/batch/", 408, "rejected", sent.len()));
    assert!(detail.contains("within 1 s"), "{detail}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_json_on_every_spelling_and_a_health_probe_gets_its_answer() {
    // raw HTTP/1.1 with keep-alive off, as `service status` asks it.
    let server = TestServer::start().await;
    for path in ["/health", "/health/", "/HEALTH"] {
        let (status, body) = raw_http(port(&server), &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, body["status"].as_str(), body["writable"].as_bool()), (200, Some("healthy"), Some(true)), "{path}");
    }
    server.stop().await;
}

/// A full disk is a problem for `/health` even when `min_free_disk_mb` is 0: the issue saw
/// `healthy, writable: true` with 0 bytes free. Mounts its own small tmpfs (needs root, as the
/// test command and CI run).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn health_is_unhealthy_and_not_writable_with_no_free_disk() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m", "nexero-health-disk-test"]).arg(dir.path()).status().unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root: run the test command as root, as CI does");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let data_dir = dir.path().join("data");
    let port = common::free_port();
    let mut appliance = common::Appliance::spawn(
        common::serve_command(&data_dir, port).args(["--min-free-disk-mb", "0"]).stdout(Stdio::null()).stderr(Stdio::null()),
    );
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    let filled = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dir.path().join("filler").display()))
        .arg("bs=65536")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!filled.success(), "dd stops when the disk is full");
    let (status, body) = raw_http(port, common::HEALTH_REQUEST).unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["status"].as_str(), body["writable"].as_bool()), (503, Some("unhealthy"), Some(false)), "{body}");
    assert_eq!(body["low_disk"], true, "{body}");
    std::fs::remove_file(dir.path().join("filler")).unwrap();
    assert!(common::wait_until_healthy(port, Duration::from_secs(10)), "healthy again once space returns");
}
