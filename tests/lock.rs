//! One writer per data directory (src/store/lock.rs): while `nexero serve` runs, a second
//! `nexero serve` or a `nexero reprocess` on the same data stops at once with a message naming the
//! database and the process holding it, changes nothing, and leaves the running one answering;
//! once that one stops, `nexero reprocess` runs.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{binary, free_port, raw_post, serve_command, wait_until_healthy, Appliance, UNIVERSAL};

/// What an older appliance refused but this version understands: what reprocess would recover.
const RECOVERABLE: &str = r#"{"Connect_Type": "Site Visit", "sesh_id": "S-LOCK"}"#;

/// Runs `command`, which must fail within a few seconds; returns its stderr.
fn refused(command: &mut Command) -> String {
    let mut process = Appliance::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
    let exit = process.exit_within(Duration::from_secs(10)).expect("a second writer must give up within 10 s, not wait");
    let mut stderr = String::new();
    process.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!exit.success(), "a second writer on the same data must fail: {exit:?}\n{stderr}");
    stderr
}

fn assert_names_database_and_holder(stderr: &str, database: &Path, holder: u32) {
    let database = database.display().to_string();
    assert!(
        stderr.contains(&database) && stderr.contains("in use") && stderr.contains(&format!("process {holder}")),
        "the message must name {database} as in use by process {holder}:\n{stderr}"
    );
}

/// The inbox as (id, outcome), and the number of events: what reprocess would change.
fn contents(database: &Path) -> (Vec<(i64, String)>, i64) {
    let conn = rusqlite::Connection::open(database).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut inbox = conn.prepare("SELECT id, outcome FROM inbox ORDER BY id").unwrap();
    let inbox = inbox.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
    let events = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    (inbox, events)
}

#[test]
fn a_second_writer_is_refused_while_serving_and_reprocess_runs_after_the_stop() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = data_dir.path().join("nexero.db");
    let port = free_port();
    let mut first = Appliance::serve(data_dir.path(), port);
    first.wait_until_healthy(port, Duration::from_secs(20));
    let holder = first.0.id();
    assert_eq!(std::fs::read_to_string(data_dir.path().join("nexero.db.lock")).unwrap().trim(), holder.to_string());

    // Something for reprocess to do: an upload it would now store, next to one the live path stored.
    assert_eq!(raw_post(port, UNIVERSAL, r#"{"View": "Home", "TotalDuration": "0:02"}"#).unwrap().0, 201);
    let conn = rusqlite::Connection::open(&database).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, body, status, outcome, detail) \
         VALUES (1764687252000, 'POST /api/v1/unreal/session', '10.0.0.7:5000', 'old-headset', ?1, 400, 'rejected', 'unknown payload')",
        [RECOVERABLE.as_bytes()],
    )
    .unwrap();
    drop(conn);
    let before = contents(&database);

    // (a) A second appliance on the same data, on a port of its own.
    let stderr = refused(&mut serve_command(data_dir.path(), free_port()));
    assert_names_database_and_holder(&stderr, &database, holder);
    assert!(wait_until_healthy(port, Duration::from_secs(5)), "the running appliance must keep answering /health");

    // (b) reprocess while it serves: refused the same way, and nothing changed.
    let stderr = refused(Command::new(binary()).arg("reprocess").arg("--data-dir").arg(data_dir.path()));
    assert_names_database_and_holder(&stderr, &database, holder);
    assert_eq!(contents(&database), before, "a refused reprocess must change nothing");
    assert!(wait_until_healthy(port, Duration::from_secs(5)), "the running appliance must keep answering /health");
    assert_eq!(std::fs::read_to_string(data_dir.path().join("nexero.db.lock")).unwrap().trim(), holder.to_string());

    // (c) Once the appliance has stopped, reprocess takes the lock and runs.
    first.terminate();
    let exit = first.exit_within(Duration::from_secs(20)).expect("nexero exits within 20 s of SIGTERM");
    assert!(exit.success(), "a SIGTERM stop is a clean exit, got {exit:?}");
    let output = Command::new(binary()).arg("reprocess").arg("--data-dir").arg(data_dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{:?}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("examined 1 unrecognised uploads: 1 now stored"), "{stdout}");
    assert_ne!(contents(&database), before, "reprocess stored the recoverable upload");
}
