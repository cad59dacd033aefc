//! Runs the real binary the way packaging/linux/nexero.service does (its ExecStart arguments and
//! Environment), then stops it as systemd does, with SIGTERM: uploads in flight are answered, the
//! process exits 0, and the WAL is checkpointed into the database file.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const UNIT: &str = include_str!("../packaging/linux/nexero.service");
/// Fixed loopback port of this test (the Windows stage uses 18083-18084).
const PORT: u16 = 18085;
const BODY: &str = r#"{"POI": "Kitchen", "Parent": "Unit_A", "POI_Duration": "0:45"}"#;

fn unit_value(key: &'static str) -> impl Iterator<Item = &'static str> {
    UNIT.lines().filter_map(move |line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Kills the server if the test fails half-way, so it never outlives the test.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_like_the_unit(data_dir: &Path) -> Server {
    let exec = unit_value("ExecStart").next().expect("the unit has an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/nexero"), "the unit runs the installed program");
    let bin = std::env::var("NEXERO_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nexero").to_owned());
    let mut command = Command::new(bin);
    command.args(words);
    for assignment in unit_value("Environment") {
        let (name, value) = assignment.trim_matches('"').split_once('=').expect("NAME=value");
        command.env(name, value);
    }
    // Where the test differs from the unit: a private data directory and loopback only.
    command
        .env("NEXERO_DATA_DIR", data_dir)
        .env("NEXERO_BIND", "127.0.0.1")
        .env("NEXERO_PORT", PORT.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Server(command.spawn().expect("the binary starts"))
}

fn wait_for_health(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "nexero exited during start-up");
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", PORT)) {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nexero did not answer /health on port {PORT}");
}

/// An upload whose body is only half sent: the server is reading it when SIGTERM arrives.
fn half_sent_upload() -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", PORT)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/v1/unreal/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&BODY.as_bytes()[..BODY.len() / 2]).unwrap();
    stream
}

#[test]
fn systemd_unit_start_and_sigterm_stop_gracefully() {
    assert_eq!(unit_value("KillSignal").next(), Some("SIGTERM"), "systemd stops the unit with SIGTERM");
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = start_like_the_unit(data_dir.path());
    let child = &mut server.0;
    wait_for_health(child);

    let in_flight: Vec<TcpStream> = (0..3).map(|_| half_sent_upload()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "nexero must wait for the uploads in flight");

    for mut stream in in_flight {
        stream.write_all(&BODY.as_bytes()[BODY.len() / 2..]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "an upload in flight at SIGTERM was not stored: {answer}");
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            panic!("nexero did not exit within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a SIGTERM stop is a clean exit, got {exit:?}");
    assert!(TcpStream::connect(("127.0.0.1", PORT)).is_err(), "nothing listens after the stop");

    let wal = data_dir.path().join("nexero.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_bytes, 0, "the WAL is checkpointed into nexero.db on a graceful stop");
    let db = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM inbox WHERE status = 201 AND CAST(body AS TEXT) LIKE '%Kitchen%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 3, "every upload answered 201 is in the database");
}
