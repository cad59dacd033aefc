//! The helpers every test shares: the real appliance in-process on a free loopback port with a
//! real SQLite file (`TestServer`), the `nexero` program as a child process (`binary`,
//! `Appliance`), and the loopback HTTP helpers `bench` uses too (`free_port`, `raw_http`,
//! `get_health`, `wait_until_healthy`, from `nexero::net`).
#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nexero::config::{Overrides, Settings};
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::oneshot;

pub use nexero::net::*;

/// Headless Chromium through chromedriver, for the dashboard's browser tests.
#[cfg(unix)]
pub mod browser;

/// Cloud sync: a throwaway PostgreSQL, postrust in front of it, a fault-injecting proxy, and the
/// convergence check both sync targets share.
pub mod cloud;
pub mod fault_proxy;
pub mod postgres;
pub mod postrust;

/// The `nexero` program under test: `NEXERO_BIN` (tests/run-all.sh points it at the release
/// build), else the one cargo built for this test run.
pub fn binary() -> String {
    std::env::var("NEXERO_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nexero").to_string())
}

/// POSTs `body` as JSON to `path` on 127.0.0.1:`port` over a plain connection (`raw_http`).
pub fn raw_post(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}", body.len());
    raw_http(port, &format!("{head}\r\nConnection: close\r\n\r\n{body}"))
}

/// `nexero serve` on 127.0.0.1:`port` with `data_dir`; the caller adds environment and output.
pub fn serve_command(data_dir: &Path, port: u16) -> Command {
    let mut command = Command::new(binary());
    command
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(data_dir);
    command
}

/// A `nexero` process of this test, killed when dropped while it still runs, so that no server
/// outlives a test that fails half-way.
pub struct Appliance(pub Child);

impl Drop for Appliance {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Appliance {
    pub fn spawn(command: &mut Command) -> Appliance {
        Appliance(command.spawn().expect("the nexero binary starts"))
    }

    /// `nexero serve` (see `serve_command`) with its output discarded.
    pub fn serve(data_dir: &Path, port: u16) -> Appliance {
        Appliance::spawn(
            serve_command(data_dir, port)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    /// Waits until /health on `port` answers 200; panics when the process exits first or
    /// `timeout` passes.
    pub fn wait_until_healthy(&mut self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            assert!(
                self.0.try_wait().unwrap().is_none(),
                "nexero exited during start-up"
            );
            if wait_until_healthy(port, Duration::from_millis(100)) {
                return;
            }
        }
        panic!("nexero did not answer /health on port {port}");
    }

    /// Its exit status, when it exits within `timeout`.
    pub fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exit) = self.0.try_wait().unwrap() {
                return Some(exit);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, as systemd's stop and `kill` do: a graceful stop.
    #[cfg(unix)]
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {} failed", self.0.id());
    }
}

/// The first column of every row `sql` returns, in order.
pub fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub struct TestServer {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), nexero::StartError>>>,
}

pub fn settings(data_dir: &std::path::Path, tweak: impl FnOnce(&mut Overrides)) -> Settings {
    let mut overrides = Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        ..Default::default()
    };
    tweak(&mut overrides);
    Settings::load(&overrides).expect("test settings are valid")
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Overrides)) -> TestServer {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = settings(data_dir.path(), tweak);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(nexero::launch(settings, listener, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let server = TestServer {
            base,
            data_dir,
            client,
            stop: Some(stop),
            task: Some(task),
        };
        let healthy =
            tokio::task::spawn_blocking(move || wait_until_healthy(port, Duration::from_secs(5)))
                .await
                .unwrap();
        assert!(healthy, "the test server did not answer /health");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs a raw body (exactly as given) to a headset endpoint.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// POSTs `body` with extra headers (`X-Device-Key`, `Idempotency-Key`, ...) through `client`
    /// (one bound to another loopback address stands for a headset that changed address).
    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.path().join("nexero.db")
    }

    /// A read-only connection to the live database file, for checking what was committed.
    pub fn db(&self) -> Connection {
        Connection::open_with_flags(self.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Stops gracefully and returns the data directory for inspection.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("server ran and stopped cleanly");
        assert_tours_sane(&self.db_path());
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap())
    }
}

/// Whatever a test sent, no stored tour has a negative duration or ends before it starts: every
/// test server checks its file when the test is done with it.
impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.db_path().exists() {
            assert_tours_sane(&self.db_path());
        }
    }
}

pub fn assert_tours_sane(db: &Path) {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let insane: Vec<String> = column(
        &conn,
        "SELECT printf('%s: started %d, ended %d, duration %d ms', uuid, started_at, ended_at, duration_ms) FROM tour_sessions
         WHERE duration_ms < 0 OR ended_at < started_at OR (ended_at IS NOT NULL AND duration_ms IS NULL)",
    );
    assert!(
        insane.is_empty(),
        "stored tours with impossible times: {insane:?}"
    );
}

pub const UNIVERSAL: &str = "/api/v1/unreal/session";

/// Staff accounts for dashboard tests, made as an admin makes them: `nexero user add` against the
/// server's data directory (it works while the appliance runs), password on standard input.
pub fn add_user(data_dir: &Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(["user", "add", name, "--role", role, "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nexero user add starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "nexero user add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestServer {
    /// POSTs a headset body to the universal endpoint as the headset `device` (`X-Device-Key`);
    /// panics unless it is answered 2xx, and returns the answer.
    pub async fn post_as(&self, device: &str, body: Value) -> Value {
        let (status, answer) = self.post_with(&self.client, UNIVERSAL, &body, &[("X-Device-Key", device)]).await;
        assert!((200..300).contains(&status), "upload answered {status}: {answer}");
        answer
    }

    /// A client signed in (session cookie kept) as a new user of `role` ("admin" or "sales").
    pub async fn signed_in(&self, name: &str, role: &str) -> reqwest::Client {
        let password = format!("{name}-password-1");
        add_user(self.data_dir.path(), name, role, &password);
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let response = client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "sign-in as {name} failed: {}",
            response.text().await.unwrap_or_default()
        );
        client
    }
}
