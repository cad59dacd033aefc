//! Cloud sync to the direct `postgres://` target, end to end: the real appliance in-process, a
//! throwaway PostgreSQL with packaging/cloud/schema.sql, headset uploads over real HTTP. Asserts
//! on the rows in PostgreSQL: completed tours arrive with their exact content (the shared
//! convergence check, plus a few values read back by hand), a full resend changes nothing, a late
//! event to a synced tour queues it again and converges, a cloud that is down for the whole test
//! leaves everything queued (and /health says why), and a cloud without the schema stops sync
//! with the fix in plain words.

mod common;

use std::time::Duration;

use common::cloud::{assert_all_queued, cloud_counts, health_sync, outbox, record_tour, sync_control, wait_converged, wait_sync_state, Cloud, Target};
use common::postgres::{self, query_text};
use common::{TestServer, UNIVERSAL};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(30);

async fn appliance(cloud: &Cloud) -> TestServer {
    TestServer::start_with(|o| cloud.tweak(o, 1, 500)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_tours_arrive_with_their_exact_content_and_a_resend_changes_nothing() {
    let cloud = Cloud::start(Target::Postgres).await;
    let server = appliance(&cloud).await;
    let mut tours = Vec::new();
    for (device, events) in [("quest-a", 9), ("quest-b", 1), ("quest-c", 0)] {
        tours.push(record_tour(&server.client, &server.base, device, events).await);
    }
    // A tracking event with position, rotation and metadata, in its own finished tour.
    let tracked = json!({"session_id": "headset-guid-7", "event_type": "gaze", "timestamp": "2026-01-01T10:00:00.250Z",
        "zone_name": "Kitchen", "object_name": "island", "position": {"x": 1.5, "y": 0, "z": -2},
        "rotation": {"pitch": 0, "yaw": 90, "roll": 0}, "gaze_target": "window", "dwell_time_ms": 1200,
        "interaction_type": "look", "metadata": {"hand": "left"}});
    assert_eq!(server.post("/api/v1/unreal/tracking/event", &tracked).await.0, 202);
    // A tour still running is not sent.
    let (status, _) = server
        .post_with(&server.client, UNIVERSAL, &json!({"View": "Lobby", "TotalDuration": "0:05"}), &[("x-device-key", "quest-live")])
        .await;
    assert!((200..300).contains(&status));

    let converged = wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    assert_eq!(converged.tours, 3, "the tracking-only tour is still open: {converged:?}");
    let sync = wait_sync_state(&server.base, &["idle"], CONVERGE).await;
    assert_eq!(sync["queue_depth"], 0, "{sync}");
    assert!(sync["last_success"].is_string() && sync["last_error"].is_null(), "{sync}");
    assert_eq!(sync["target"], "postgres");

    // The values, read back by hand: site id from the appliance's meta, times, jsonb.
    let site: String = server.db().query_row("SELECT value FROM meta WHERE key = 'site_id'", [], |r| r.get(0)).unwrap();
    assert_eq!(sync["site_id"], site.as_str());
    let rows = query_text(&cloud.db, &format!("SELECT site_id::text, status, duration_seconds::text FROM vr_sessions WHERE id = '{}'", tours[0])).await;
    assert_eq!(rows, vec![vec![Some(site.clone()), Some("completed".into()), Some("60".into())]]);
    let views = query_text(&cloud.db, &format!(
        "SELECT view_name, duration_string, duration_seconds::text, metadata->>'kind' FROM view_events WHERE session_id = '{}' ORDER BY event_time, id LIMIT 1", tours[0])).await;
    assert_eq!(views, vec![vec![Some("View 0".into()), Some("0:03".into()), Some("3".into()), Some("view".into())]]);
    let sites = query_text(&cloud.db, "SELECT site_id::text, (last_sync_at IS NOT NULL)::text FROM nexero_sites").await;
    assert_eq!(sites, vec![vec![Some(site.clone()), Some("true".into())]]);

    // Ending the tracking tour (a new start on its headset id... the idle sweep is slow): a summary.
    let summary = json!({"session_id": "headset-guid-7", "session_start": "2026-01-01T09:59:00Z", "session_end": "2026-01-01T10:01:00Z"});
    assert!((200..300).contains(&server.post(UNIVERSAL, &summary).await.0));
    wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    let tracking = query_text(&cloud.db,
        "SELECT position::text, rotation::text, metadata->'data'->>'hand', dwell_time_ms::text, to_char(\"timestamp\" AT TIME ZONE 'UTC', 'HH24:MI:SS.MS')
         FROM tracking_events WHERE event_type = 'gaze'").await;
    assert_eq!(tracking, vec![vec![
        Some(r#"{"x": 1.5, "y": 0.0, "z": -2.0}"#.into()),
        Some(r#"{"yaw": 90.0, "roll": 0.0, "pitch": 0.0}"#.into()),
        Some("left".into()),
        Some("1200".into()),
        Some("10:00:00.250".into()),
    ]]);

    // Everything again, as after a lost acknowledgement: the cloud ignores what it has.
    let before = cloud_counts(&cloud.db).await;
    let created = query_text(&cloud.db, "SELECT id::text, created_at::text FROM vr_sessions ORDER BY id").await;
    let writer = rusqlite::Connection::open(server.db_path()).unwrap();
    writer.busy_timeout(Duration::from_secs(10)).unwrap();
    writer.execute("UPDATE sync_outbox SET synced_version = 0, events_synced_to = 0", []).unwrap();
    drop(writer);
    assert_eq!(outbox(&server.db_path()).1, 4);
    sync_control(&server.base, server.data_dir.path(), "now").await;
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while outbox(&server.db_path()).1 > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the resend did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cloud_counts(&cloud.db).await, before, "a resend added rows");
    assert_eq!(query_text(&cloud.db, "SELECT id::text, created_at::text FROM vr_sessions ORDER BY id").await, created);
    wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_event_queues_its_synced_tour_again_and_converges() {
    let cloud = Cloud::start(Target::Postgres).await;
    let server = appliance(&cloud).await;
    let tour = record_tour(&server.client, &server.base, "quest-late", 4).await;
    wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    let count = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();
    let sql = format!("SELECT event_count::text FROM vr_sessions WHERE id = '{tour}'");
    assert_eq!(count(query_text(&cloud.db, &sql).await), "4");

    // The headset resends a view naming the finished tour.
    let late = json!({"ViewMode": "Late view", "Duration": "0:07", "sesh_id": tour});
    let (status, answer) = server.post_with(&server.client, UNIVERSAL, &late, &[("x-device-key", "quest-late")]).await;
    assert!((200..300).contains(&status), "{status} {answer}");
    assert_eq!(outbox(&server.db_path()).1, 1, "the late event queued its tour again");
    let converged = wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    assert_eq!(converged.events, 5);
    assert_eq!(count(query_text(&cloud.db, &sql).await), "5", "the tour row was updated too");
    let views = query_text(&cloud.db, &format!("SELECT count(*)::text FROM view_events WHERE session_id = '{tour}' AND view_name = 'Late view'")).await;
    assert_eq!(count(views), "1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_down_the_whole_time_leaves_everything_queued_and_health_says_why() {
    let cloud = Cloud::start(Target::Postgres).await;
    cloud.take_down();
    let server = appliance(&cloud).await;
    for device in ["q1", "q2", "q3"] {
        record_tour(&server.client, &server.base, device, 5).await;
    }
    let sync = wait_sync_state(&server.base, &["retrying"], CONVERGE).await;
    // Several rounds fail while the tours wait.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sync = health_sync(&server.base).await.as_object().cloned().map(serde_json::Value::Object).unwrap_or(sync);
    assert_eq!(sync["state"], "retrying", "{sync}");
    assert_eq!(sync["queue_depth"], 3, "{sync}");
    assert!(sync["oldest_unsynced"].is_string() && sync["last_success"].is_null(), "{sync}");
    let error = sync["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("unreachable"), "/health says why: {sync}");
    assert!(sync["next_attempt"].is_string(), "{sync}");
    assert_all_queued(&server.db_path());
    assert_eq!(cloud_counts(&cloud.db).await, [0, 0, 0, 0]);
    let attempts: i64 = server.count("SELECT min(attempts) FROM sync_outbox");
    assert!(attempts >= 1, "the failures are recorded on the tours");

    // Nothing was lost: once the cloud is back, it all arrives.
    cloud.heal();
    let converged = wait_converged(&server.db_path(), &cloud.db, CONVERGE).await;
    assert_eq!((converged.tours, converged.events), (3, 15));
    wait_sync_state(&server.base, &["idle"], CONVERGE).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_without_the_schema_stops_sync_with_the_fix_and_keeps_the_tours() {
    let pg = postgres::PgServer::start();
    let db = pg.fresh_database("no_schema").await;
    let server = TestServer::start_with(|o| {
        o.sync.url = Some(db.clone());
        o.sync.interval_secs = Some(1);
        o.sync.retry_base_secs = Some(1);
        o.sync.retry_cap_secs = Some(2);
    })
    .await;
    record_tour(&server.client, &server.base, "q1", 2).await;
    let sync = wait_sync_state(&server.base, &["stopped"], CONVERGE).await;
    let error = sync["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("42P01") && error.contains("nexero sync schema"), "{sync}");
    assert_all_queued(&server.db_path());

    // Once the schema is applied, "sync now" delivers without waiting for the slow retry.
    postgres::apply_cloud_schema(&db).await;
    sync_control(&server.base, server.data_dir.path(), "now").await;
    wait_converged(&server.db_path(), &db, CONVERGE).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_the_cloud_refuses_is_bisected_out_and_quarantined_while_the_rest_arrives() {
    let cloud = Cloud::start(Target::Postgres).await;
    let server = appliance(&cloud).await;
    let headers = [("x-device-key", "quest-poison")];
    // PostgreSQL refuses a NUL character in text (22P05); SQLite keeps it.
    for i in 0..9 {
        let name = if i == 5 { "Bad\u{0}view".to_string() } else { format!("View {i}") };
        let (status, answer) = server.post_with(&server.client, UNIVERSAL, &json!({"View": name, "TotalDuration": "0:04"}), &headers).await;
        assert!((200..300).contains(&status), "{status} {answer}");
    }
    let summary = json!({"session_start": "2026-01-01T09:00:00Z", "session_end": "2026-01-01T09:10:00Z"});
    let (_, answer) = server.post_with(&server.client, UNIVERSAL, &summary, &headers).await;
    let tour = answer["session_id"].as_str().unwrap().to_owned();

    let deadline = tokio::time::Instant::now() + CONVERGE;
    while outbox(&server.db_path()) != (1, 0, 1) {
        assert!(tokio::time::Instant::now() < deadline, "outbox {:?}", outbox(&server.db_path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let quarantined: (Option<i64>, String, String, String) = server
        .db()
        .query_row("SELECT event_id, target_table, code, payload FROM sync_quarantine", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    assert!(quarantined.0.is_some(), "an event, not the tour");
    assert_eq!((quarantined.1.as_str(), quarantined.2.as_str()), ("view_events", "22P05"));
    assert!(quarantined.3.contains("Bad\\u0000view"), "{}", quarantined.3);
    let views = query_text(&cloud.db, &format!("SELECT count(*)::text FROM view_events WHERE session_id = '{tour}'")).await;
    assert_eq!(views, vec![vec![Some("8".into())]], "the other eight arrived");
    let sync = wait_sync_state(&server.base, &["idle"], CONVERGE).await;
    assert_eq!(sync["quarantined"], 1, "{sync}");
    server.stop().await;
}
