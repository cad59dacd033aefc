//! Driving cloud sync by hand, end to end: `/api/v1/sync/status|now|retry-quarantined` with staff
//! sessions and with the local control token (its file, loopback only, these routes only), the
//! `nexero sync` commands against a running appliance, and the status of a sync that cannot reach
//! its cloud.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nexero::config::Secret;
use serde_json::{json, Value};

/// A URL nothing listens on: every send fails at once with "connection refused".
const UNREACHABLE: &str = "http://127.0.0.1:1/rest/v1";

/// Runs `nexero ARGS --data-dir DIR --port PORT`.
fn nexero(dir: &Path, port: u16, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("nexero starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The text after `label:` on its line of `nexero sync status`.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    out.lines().find_map(|line| line.strip_prefix(&prefix)).map(str::trim).unwrap_or_else(|| panic!("no {label} in {out}"))
}

fn control_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("control.token")).expect("the appliance wrote control.token").trim().to_owned()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request sent");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A tour that ends (and so is queued for the cloud): one view, then a startup packet from the
/// same headset, which ends it.
async fn complete_a_tour(server: &TestServer, device: &str) {
    let (status, _) = server.post_with(&server.client, UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:02"}), &[("X-Device-Key", device)]).await;
    assert_eq!(status, 201);
    let response = server.client.post(server.url(UNIVERSAL)).header("X-Device-Key", device).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

/// Polls the status (as `client` sees it) until `done` holds; the last status otherwise.
async fn status_until(server: &TestServer, client: &reqwest::Client, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = send(client.get(server.url("/api/v1/sync/status"))).await;
        assert_eq!(code, 200, "{body}");
        if done(&body["data"]) || Instant::now() > deadline {
            return body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cloud_the_status_says_disabled_and_now_and_retry_say_why_not() {
    let server = TestServer::start().await;
    let admin = server.signed_in("ada", "admin").await;
    let sales = server.signed_in("sam", "sales").await;

    let (code, body) = server.get("/api/v1/sync/status").await;
    assert_eq!(code, 401, "signed out: {body}");
    for client in [&admin, &sales] {
        let (code, body) = send(client.get(server.url("/api/v1/sync/status"))).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["state"], "disabled");
        assert_eq!(body["data"]["configured"], false);
    }
    for path in ["/api/v1/sync/now", "/api/v1/sync/retry-quarantined"] {
        let (code, body) = send(sales.post(server.url(path))).await;
        assert_eq!(code, 403, "sales may not {path}: {body}");
        let (code, body) = send(admin.post(server.url(path))).await;
        assert_eq!(code, 409, "{path}: {body}");
        assert_eq!(body["code"], "SYNC_NOT_CONFIGURED");
        assert!(body["message"].as_str().unwrap().contains("[sync]"), "the message says what to set: {body}");
    }
    server.stop().await;
}

/// This computer's address on its network (not loopback), when it has one: the source address
/// of a route outwards (a UDP "connect" sends nothing).
fn lan_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").or_else(|_| socket.connect("10.255.255.254:9")).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_token_is_private_fresh_each_start_and_counts_only_from_loopback_on_the_sync_routes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let serve = || {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--bind", "0.0.0.0", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut appliance = Appliance::spawn(&mut command);
        appliance.wait_until_healthy(port, Duration::from_secs(20));
        appliance
    };
    let mut appliance = serve();
    let token = control_token(dir.path());
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("control.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the appliance's user reads the token");
    }
    let client = reqwest::Client::new();
    let local = format!("http://127.0.0.1:{port}");
    let bearer = format!("Bearer {token}");

    let (code, body) = send(client.get(format!("{local}/api/v1/sync/status")).header("Authorization", &bearer)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["state"], "disabled");
    let (code, body) = send(client.post(format!("{local}/api/v1/sync/now")).header("Authorization", &bearer)).await;
    assert_eq!(code, 409, "the token passes as an admin; sync is just not configured: {body}");
    let (code, _) = send(client.get(format!("{local}/api/v1/sync/status")).header("Authorization", "Bearer 00ff")).await;
    assert_eq!(code, 401, "another token is not the control token");

    // Not an admin anywhere else.
    let patch = client.patch(format!("{local}/api/v1/headsets/x")).header("Authorization", &bearer).json(&json!({"name": "X"}));
    let (code, body) = send(patch).await;
    assert_eq!(code, 401, "the control token is no admin for other routes: {body}");
    let (code, _) = send(client.get(format!("{local}/api/v1/overview")).header("Authorization", &bearer)).await;
    assert_eq!(code, 401, "nor a staff member for the dashboard's reads");

    // Not from another computer (here: this one's network address, which is not loopback).
    if let Some(ip) = lan_address() {
        let url = format!("http://{}/api/v1/sync/status", std::net::SocketAddr::new(ip, port));
        let (code, body) = send(client.get(url).header("Authorization", &bearer)).await;
        assert_eq!(code, 401, "from {ip}, the control token is not accepted: {body}");
    } else {
        // No network here: auth::control's unit test covers a non-loopback peer.
        eprintln!("no non-loopback address on this machine; the LAN case is covered by the unit test");
    }

    // A restart writes a new token; the old one no longer counts.
    appliance.terminate();
    assert!(appliance.exit_within(Duration::from_secs(20)).is_some_and(|s| s.success()));
    let _appliance = serve();
    let fresh = control_token(dir.path());
    assert_ne!(fresh, token);
    let (code, _) = send(client.get(format!("{local}/api/v1/sync/status")).header("Authorization", &bearer)).await;
    assert_eq!(code, 401, "the last run's token is refused");
    let (code, _) = send(client.get(format!("{local}/api/v1/sync/status")).header("Authorization", format!("Bearer {fresh}"))).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_commands_ask_the_running_appliance_and_say_when_it_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stopped = nexero(dir.path(), port, &["sync", "status"]);
    assert_eq!(stopped.status.code(), Some(1));
    let message = text(&stopped.stderr);
    assert!(message.contains(&format!("the appliance is not running on port {port}")), "{message}");

    let mut appliance = Appliance::serve(dir.path(), port);
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    let status = nexero(dir.path(), port, &["sync", "status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let out = text(&status.stdout);
    assert!(out.starts_with("state:") && out.contains("disabled (no cloud configured"), "{out}");
    let json = nexero(dir.path(), port, &["sync", "status", "--json"]);
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(parsed["state"], "disabled");

    let now = nexero(dir.path(), port, &["sync", "now"]);
    assert_eq!(now.status.code(), Some(1));
    assert!(text(&now.stderr).contains("cloud sync is not configured"), "{}", text(&now.stderr));

    // The wrong data directory: no token there.
    let elsewhere = tempfile::tempdir().unwrap();
    let wrong = nexero(elsewhere.path(), port, &["sync", "status"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong.stderr).contains("there is no control token"), "{}", text(&wrong.stderr));
}

#[test]
fn sync_schema_prints_the_cloud_schema() {
    let output = Command::new(binary()).args(["sync", "schema"]).output().unwrap();
    assert!(output.status.success());
    let printed = text(&output.stdout);
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/cloud/schema.sql")).unwrap();
    assert_eq!(printed, shipped);
    for table in ["vr_sessions", "tracking_events", "view_events", "poi_visits", "nexero_sites"] {
        assert!(printed.contains(table), "the schema creates {table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cloud_shows_as_retrying_with_the_tour_queued_and_quarantined_rows_can_be_retried() {
    let server = TestServer::start_with(|o| {
        o.sync.url = Some(UNREACHABLE.into());
        o.sync.key = Some(Secret::new("sb_secret_test"));
        o.sync.retry_base_secs = Some(1);
    })
    .await;
    let admin = server.signed_in("ada", "admin").await;
    let sales = server.signed_in("sam", "sales").await;
    complete_a_tour(&server, "quest-1").await;
    let (code, body) = send(admin.post(server.url("/api/v1/sync/now"))).await;
    assert_eq!(code, 202, "{body}");
    let status = status_until(&server, &sales, |s| s["state"] == "retrying" && s["last_error"].is_string()).await;
    assert_eq!(status["state"], "retrying", "{status}");
    assert_eq!(status["configured"], true);
    assert_eq!(status["target"], "postgrest");
    assert_eq!(status["queue_depth"], 1, "{status}");
    assert!(status["oldest_unsynced"].is_string(), "{status}");
    assert!(status["last_success"].is_null());
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("unreachable") && error.contains("nothing is lost"), "plain words: {error}");
    let (code, _) = send(sales.post(server.url("/api/v1/sync/now"))).await;
    assert_eq!(code, 403);

    // The command line reads the same, through the control token.
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let data_dir = server.data_dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || nexero(&data_dir, port, &["sync", "status"])).await.unwrap();
    let out = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(field(&out, "state").starts_with("retrying"), "{out}");
    assert_eq!(field(&out, "target"), format!("postgrest, as site {}", status["site_id"].as_str().unwrap()), "{out}");
    assert_eq!(field(&out, "queue"), "1 tour waiting", "{out}");
    assert!(field(&out, "oldest unsynced").ends_with("(just now)"), "{out}");
    assert_eq!(field(&out, "last success"), "never", "{out}");
    assert!(field(&out, "last error").starts_with("the cloud is unreachable"), "{out}");

    // A refused tour row, as the engine quarantines one (it cannot here: nothing answers).
    let tour: i64 = server.count("SELECT session_id FROM sync_outbox");
    {
        let db = rusqlite::Connection::open(server.db_path()).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.execute(
            "INSERT INTO sync_quarantine (session_id, target_table, code, error, payload, quarantined_at)
             VALUES (?1, 'vr_sessions', '22001', 'value too long', '{}', 0)",
            [tour],
        )
        .unwrap();
        db.execute("UPDATE sync_outbox SET quarantined = 1 WHERE session_id = ?1", [tour]).unwrap();
    }
    let quarantined = status_until(&server, &admin, |s| s["quarantined"] == 1).await;
    assert_eq!(quarantined["quarantined"], 1, "{quarantined}");
    let (code, _) = send(sales.post(server.url("/api/v1/sync/retry-quarantined"))).await;
    assert_eq!(code, 403);
    let (code, body) = send(admin.post(server.url("/api/v1/sync/retry-quarantined"))).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["data"]["requeued"], 1);
    assert_eq!(server.count("SELECT count(*) FROM sync_quarantine"), 0);
    assert_eq!(server.count("SELECT quarantined FROM sync_outbox"), 0);
    assert_eq!(server.count("SELECT count(*) FROM sync_outbox WHERE synced_version < version"), 1, "still queued, not lost");
    server.stop().await;
}

/// The dashboard's sync panel in a real browser: an admin sees the state with its colour, the
/// queue, the error in plain words and the buttons, and "Sync now" works; sales staff see the
/// state without the buttons. Screenshots: target/screenshots/sync-panel-*.png.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_sync_panel_shows_a_failing_sync_and_lets_an_admin_sync_now() {
    use common::browser::{fill, js, poll, screenshot, text, wait_for, Driver, DESKTOP, TABLET};
    use fantoccini::Locator;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = serve_command(dir.path(), port);
    command
        .env("NEXERO_SYNC_URL", UNREACHABLE)
        .env("NEXERO_SYNC_KEY", "sb_secret_test")
        .env("NEXERO_SYNC_INTERVAL_SECS", "1")
        .env("NEXERO_SYNC_RETRY_BASE_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut appliance = Appliance::spawn(&mut command);
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    add_user(dir.path(), "ada", "admin", "ada-password-1");
    add_user(dir.path(), "sam", "sales", "sam-password-1");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for body in [json!({"View": "Home", "TotalDuration": "0:02"}), json!(null)] {
        let request = client.post(format!("{base}{UNIVERSAL}")).header("X-Device-Key", "quest-1");
        let request = if body.is_null() { request } else { request.json(&body) };
        assert_eq!(request.send().await.unwrap().status(), 201);
    }
    // The panel fetches on opening: have the failure happen first.
    let bearer = format!("Bearer {}", control_token(dir.path()));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = send(client.get(format!("{base}/api/v1/sync/status")).header("Authorization", &bearer)).await;
        if body["data"]["state"] == "retrying" && body["data"]["queue_depth"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "sync never failed: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let driver = Driver::start();
    let sign_in = |name: &'static str| {
        let driver = &driver;
        let base = base.clone();
        async move {
            let browser = driver.browser().await;
            browser.goto(&format!("{base}/login")).await.unwrap();
            fill(&browser, "form#login-form input#username", name).await;
            fill(&browser, "form#login-form input#password", &format!("{name}-password-1")).await;
            wait_for(&browser, r#"form#login-form button[type="submit"]"#).await.click().await.unwrap();
            wait_for(&browser, r#"#sync-panel[data-state="retrying"]"#).await;
            browser
        }
    };
    let admin = sign_in("ada").await;
    assert_eq!(text(&admin, "#sync-panel .sync-state").await, "Retrying");
    assert_eq!(text(&admin, "#sync-panel [data-field=queue]").await, "1 tour waiting");
    assert_eq!(text(&admin, "#sync-panel [data-field=last-success]").await, "Nothing sent yet");
    assert!(text(&admin, "#sync-panel [data-field=error]").await.starts_with("The cloud is unreachable"));
    let colour = js(&admin, "return getComputedStyle(document.querySelector('#sync-panel .sync-dot')).backgroundColor").await;
    assert_eq!(colour, "rgb(154, 98, 0)", "the dot has the warning colour");
    let sync_now = admin.find(Locator::Css("#sync-panel [data-action=now]")).await.unwrap();
    assert!(sync_now.is_displayed().await.unwrap());
    let retry = admin.find(Locator::Css("#sync-panel [data-action=retry]")).await.unwrap();
    assert!(!retry.is_displayed().await.unwrap(), "nothing quarantined, nothing to retry");
    sync_now.click().await.unwrap();
    poll("the answer to Sync now", || async {
        let note = admin.find(Locator::Css("#sync-panel .sync-note")).await.map_err(|e| e.to_string())?;
        let shown = note.text().await.map_err(|e| e.to_string())?;
        if shown == "A sync round starts now" { Ok(()) } else { Err(shown) }
    })
    .await;
    screenshot(&admin, "sync-panel-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&admin, "sync-panel-tablet", TABLET.0, TABLET.1).await;
    let overflow = js(&admin, "const d = document.documentElement; return d.scrollWidth - d.clientWidth").await;
    assert_eq!(overflow, 0, "no sideways scrolling at tablet width");
    let nav = js(&admin, "const n = document.querySelector('#nav'); return n.scrollWidth - n.clientWidth").await;
    assert_eq!(nav, 0, "every page's link fits beside the sync dot");
    let title = admin.find(Locator::Css("#sync-panel")).await.unwrap().attr("title").await.unwrap().unwrap_or_default();
    assert!(title.contains("Retrying") && title.contains("1 tour waiting"), "the dot's title says the rest: {title}");
    admin.close().await.unwrap();

    let sales = sign_in("sam").await;
    let actions = sales.find(Locator::Css("#sync-panel .sync-actions")).await.unwrap();
    assert!(!actions.is_displayed().await.unwrap(), "sales staff see the state, not the buttons");
    sales.close().await.unwrap();
}
