//! `nexero simulate` tours are accepted in full by a real appliance, and `nexero bench` runs end to
//! end (a short smoke run: the figures themselves are read by people, never asserted).
#![cfg(unix)]

mod common;

use std::process::Command;

use common::{binary, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn simulated_headsets_complete_tours_the_appliance_fully_accepts() {
    let server = TestServer::start().await;
    let base = server.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(["simulate", "--headsets", "3", "--interval-ms", "10", "--seconds", "4", "--url", &base])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'rejected'"), 0, "every simulated body is understood");
    let completed = server.count("SELECT count(*) FROM tour_sessions WHERE status = 'completed' AND external_id IS NOT NULL");
    assert!(completed >= 3, "each headset finished at least one tour, got {completed}");
    assert_eq!(server.count("SELECT count(DISTINCT device_key) FROM tour_sessions"), 3);
    // Each tour starts with a garbage view and POI duration, flagged, never counted as dwell.
    let flagged = server.count("SELECT count(*) FROM events WHERE dwell_invalid IS NOT NULL AND dwell_ms IS NULL");
    assert!(flagged >= 2 * completed, "{flagged} flagged for {completed} tours");
    let kinds = server.count("SELECT count(DISTINCT kind) FROM events");
    assert!(kinds >= 3, "views, POIs and unit selections");
    server.stop().await;
}

#[test]
fn bench_runs_end_to_end_and_prints_every_section() {
    let args = [
        "bench",
        "--seconds",
        "1",
        "--headsets",
        "4",
        "--large-events",
        "20000",
        "--dashboard-events",
        "20000",
        "--dashboard-requests",
        "3",
    ];
    let output = Command::new(binary()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for section in ["CEILINGS", "raw rusqlite insert", "minimal axum handler", "APPLIANCE", "READ SIDE", "bench finished"] {
        assert!(stdout.contains(section), "missing {section}:\n{stdout}");
    }
    let load_lines: Vec<&str> = stdout.lines().filter(|l| l.contains("% of ")).collect();
    assert_eq!(load_lines.len(), 4, "{stdout}");
    for line in load_lines {
        let errors = line.split("% of").next().unwrap().split_whitespace().rev().nth(1).unwrap();
        assert_eq!(errors, "0", "a load phase had failed requests: {line}");
    }
    assert_eq!(stdout.lines().filter(|l| l.starts_with("2000")).count(), 2, "both read-side data sets:\n{stdout}");

    // The dashboard API phase: one line per call, each answered (a 404 would say the bench's
    // path and the route disagree), and the headsets' latency meanwhile.
    assert!(stdout.contains("DASHBOARD API on 20000 events"), "{stdout}");
    let calls = [
        "overview?period=7d",
        "overview?period=90d",
        "sessions ",
        "sessions?status=",
        "sessions?q=",
        "sessions?sort=duration",
        "sessions?limit=50&offset=",
        "sessions/{id} (",
        "sessions/{id}/events",
        "sessions.csv?period=7d",
        "sessions/stats?period=30d",
        "sessions/active/count",
        "analytics/dashboard",
        "analytics/views",
        "analytics/poi",
        "analytics/zones",
        "analytics/engagement-trends",
        "analytics/funnel",
        "live/state",
        "headsets ",
    ];
    for call in calls {
        let line = stdout.lines().find(|l| l.starts_with(call)).unwrap_or_else(|| panic!("no line for {call}:\n{stdout}"));
        let verdict = line.split("  ").last().unwrap();
        assert!(!verdict.contains("missing") && !verdict.contains("HTTP") && !verdict.contains("failed"), "{line}");
    }
    let load = stdout.lines().find(|l| l.starts_with("load = 4 headsets uploading meanwhile")).expect(&stdout);
    assert!(load.contains(" 0 failed"), "{load}");
}

/// `nexero bench --sync` on a tiny backlog: a throwaway PostgreSQL, the minimal client, and the
/// real appliance draining to both targets (postrust from tests/lib/tools.sh), every row in.
#[test]
fn bench_sync_drains_a_backlog_to_both_targets() {
    let args = ["bench", "--sync", "--sync-events", "5000", "--headsets", "4"];
    let output = Command::new(binary()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("CLOUD SYNC"), "{stdout}");
    assert!(stdout.contains("PostgreSQL on loopback, default settings"), "{stdout}");
    assert!(!stdout.contains("skipped"), "both targets run (tests/lib/tools.sh installs postrust):\n{stdout}");
    let mut rows = Vec::new();
    for label in ["minimal client (tokio-postgres)", "postgres (nexero serve)", "postgrest (nexero serve → postrust)"] {
        let line = stdout.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_else(|| panic!("no line for {label}:\n{stdout}"));
        // rows, seconds, rows/s, ratio, missing, headset p50, p99, errors, verdict
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 9, "{label}{line}");
        let ratio: f64 = fields[3].parse().unwrap_or_else(|_| panic!("a ratio: {label}{line}"));
        assert!(ratio > 0.0 && ratio.is_finite(), "{label}{line}");
        assert_eq!(fields[4], "0", "rows missing in the cloud: {label}{line}");
        assert_eq!(fields[7], "0", "failed headset uploads: {label}{line}");
        rows.push(fields[0].parse::<u64>().unwrap());
    }
    assert!(rows[0] > 5000 && rows.iter().all(|r| *r == rows[0]), "every side moves the same rows (events + tours): {rows:?}");
    assert!(stdout.contains("bench finished"), "{stdout}");
}
