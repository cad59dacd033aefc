//! Staff accounts end to end: the first-run setup link printed by the real binary, sign-in and
//! sign-out over real HTTP, sessions across a restart, and the `nexero user` / `nexero token`
//! commands run against a live appliance's data directory.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use serde_json::{json, Value};

/// Runs `nexero ARGS --data-dir DIR` with `stdin` as its standard input.
fn nexero(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nexero starts");
    // A command that reads no input may have exited already: a closed pipe is not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// POSTs a sign-in; returns the status, the JSON body and the Set-Cookie header.
async fn login(base: &str, username: &str, password: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null), cookie)
}

/// `nexero_session=…` out of a Set-Cookie header, as a browser sends it back.
fn session_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

/// GET /api/v1/auth/me with a Cookie or Authorization header.
async fn me(base: &str, header: (reqwest::header::HeaderName, &str)) -> (u16, Value) {
    let response = reqwest::Client::new().get(format!("{base}/api/v1/auth/me")).header(header.0, header.1).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Starts `nexero serve` with its standard output sent line by line to the returned channel.
fn serve_watching(dir: &Path, port: u16) -> (Appliance, mpsc::Receiver<String>) {
    let mut appliance = Appliance::spawn(serve_command(dir, port).stdout(Stdio::piped()).stderr(Stdio::null()));
    let stdout = appliance.0.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (appliance, received)
}

#[tokio::test]
async fn the_first_start_prints_a_one_time_setup_link_that_creates_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut appliance, lines) = serve_watching(dir.path(), port);
    let line = lines.recv_timeout(Duration::from_secs(20)).expect("a setup link on standard output");
    let prefix = format!("http://127.0.0.1:{port}/setup?token=");
    let start = line.find(&prefix).unwrap_or_else(|| panic!("no setup link in {line:?}")) + prefix.len();
    let secret: String = line[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    assert_eq!(secret.len(), 64, "{line}");
    appliance.wait_until_healthy(port, Duration::from_secs(10));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Only the digest is kept.
    let db =
        rusqlite::Connection::open_with_flags(dir.path().join("nexero.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let stored: String = db.query_row("SELECT value FROM meta WHERE key = 'setup_token'", [], |r| r.get(0)).unwrap();
    assert!(!stored.contains(&secret), "{stored}");

    let check = |token: String| {
        let client = client.clone();
        let url = format!("{base}/api/v1/auth/setup?token={token}");
        async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(check(secret.clone()).await, json!({"success": true, "data": {"valid": true}}));
    assert_eq!(check("0".repeat(64)).await["data"]["valid"], false);

    let post = |body: Value| {
        let client = client.clone();
        let url = format!("{base}/api/v1/auth/setup");
        async move { client.post(url).json(&body).send().await.unwrap() }
    };
    let wrong = post(json!({"token": "f".repeat(64), "username": "boss", "password": "long enough 1"})).await;
    assert_eq!(wrong.status(), 403);
    let weak = post(json!({"token": secret, "username": "boss", "password": "short"})).await;
    assert_eq!(weak.status(), 422);
    assert_eq!(weak.json::<Value>().await.unwrap()["errors"][0]["field"], "password");
    let bad_name = post(json!({"token": secret, "username": "the boss", "password": "long enough 1"})).await;
    assert_eq!(bad_name.status(), 422);
    assert_eq!(bad_name.json::<Value>().await.unwrap()["errors"][0]["field"], "username");
    let missing = post(json!({"token": secret, "password": "long enough 1"})).await;
    assert_eq!(missing.status(), 422);
    assert_eq!(missing.json::<Value>().await.unwrap()["errors"][0]["field"], "username");

    let created = post(json!({"token": secret, "username": "boss", "password": "long enough 1"})).await;
    assert_eq!(created.status(), 201);
    let cookie = session_pair(created.headers().get(SET_COOKIE).unwrap().to_str().unwrap());
    assert_eq!(created.json::<Value>().await.unwrap(), json!({"success": true, "data": {"username": "boss", "role": "admin"}}));
    let (status, body) = me(&base, (COOKIE, &cookie)).await;
    assert_eq!((status, body["data"].clone()), (200, json!({"username": "boss", "role": "admin", "via": "session"})));

    // Used up.
    assert_eq!(check(secret.clone()).await["data"]["valid"], false);
    let again = post(json!({"token": secret, "username": "boss2", "password": "long enough 1"})).await;
    assert_eq!(again.status(), 403);
    assert!(again.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("not valid"));
    let left: i64 = db.query_row("SELECT count(*) FROM meta WHERE key = 'setup_token'", [], |r| r.get(0)).unwrap();
    let users: i64 = db.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!((left, users), (0, 1));
    assert_eq!(login(&base, "boss", "long enough 1").await.0, 200);

    appliance.terminate();
    assert!(appliance.exit_within(Duration::from_secs(20)).expect("stops").success());

    // Accounts exist now: the next start prints no link.
    let (mut appliance, lines) = serve_watching(dir.path(), port);
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    appliance.terminate();
    assert!(appliance.exit_within(Duration::from_secs(20)).expect("stops").success());
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(!printed.iter().any(|l| l.contains("setup?token=")), "{printed:?}");
}

#[tokio::test]
async fn a_restart_without_accounts_makes_a_new_link_and_the_old_one_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut secrets = vec![];
    for _ in 0..2 {
        let port = free_port();
        let (mut appliance, lines) = serve_watching(dir.path(), port);
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("a setup link");
        secrets.push(line.split("token=").nth(1).unwrap().chars().take(64).collect::<String>());
        appliance.wait_until_healthy(port, Duration::from_secs(10));
        let base = format!("http://127.0.0.1:{port}");
        let valid = |s: &String| {
            let url = format!("{base}/api/v1/auth/setup?token={s}");
            async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["data"]["valid"].clone() }
        };
        assert_eq!(valid(secrets.last().unwrap()).await, true);
        if secrets.len() == 2 {
            assert_ne!(secrets[0], secrets[1]);
            assert_eq!(valid(&secrets[0]).await, false, "the first start's link is replaced");
        }
        appliance.terminate();
        appliance.exit_within(Duration::from_secs(20)).expect("stops");
    }
}

#[tokio::test]
async fn sign_in_answers_the_same_for_an_unknown_user_and_a_wrong_password() {
    let server = TestServer::start().await;
    add_user(server.data_dir.path(), "ana", "sales", "ana-password-1");

    let (status, body, cookie) = login(&server.base, "ANA", "ana-password-1").await;
    assert_eq!((status, body), (200, json!({"success": true, "data": {"username": "ana", "role": "sales"}})));
    let cookie = cookie.expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("nexero_session=") && attributes[0].len() == "nexero_session=".len() + 64, "{cookie}");
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=2592000"] {
        assert!(attributes.contains(&wanted), "{wanted} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http on the LAN: {cookie}");
    assert_eq!(server.count("SELECT count(*) FROM staff_sessions"), 1);
    let hash_len = server.count("SELECT length(token_hash) FROM staff_sessions");
    assert_eq!(hash_len, 32, "the SHA-256 is stored, not the token");

    let (wrong_status, wrong_body, wrong_cookie) = login(&server.base, "ana", "not-her-password").await;
    let (unknown_status, unknown_body, _) = login(&server.base, "nobody", "ana-password-1").await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert_eq!(wrong_body, unknown_body);
    assert_eq!(wrong_body["message"], "wrong username or password");
    assert!(wrong_cookie.is_none());

    let raw = |body: &'static str| {
        let url = server.url("/api/v1/auth/login");
        async move {
            let response =
                reqwest::Client::new().post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = raw("not json").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(r#"{"username": "ana"}"#).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("password")), "{body}");
    let (status, body) = raw(r#"{"username": 5, "password": "x"}"#).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("username")), "{body}");
}

#[tokio::test]
async fn me_and_sign_out() {
    let server = TestServer::start().await;
    assert_eq!(server.get("/api/v1/auth/me").await.0, 401);
    add_user(server.data_dir.path(), "boss", "admin", "boss-password-1");
    let (_, _, cookie) = login(&server.base, "boss", "boss-password-1").await;
    let cookie = session_pair(&cookie.unwrap());
    let (status, body) = me(&server.base, (COOKIE, &cookie)).await;
    assert_eq!((status, body), (200, json!({"success": true, "data": {"username": "boss", "role": "admin", "via": "session"}})));

    let response = reqwest::Client::new().post(server.url("/api/v1/auth/logout")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cleared = response.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    assert!(cleared.starts_with("nexero_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"success": true, "data": null}));
    assert_eq!(me(&server.base, (COOKIE, &cookie)).await.0, 401, "the old cookie no longer works");
    assert_eq!(server.count("SELECT count(*) FROM staff_sessions"), 0);

    // Signing out when not signed in is fine.
    let response = reqwest::Client::new().post(server.url("/api/v1/auth/logout")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // The shared helper works end to end, and its cookie jar signs out too.
    let client = server.signed_in("ana", "sales").await;
    let body: Value = client.get(server.url("/api/v1/auth/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["data"]["username"], "ana");
    assert_eq!(client.post(server.url("/api/v1/auth/logout")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(server.url("/api/v1/auth/me")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_session_survives_a_restart_and_users_can_be_added_before_the_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    // No database yet: `user add` creates it the appliance's way.
    let added = nexero(&data, &["user", "add", "ana", "--role", "sales"], "ana-password-1\n");
    assert!(added.status.success(), "{}", text(&added.stderr));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut appliance = Appliance::serve(&data, port);
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    let (status, _, cookie) = login(&base, "ana", "ana-password-1").await;
    assert_eq!(status, 200);
    let cookie = session_pair(&cookie.unwrap());
    appliance.terminate();
    appliance.exit_within(Duration::from_secs(20)).expect("stops");

    let mut appliance = Appliance::serve(&data, port);
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    let (status, body) = me(&base, (COOKIE, &cookie)).await;
    assert_eq!((status, body["data"]["username"].as_str()), (200, Some("ana")));
}

#[tokio::test]
async fn user_commands_work_while_the_appliance_runs() {
    let server = TestServer::start().await;
    let dir = server.data_dir.path();
    let added = nexero(dir, &["user", "add", "ana", "--role", "sales"], "ana-password-1\n");
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("added sales ana"));
    assert!(nexero(dir, &["user", "add", "boss", "--role", "admin"], "boss-password-1\n").status.success());

    let duplicate = nexero(dir, &["user", "add", "ANA", "--role", "admin"], "other-password-1\n");
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(text(&duplicate.stderr).contains("exists already"), "{}", text(&duplicate.stderr));
    let weak = nexero(dir, &["user", "add", "cleo", "--role", "sales"], "short\n");
    assert_eq!(weak.status.code(), Some(2));
    assert!(text(&weak.stderr).contains("at least 8 characters"));
    let bad_role = nexero(dir, &["user", "add", "cleo", "--role", "boss"], "long-enough-1\n");
    assert_eq!(bad_role.status.code(), Some(2));

    let (status, _, cookie) = login(&server.base, "ana", "ana-password-1").await;
    assert_eq!(status, 200);
    let cookie = session_pair(&cookie.unwrap());

    let listed = nexero(dir, &["user", "list"], "");
    assert!(listed.status.success());
    let listed = text(&listed.stdout);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert_eq!(rows[0], ["NAME", "ROLE", "CREATED", "ACTIVE", "SESSIONS"]);
    assert_eq!((rows[1][0], rows[1][1], *rows[1].last().unwrap()), ("ana", "sales", "1"), "{listed}");
    assert_eq!((rows[2][0], rows[2][1], *rows[2].last().unwrap()), ("boss", "admin", "0"), "{listed}");

    // A new password ends the sessions; the old one no longer signs in.
    let changed = nexero(dir, &["user", "passwd", "ana"], "ana-new-password\n");
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert_eq!(me(&server.base, (COOKIE, &cookie)).await.0, 401);
    assert_eq!(login(&server.base, "ana", "ana-password-1").await.0, 401);
    let (status, _, cookie) = login(&server.base, "ana", "ana-new-password").await;
    assert_eq!(status, 200);
    let cookie = session_pair(&cookie.unwrap());
    assert_eq!(nexero(dir, &["user", "passwd", "nobody"], "whatever-1\n").status.code(), Some(1));

    // Removing the user ends their sessions too.
    let removed = nexero(dir, &["user", "remove", "ana"], "");
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(me(&server.base, (COOKIE, &cookie)).await.0, 401);
    assert_eq!(login(&server.base, "ana", "ana-new-password").await.0, 401);
    assert_eq!(server.count("SELECT count(*) FROM staff_sessions"), 0);
    let again = nexero(dir, &["user", "remove", "ana"], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("no user named"));
    let listed = text(&nexero(dir, &["user", "list"], "").stdout);
    assert!(!listed.contains("ana") && listed.contains("boss"), "{listed}");
}

#[tokio::test]
async fn api_tokens_read_but_do_not_write_and_end_when_removed() {
    let server = TestServer::start().await;
    let dir = server.data_dir.path();
    let added = nexero(dir, &["token", "add", "crm"], "");
    assert!(added.status.success(), "{}", text(&added.stderr));
    let secret = text(&added.stdout).trim().to_owned();
    assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret:?}");
    let bearer = format!("Bearer {secret}");
    assert_eq!(nexero(dir, &["token", "add", "CRM"], "").status.code(), Some(1), "names ignore case");

    let (status, body) = me(&server.base, (AUTHORIZATION, &bearer)).await;
    assert_eq!((status, body["data"].clone()), (200, json!({"username": "crm", "role": "sales", "via": "token"})));
    let response =
        reqwest::Client::new().post(server.url("/api/v1/auth/logout")).header(AUTHORIZATION, &bearer).send().await.unwrap();
    assert_eq!(response.status(), 403, "tokens are read-only");

    let listed = text(&nexero(dir, &["token", "list"], "").stdout);
    assert!(listed.lines().nth(1).is_some_and(|l| l.starts_with("crm ")), "{listed}");
    assert!(!listed.contains(&secret), "the token is shown only once");

    let removed = nexero(dir, &["token", "remove", "crm"], "");
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(me(&server.base, (AUTHORIZATION, &bearer)).await.0, 401);
    assert_eq!(nexero(dir, &["token", "remove", "crm"], "").status.code(), Some(1));
}

#[tokio::test]
async fn an_old_database_in_use_is_not_upgraded_behind_the_appliance() {
    let dir = tempfile::tempdir().unwrap();
    assert!(nexero(dir.path(), &["user", "add", "ana", "--role", "admin"], "ana-password-1\n").status.success());
    let db = dir.path().join("nexero.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    conn.pragma_update(None, "user_version", version - 1).unwrap();
    drop(conn);
    // Another Nexero holds the writer lock.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("nexero.db.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let refused = nexero(dir.path(), &["user", "list"], "");
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused.stderr);
    assert!(message.contains("older than this nexero") && message.contains("stop the running appliance"), "{message}");
}
