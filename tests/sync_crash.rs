//! Cloud sync against the real `nexero` binary: killed with SIGKILL in the middle of a sync
//! (requests in flight, some answered, some committed upstream with the answer never read),
//! then restarted on the same data directory, it converges: the cloud holds exactly the
//! finished tours and events, nothing twice. And with the cloud unreachable for the whole run
//! (across a restart) everything stays queued on the appliance, nothing is marked delivered,
//! nothing is quarantined; when the cloud comes back, all of it arrives.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cloud::{assert_all_queued, check_converged, cloud_counts, outbox, record_tour, wait_converged, wait_sync_state, Cloud, Target};
use common::fault_proxy::{Fault, TcpFault};
use common::{free_port, serve_command, Appliance};

fn spawn(cloud: &Cloud, data_dir: &Path, port: u16, batch_rows: usize) -> Appliance {
    let mut command = serve_command(data_dir, port);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in cloud.env(1, batch_rows) {
        command.env(k, v);
    }
    let mut appliance = Appliance::spawn(&mut command);
    appliance.wait_until_healthy(port, Duration::from_secs(15));
    appliance
}

async fn record(base: &str, prefix: &str, tours: usize, events: usize) {
    let client = reqwest::Client::new();
    for i in 0..tours {
        record_tour(&client, base, &format!("{prefix}-{i}"), events).await;
    }
}

async fn killed_mid_sync_then_restarted_converges(target: Target) {
    let cloud = Cloud::start(target).await;
    // Slow the cloud down so the kill lands in the middle of the queue.
    match (&cloud.http, &cloud.tcp) {
        (Some(http), _) => http.set(Fault::Latency(Duration::from_millis(120))),
        (_, Some(tcp)) => tcp.set(TcpFault::Latency(Duration::from_millis(15))),
        _ => unreachable!(),
    }
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut appliance = spawn(&cloud, data.path(), port, 10);
    record(&base, "crash", 12, 40).await;
    let sqlite = data.path().join("nexero.db");

    // Wait for a partial cloud: some events there, not all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let [_, tracking, views, pois] = cloud_counts(&cloud.db).await;
        if tracking + views + pois > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing reached the cloud");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    appliance.0.kill().unwrap(); // SIGKILL
    appliance.0.wait().unwrap();
    let partial = check_converged(&sqlite, &cloud.db).await;
    assert!(partial.is_err(), "the kill came too late to test anything: the cloud was already complete");
    eprintln!("killed with the cloud at {:?}", cloud_counts(&cloud.db).await);

    cloud.heal();
    let _appliance = spawn(&cloud, data.path(), port, 10);
    let converged = wait_converged(&sqlite, &cloud.db, Duration::from_secs(120)).await;
    assert_eq!((converged.tours, converged.events), (12, 12 * 40));
    wait_sync_state(&base, &["idle"], Duration::from_secs(30)).await;
    assert_eq!(outbox(&sqlite), (12, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_target_killed_mid_sync_converges_after_restart() {
    killed_mid_sync_then_restarted_converges(Target::Supabase).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_target_killed_mid_sync_converges_after_restart() {
    killed_mid_sync_then_restarted_converges(Target::Postgres).await;
}

async fn cloud_down_for_the_whole_run_keeps_everything_queued(target: Target) {
    let cloud = Cloud::start(target).await;
    cloud.take_down();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let sqlite = data.path().join("nexero.db");

    let appliance = spawn(&cloud, data.path(), port, 50);
    record(&base, "down", 5, 25).await;
    let sync = wait_sync_state(&base, &["retrying"], Duration::from_secs(30)).await;
    assert_eq!(sync["queue_depth"], 5, "{sync}");
    assert!(sync["last_error"].is_string() && sync["last_success"].is_null(), "{sync}");
    // Several rounds of attempts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    match (&cloud.http, &cloud.tcp) {
        (Some(http), _) => assert!(http.seen().len() >= 2, "the appliance kept trying: {:?}", http.per_path()),
        (_, Some(tcp)) => assert!(tcp.counts().1 >= 2, "the appliance kept trying: {:?}", tcp.counts()),
        _ => unreachable!(),
    }
    assert_eq!(cloud_counts(&cloud.db).await, [0, 0, 0, 0]);
    assert_all_queued(&sqlite);

    // A graceful stop and a new start, still without a cloud: still all queued.
    appliance.terminate();
    let mut appliance = appliance;
    assert!(appliance.exit_within(Duration::from_secs(20)).is_some(), "stops while the cloud is down");
    let _appliance = spawn(&cloud, data.path(), port, 50);
    record(&base, "down-again", 2, 25).await;
    let sync = wait_sync_state(&base, &["retrying"], Duration::from_secs(30)).await;
    assert_eq!(sync["queue_depth"], 7, "{sync}");
    assert_all_queued(&sqlite);
    assert_eq!(outbox(&sqlite), (7, 7, 0));
    assert_eq!(cloud_counts(&cloud.db).await, [0, 0, 0, 0]);

    // Nothing was lost: once the cloud answers, all of it arrives.
    cloud.heal();
    common::cloud::sync_control(&base, data.path(), "now").await;
    let converged = wait_converged(&sqlite, &cloud.db, Duration::from_secs(60)).await;
    assert_eq!((converged.tours, converged.events), (7, 7 * 25));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_target_down_for_the_whole_run_keeps_everything_queued() {
    cloud_down_for_the_whole_run_keeps_everything_queued(Target::Supabase).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_target_down_for_the_whole_run_keeps_everything_queued() {
    cloud_down_for_the_whole_run_keeps_everything_queued(Target::Postgres).await;
}
