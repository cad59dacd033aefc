//! A throwaway PostgreSQL cluster for the cloud sync tests: Debian's server binaries
//! (/usr/lib/postgresql/<version>/bin; tests/run-all.sh installs `postgresql` when missing),
//! `initdb` into a fresh temporary directory (as the `postgres` user through `runuser` when the
//! tests run as root: initdb refuses root), trust authentication on 127.0.0.1 and a free port,
//! the unix socket in the same directory, fsync off. Nothing outside the directory is touched; a
//! dropped `PgServer` is stopped (`-m immediate`) and its directory deleted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, Row, SimpleQueryMessage};

/// The cloud schema the appliance's sync writes into (owned by the sync engine).
pub fn cloud_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/cloud/schema.sql")
}

pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
    stopped: bool,
}

/// The newest /usr/lib/postgresql/<version>/bin (or `NEXERO_PG_BIN`).
pub fn pg_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("NEXERO_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (tests/run-all.sh installs the `postgresql` package)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/<version>/bin/initdb")
        .1
}

fn is_root() -> bool {
    // `id -u`: no libc dependency in the tests.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    /// initdb + start on 127.0.0.1 and a free port; ready for connections when it returns.
    pub fn start() -> PgServer {
        let bin = pg_bin();
        let as_root = is_root();
        let dir = tempfile::Builder::new().prefix("nexero-pg").tempdir().unwrap();
        if as_root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres {}", dir.path().display());
        }
        let mut server = PgServer {
            bin,
            dir,
            port: 0,
            as_root,
            stopped: true,
        };
        let data = server.data_dir();
        server.run_ok(
            &[
                "initdb", "-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--no-locale", "--no-sync",
            ],
            "initdb",
        );
        // A port taken between free_port() and the bind makes pg_ctl fail: try a few.
        for attempt in 0..5 {
            server.port = super::free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=200",
                server.port,
                server.dir.path().display()
            );
            let log = server.dir.path().join("log").display().to_string();
            let out = server.run(&[
                "pg_ctl", "-D", &data, "-l", &log, "-w", "-t", "30", "-o", &options, "start",
            ]);
            if out.status.success() {
                server.stopped = false;
                return server;
            }
            if attempt == 4 {
                panic!(
                    "pg_ctl start failed: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        unreachable!()
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        let program = self.bin.join(args[0]);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(&args[1..]).env_remove("PGDATA");
        command.output().expect("PostgreSQL tool runs")
    }

    fn run_ok(&self, args: &[&str], what: &str) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `postgres` database as the superuser `postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database; its URL (superuser).
    pub async fn fresh_database(&self, name: &str) -> String {
        execute(&self.url(), &format!("CREATE DATABASE \"{name}\"")).await;
        self.url_for(name)
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`); the directory
    /// stays for `restart`.
    pub fn kill(&mut self) {
        if !self.stopped {
            let data = self.data_dir();
            let _ = self.run(&["pg_ctl", "-D", &data, "-m", "immediate", "-w", "stop"]);
            self.stopped = true;
        }
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.stopped, "restart of a running server");
        let data = self.data_dir();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run_ok(
            &["pg_ctl", "-D", &data, "-l", &log, "-w", "-t", "30", "-o", &options, "start"],
            "pg_ctl start (restart)",
        );
        self.stopped = false;
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        // TempDir removes the directory (owned by postgres, removable by root or its owner).
    }
}

/// One connection; the connection task runs on the current runtime.
pub async fn connect(url: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                return client;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connect to {url}: {e}"),
        }
    }
}

/// Runs one or more statements (simple protocol, no parameters).
pub async fn execute(url: &str, sql: &str) {
    connect(url)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// Rows of a query with parameters.
pub async fn query(url: &str, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<Row> {
    connect(url)
        .await
        .query(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// Every row of `sql` as text columns (NULL → None), in order: the simple protocol, so any
/// column type reads without type mapping.
pub async fn query_text(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = connect(url)
        .await
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// `SELECT count(*)` of `table_or_query_tail`, e.g. `count(url, "tracking_events")`.
pub async fn count(url: &str, table: &str) -> i64 {
    let rows = query_text(url, &format!("SELECT count(*) FROM {table}")).await;
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Applies packaging/cloud/schema.sql to the database at `url`.
pub async fn apply_cloud_schema(url: &str) {
    let path = cloud_schema_path();
    let sql = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    execute(url, &sql).await;
}
