//! Runs the real binary the way packaging/linux/nexero.service does (its ExecStart arguments and
//! Environment), then stops it as systemd does, with SIGTERM: uploads in flight are answered, the
//! process exits 0, and the WAL is checkpointed into the database file.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{binary, free_port, Appliance};

const UNIT: &str = include_str!("../packaging/linux/nexero.service");
const BODY: &str = r#"{"POI": "Kitchen", "Parent": "Unit_A", "POI_Duration": "0:45"}"#;

fn unit_value(key: &'static str) -> impl Iterator<Item = &'static str> {
    UNIT.lines().filter_map(move |line| line.strip_prefix(key)?.strip_prefix('='))
}

fn start_like_the_unit(data_dir: &Path, port: u16) -> Appliance {
    let exec = unit_value("ExecStart").next().expect("the unit has an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/nexero"), "the unit runs the installed program");
    let mut command = Command::new(binary());
    command.args(words);
    for assignment in unit_value("Environment") {
        let (name, value) = assignment.trim_matches('"').split_once('=').expect("NAME=value");
        command.env(name, value);
    }
    // Where the test differs from the unit: a private data directory and loopback only.
    command
        .env("NEXERO_DATA_DIR", data_dir)
        .env("NEXERO_BIND", "127.0.0.1")
        .env("NEXERO_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Appliance::spawn(&mut command)
}

/// An upload whose body is only half sent: the server is reading it when SIGTERM arrives.
fn half_sent_upload(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    let port = free_port();
    let mut server = start_like_the_unit(data_dir.path(), port);
    server.wait_until_healthy(port, Duration::from_secs(20));

    let in_flight: Vec<TcpStream> = (0..3).map(|_| half_sent_upload(port)).collect();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.0.try_wait().unwrap().is_none(), "nexero must wait for the uploads in flight");

    for mut stream in in_flight {
        stream.write_all(&BODY.as_bytes()[BODY.len() / 2..]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "an upload in flight at SIGTERM was not stored: {answer}");
    }

    let exit = server.exit_within(Duration::from_secs(20)).expect("nexero did not exit within 20 s of SIGTERM");
    assert!(exit.success(), "a SIGTERM stop is a clean exit, got {exit:?}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after the stop");

    let wal = data_dir.path().join("nexero.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_bytes, 0, "the WAL is checkpointed into nexero.db on a graceful stop");
    let db = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT count(*) FROM inbox WHERE status = 201 AND CAST(body AS TEXT) LIKE '%Kitchen%'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 3, "every upload answered 201 is in the database");
}
