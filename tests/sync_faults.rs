//! Cloud sync through a faulty network and a faulty cloud, for both targets: the appliance
//! (in-process, real SQLite file) sends to a real PostgreSQL, over HTTP through postrust
//! (Supabase-shaped gateway or bare PostgREST root) or straight over `postgres://`, with the
//! fault proxy in between. Tours are recorded while faults happen; once the faults stop the
//! cloud must hold exactly the appliance's finished tours and events (`wait_converged`: counts,
//! per-tour content, no duplicates), with nothing left queued and nothing quarantined.

mod common;

use std::time::Duration;

use common::cloud::{outbox, record_tour, wait_converged, wait_sync_state, Cloud, Target};
use common::fault_proxy::{Fault, FaultProxy, Seen, TcpFault};
use common::TestServer;

const CONVERGE: Duration = Duration::from_secs(90);

/// Records `tours` tours of `events` uploads each from headsets `prefix-N`.
async fn record(server: &TestServer, prefix: &str, tours: usize, events: usize) {
    for i in 0..tours {
        record_tour(&server.client, &server.base, &format!("{prefix}-{i}"), events).await;
    }
}

/// Waits until the proxy has applied `n` more faults than `before`.
async fn wait_faults(proxy: &FaultProxy, before: usize, n: usize, what: &str) {
    proxy
        .wait_for(Duration::from_secs(45), what, |seen| {
            seen.iter().filter(|s| s.fault != Fault::Pass).count() >= before + n
        })
        .await;
}

/// The first request after the `index`th one that went to the same path.
fn next_on_path(seen: &[Seen], index: usize) -> Option<&Seen> {
    seen[index + 1..].iter().find(|s| s.path == seen[index].path)
}

async fn http_faults(target: Target) {
    let cloud = Cloud::start(target).await;
    let proxy = cloud.http.as_ref().unwrap();
    let server = TestServer::start_with(|o| cloud.tweak(o, 1, 20)).await;
    let sqlite = server.db_path();

    // Nothing faulty: the first tours arrive.
    record(&server, "calm", 2, 30).await;
    wait_converged(&sqlite, &cloud.db, CONVERGE).await;

    // Each fault on the next N requests of one table (None: whatever comes next), so tour rows
    // and event batches of every table meet them.
    let phases: [(&str, Fault, u64, Option<&str>); 7] = [
        ("latency", Fault::Latency(Duration::from_millis(150)), 4, None),
        ("resets", Fault::Reset, 3, Some("tracking_events")),
        ("lost answers", Fault::LoseAnswer, 3, Some("view_events")),
        ("413", Fault::TooLarge, 3, Some("tracking_events")),
        ("429", Fault::TooMany { retry_after: 2 }, 2, Some("poi_visits")),
        ("57014", Fault::StatementTimeout, 2, Some("tracking_events")),
        ("503", Fault::Unavailable, 3, Some("vr_sessions")),
    ];
    for (i, (name, fault, n, path)) in phases.into_iter().enumerate() {
        let before = proxy.faults_applied();
        proxy.only_path(path);
        proxy.set_next(n, fault.clone());
        record(&server, &format!("p{i}"), 2, 30).await;
        wait_faults(proxy, before, n as usize, name).await;
        eprintln!("{name}: {n} faults applied; per path so far {:?}", proxy.per_path());
    }
    proxy.clear();
    let converged = wait_converged(&sqlite, &cloud.db, CONVERGE).await;
    assert_eq!(converged.tours, 16);
    assert_eq!(converged.events, 16 * 30);
    wait_sync_state(&server.base, &["idle"], Duration::from_secs(30)).await;
    let (finished, pending, quarantined) = outbox(&sqlite);
    assert_eq!((finished, pending, quarantined), (16, 0, 0), "everything delivered, nothing parked");

    let seen = proxy.seen();
    // 429 with Retry-After: 2 → that path is not asked again for 2 seconds.
    for (i, s) in seen.iter().enumerate().filter(|(_, s)| s.status == 429) {
        if let Some(next) = next_on_path(&seen, i) {
            let gap = next.at - s.at;
            assert!(gap >= Duration::from_millis(1900), "retried {gap:?} after a 429 with Retry-After: 2");
        }
    }
    // 413 → the same path's next request is smaller (the batch was halved).
    for (i, s) in seen.iter().enumerate().filter(|(_, s)| s.status == 413) {
        if let Some(next) = next_on_path(&seen, i) {
            assert!(next.bytes < s.bytes || s.bytes < 2048, "after a 413 for {} bytes the next request had {}", s.bytes, next.bytes);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_target_through_a_supabase_gateway_converges_after_every_fault() {
    http_faults(Target::Supabase).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_target_on_a_bare_postgrest_root_converges_after_every_fault() {
    http_faults(Target::Postgrest).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_in_batch_answer_is_never_retried_blindly() {
    let cloud = Cloud::start(Target::Postgrest).await;
    let proxy = cloud.http.as_ref().unwrap();
    let server = TestServer::start_with(|o| cloud.tweak(o, 1, 20)).await;
    let sqlite = server.db_path();
    proxy.only_path(Some("vr_sessions"));
    proxy.set_next(1, Fault::DuplicateInBatch);
    record(&server, "dup", 3, 12).await;
    wait_faults(proxy, 0, 1, "the 21000 answer").await;
    // The same rows are not sent again in a tight loop: within 3 s, at most a few more requests
    // to that table (a retry after a backoff, or a bisect, not dozens).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = proxy.seen().iter().filter(|s| s.path == "/vr_sessions").count();
    assert!(after <= 8, "{after} vr_sessions requests within 3 s of a 21000");
    proxy.clear();
    // Whatever the engine parked, an admin's retry puts it back and it all arrives.
    let (_, _, quarantined) = outbox(&sqlite);
    if quarantined > 0 {
        common::cloud::sync_control(&server.base, server.data_dir.path(), "retry-quarantined").await;
    }
    common::cloud::sync_control(&server.base, server.data_dir.path(), "now").await;
    wait_converged(&sqlite, &cloud.db, CONVERGE).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_target_converges_after_latency_resets_cuts_and_an_outage() {
    let cloud = Cloud::start(Target::Postgres).await;
    let tcp = cloud.tcp.as_ref().unwrap();
    let server = TestServer::start_with(|o| cloud.tweak(o, 1, 20)).await;
    let sqlite = server.db_path();

    record(&server, "calm", 2, 30).await;
    wait_converged(&sqlite, &cloud.db, CONVERGE).await;

    // Slow network.
    tcp.set(TcpFault::Latency(Duration::from_millis(30)));
    record(&server, "slow", 2, 30).await;
    wait_converged(&sqlite, &cloud.db, CONVERGE).await;
    tcp.set(TcpFault::Pass);

    // Open connections cut mid-sync, and the next reconnects reset.
    let (_, reset_before) = tcp.counts();
    record(&server, "cut", 3, 40).await;
    tcp.cut_all();
    tcp.reset_next(3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    tcp.cut_all();

    // Connections that break after a few kilobytes (inside a batch).
    tcp.set(TcpFault::CutAfter(4096));
    record(&server, "short", 2, 30).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The cloud down for a while: the state says retrying, nothing is lost.
    tcp.set(TcpFault::Refuse);
    tcp.cut_all();
    record(&server, "down", 2, 30).await;
    let sync = wait_sync_state(&server.base, &["retrying"], Duration::from_secs(30)).await;
    assert!(sync["last_error"].is_string(), "{sync}");
    assert!(sync["queue_depth"].as_i64().unwrap() >= 2, "{sync}");

    tcp.set(TcpFault::Pass);
    let converged = wait_converged(&sqlite, &cloud.db, CONVERGE).await;
    assert_eq!(converged.tours, 11);
    let (_, reset_after) = tcp.counts();
    assert!(reset_after > reset_before, "the faults happened");
    wait_sync_state(&server.base, &["idle"], Duration::from_secs(30)).await;
    assert_eq!(outbox(&sqlite), (11, 0, 0));
    server.stop().await;
}
