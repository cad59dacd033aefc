//! Starts the real appliance in-process on a free loopback port with a real SQLite file.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::path::PathBuf;

use nexero::config::{Overrides, Settings};
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::oneshot;

/// The first column of every row `sql` returns, in order.
pub fn column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

pub struct TestServer {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), nexero::StartError>>>,
}

pub fn settings(data_dir: &std::path::Path, tweak: impl FnOnce(&mut Overrides)) -> Settings {
    let mut overrides = Overrides { data_dir: Some(data_dir.to_path_buf()), ..Default::default() };
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
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(nexero::launch(settings, listener, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let server = TestServer { base, data_dir, client, stop: Some(stop), task: Some(task) };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(format!("{}/health", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the test server did not answer /health");
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
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.path().join("nexero.db")
    }

    /// A read-only connection to the live database file, for checking what was committed.
    pub fn db(&self) -> Connection {
        Connection::open_with_flags(self.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Stops gracefully and returns the data directory for inspection.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().expect("server ran and stopped cleanly");
        std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap())
    }
}

pub const UNIVERSAL: &str = "/api/v1/unreal/session";
