//! The cloud sync tests' own infrastructure, proven on its own: a throwaway PostgreSQL starts,
//! answers and is gone when dropped; postrust in front of it upserts (201, then 200 for the
//! same rows) with the service_role key, also through the Supabase-shaped gateway; the fault
//! proxy produces each fault exactly as scheduled; the TCP proxy delays, resets and cuts
//! PostgreSQL connections; and the convergence check accepts an exact cloud copy of the
//! appliance's finished tours and refuses every kind of difference.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cloud::{check_converged, record_tour};
use common::fault_proxy::{Fault, FaultProxy, Schedule, TcpFault, TcpProxy};
use common::postgres::{self, PgServer};
use common::postrust::Postrust;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_throwaway_postgres_starts_answers_and_is_gone_when_dropped() {
    let started = Instant::now();
    let pg = PgServer::start();
    let start_time = started.elapsed();
    eprintln!("PostgreSQL initdb + start: {start_time:?}");
    let url = pg.fresh_database("infra_one").await;
    postgres::execute(&url, "CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'a'), (2, NULL)").await;
    let rows = postgres::query_text(&url, "SELECT id, v FROM t ORDER BY id").await;
    assert_eq!(rows, vec![vec![Some("1".into()), Some("a".into())], vec![Some("2".into()), None]]);
    let typed = postgres::query(&url, "SELECT count(*) FROM t WHERE id > $1", &[&0i32]).await;
    assert_eq!(typed[0].get::<_, i64>(0), 2);
    assert_eq!(postgres::count(&url, "t").await, 2);
    postgres::apply_cloud_schema(&url).await;
    postgres::apply_cloud_schema(&url).await; // idempotent
    assert_eq!(common::cloud::cloud_counts(&url).await, [0, 0, 0, 0]);

    let port = pg.port();
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PostgreSQL still listens after drop"
    );
    assert!(start_time < Duration::from_secs(20), "start took {start_time:?}");
}

async fn upsert(client: &reqwest::Client, url: &str, key: Option<&str>, bearer: bool, prefer: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("prefer", prefer)
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("apikey", key);
        if bearer {
            request = request.bearer_auth(key);
        }
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

fn session(id: &str, status: &str) -> serde_json::Value {
    json!([{"id": id, "site_id": "00000000-0000-7000-8000-000000000001", "started_at": "2026-01-01T10:00:00Z",
            "ended_at": "2026-01-01T10:05:00Z", "duration_seconds": 300, "status": status,
            "customer_id": null, "property_id": "p1", "device_type": "quest", "external_id": null,
            "device_key": "quest-1", "event_count": 1, "time_warnings": null,
            "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:05:00Z"}])
}

#[tokio::test(flavor = "multi_thread")]
async fn postrust_upserts_201_then_200_with_the_service_role_key_and_through_the_gateway() {
    let pg = PgServer::start();
    let db = pg.fresh_database("infra_postrust").await;
    let started = Instant::now();
    let rest = Postrust::start(&db).await;
    eprintln!("postrust start: {:?}", started.elapsed());
    postgres::apply_cloud_schema(&db).await;
    rest.reload_schema("vr_sessions").await;
    let client = reqwest::Client::new();
    let merge = "resolution=merge-duplicates,return=minimal";
    let key = rest.key();
    assert_eq!(key.split('.').count(), 3, "the key is a JWT");

    let id = "0190aaaa-0000-7000-8000-000000000001";
    let url = format!("{}/vr_sessions?on_conflict=id", rest.url());
    let (s, body) = upsert(&client, &url, Some(&key), true, merge, &session(id, "completed")).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = upsert(&client, &url, Some(&key), true, merge, &session(id, "timed_out")).await;
    assert_eq!(s, 200, "{body}");
    let rows = postgres::query_text(&db, "SELECT id::text, status FROM vr_sessions").await;
    assert_eq!(rows, vec![vec![Some(id.into()), Some("timed_out".into())]]);

    // The errors the sync engine classifies, from the real server.
    let mut twice = session(id, "completed");
    twice.as_array_mut().unwrap().push(session(id, "completed")[0].clone());
    let (s, body) = upsert(&client, &url, Some(&key), true, merge, &twice).await;
    assert_eq!((s, body["code"].as_str()), (500, Some("21000")), "{body}");
    let event = json!([{"id": "0190aaaa-0000-7000-8000-0000000000e1", "session_id": "0190aaaa-0000-7000-8000-00000000dead",
        "event_type": "x", "timestamp": "2026-01-01T10:00:01Z", "zone_name": null, "object_name": null,
        "position": null, "rotation": null, "gaze_target": null, "dwell_time_ms": null,
        "interaction_type": null, "metadata": {"kind": "custom"}, "site_id": "00000000-0000-7000-8000-000000000001"}]);
    let events_url = format!("{}/tracking_events?on_conflict=id", rest.url());
    let (s, body) = upsert(&client, &events_url, Some(&key), true, "resolution=ignore-duplicates", &event).await;
    assert_eq!((s, body["code"].as_str()), (409, Some("23503")), "{body}");
    let (s, body) = upsert(&client, &url, None, false, merge, &session(id, "completed")).await;
    assert_eq!(s, 401, "no key: {body}");
    let (s, body) = upsert(&client, &url, Some(&rest.key_for("anon")), true, merge, &session(id, "completed")).await;
    assert!(s == 401 || s == 403, "anon key: {s} {body}");

    // Supabase's shape: /rest/v1 root, apikey only (the gateway adds the Bearer).
    let gateway = FaultProxy::start_supabase(&rest.url(), &key).await;
    assert!(gateway.url().ends_with("/rest/v1"));
    let id2 = "0190aaaa-0000-7000-8000-000000000002";
    let gurl = format!("{}/vr_sessions?on_conflict=id", gateway.url());
    let (s, body) = upsert(&client, &gurl, Some(&key), false, merge, &session(id2, "completed")).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = upsert(&client, &gurl, Some(&key), false, merge, &session(id2, "completed")).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = upsert(&client, &gurl, None, false, merge, &session(id2, "completed")).await;
    assert_eq!(s, 401);
    assert!(body.get("code").is_none() && body["message"] == "No API key found in request", "{body}");
    let (s, _) = upsert(&client, &gurl, Some("sb_secret_wrong"), false, merge, &session(id2, "completed")).await;
    assert_eq!(s, 401);
    let (s, _) = upsert(&client, &format!("http://127.0.0.1:{}/vr_sessions", gateway.port()), Some(&key), false, merge, &session(id2, "completed")).await;
    assert_eq!(s, 404, "without /rest/v1 the gateway has no route");
    assert_eq!(postgres::count(&db, "vr_sessions").await, 2);
}

/// A loopback upstream answering 201 with the request's path, counting what reached it.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (axum::http::StatusCode::CREATED, [("x-upstream", "yes")], format!("{} {}", uri, body.len()))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

async fn send(client: &reqwest::Client, url: &str) -> Result<(u16, Option<String>, String), reqwest::Error> {
    let r = client.post(url).body("[{\"id\":1}]").send().await?;
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    Ok((status, retry, r.text().await?))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fault_proxy_injects_each_fault_as_scheduled() {
    let (target, hits) = upstream().await;
    let proxy = FaultProxy::start(&target).await;
    let client = reqwest::Client::new();
    let url = format!("{}/tracking_events?on_conflict=id", proxy.url());

    let (s, _, body) = send(&client, &url).await.unwrap();
    assert_eq!((s, body.as_str()), (201, "/tracking_events?on_conflict=id 10"), "pass-through keeps path, query and body");

    proxy.set(Fault::Latency(Duration::from_millis(300)));
    let t0 = Instant::now();
    assert_eq!(send(&client, &url).await.unwrap().0, 201);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    proxy.set(Fault::Reset);
    let before = hits.load(Ordering::SeqCst);
    let err = send(&client, &url).await.expect_err("a reset gives no answer");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert_eq!(hits.load(Ordering::SeqCst), before, "a reset request never reaches the cloud");

    proxy.set(Fault::LoseAnswer);
    send(&client, &url).await.expect_err("a lost answer gives no answer");
    assert_eq!(hits.load(Ordering::SeqCst), before + 1, "a lost answer's request did reach the cloud");

    let cases = [
        (Fault::TooLarge, 413, None, None),
        (Fault::TooMany { retry_after: 7 }, 429, Some("7"), None),
        (Fault::StatementTimeout, 500, None, Some("57014")),
        (Fault::Unavailable, 503, None, Some("PGRST001")),
        (Fault::DuplicateInBatch, 500, None, Some("21000")),
        (Fault::Answer { status: 502, body: "bad gateway".into() }, 502, None, None),
    ];
    for (fault, status, retry, code) in cases {
        proxy.set(fault.clone());
        let (s, r, body) = send(&client, &url).await.unwrap();
        assert_eq!((s, r.as_deref()), (status, retry), "{fault:?}");
        if let Some(code) = code {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["code"], code, "{fault:?}: {body}");
        }
    }

    // Deterministic schedules.
    proxy.set_next(2, Fault::Unavailable);
    let statuses: Vec<u16> = futures_statuses(&client, &url, 4).await;
    assert_eq!(statuses, [503, 503, 201, 201]);
    proxy.set_every(3, Fault::TooLarge);
    assert_eq!(futures_statuses(&client, &url, 7).await, [201, 201, 413, 201, 201, 413, 201]);
    proxy.schedule(Fault::Unavailable, Schedule::Fraction { p: 0.5, seed: 42 });
    let first = futures_statuses(&client, &url, 20).await;
    proxy.schedule(Fault::Unavailable, Schedule::Fraction { p: 0.5, seed: 42 });
    assert_eq!(futures_statuses(&client, &url, 20).await, first, "a seeded fraction repeats");
    assert!(first.contains(&503) && first.contains(&201), "{first:?}");

    // Faults limited to one path; the counters.
    proxy.set(Fault::Unavailable);
    proxy.only_path(Some("view_events"));
    assert_eq!(send(&client, &url).await.unwrap().0, 201);
    let (s, _, _) = send(&client, &format!("{}/view_events", proxy.url())).await.unwrap();
    assert_eq!(s, 503);
    proxy.clear();
    assert_eq!(send(&client, &format!("{}/view_events", proxy.url())).await.unwrap().0, 201);
    let per_path = proxy.per_path();
    assert_eq!(per_path["/view_events"], 2);
    assert_eq!(per_path["/tracking_events"] as usize, proxy.seen().len() - 2);
    assert!(proxy.faults_applied() > 10);
}

async fn futures_statuses(client: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send(client, url).await.unwrap().0);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tcp_proxy_delays_resets_and_cuts_postgres_connections() {
    let pg = PgServer::start();
    let proxy = TcpProxy::start(([127, 0, 0, 1], pg.port()).into()).await;
    let url = proxy.rewrite(&pg.url());
    assert_ne!(url, pg.url());
    assert_eq!(postgres::query_text(&url, "SELECT 1").await[0][0].as_deref(), Some("1"));

    proxy.set(TcpFault::Latency(Duration::from_millis(100)));
    let t0 = Instant::now();
    postgres::query_text(&url, "SELECT 1").await;
    assert!(t0.elapsed() >= Duration::from_millis(400), "startup, auth and query each wait: {:?}", t0.elapsed());
    proxy.set(TcpFault::Pass);

    proxy.reset_next(1);
    let refused = tokio_postgres::connect(&url, tokio_postgres::NoTls).await;
    assert!(refused.is_err(), "the next connection is reset");
    assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_ok(), "then they pass again");

    let client = postgres::connect(&url).await;
    client.simple_query("SELECT 1").await.unwrap();
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.simple_query("SELECT 1").await.is_err(), "an open connection is cut");

    proxy.set(TcpFault::Refuse);
    assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_err(), "the cloud is down");
    proxy.set(TcpFault::Pass);
    let (accepted, reset) = proxy.counts();
    assert!(accepted >= 6 && reset >= 3, "{accepted} accepted, {reset} reset");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_convergence_check_accepts_an_exact_copy_and_refuses_any_difference() {
    let pg = PgServer::start();
    let db = pg.fresh_database("infra_converge").await;
    postgres::apply_cloud_schema(&db).await;
    let server = common::TestServer::start().await;
    let mut tours = Vec::new();
    for (i, n) in [5usize, 8, 1].into_iter().enumerate() {
        tours.push(record_tour(&server.client, &server.base, &format!("quest-{i}"), n).await);
    }
    // An active tour: not to be synced.
    server.post(common::UNIVERSAL, &json!({"View": "Lobby", "TotalDuration": "0:02"})).await;
    let sqlite = server.db_path();
    let finished = server.count("SELECT count(*) FROM tour_sessions WHERE status = 'completed'");
    assert_eq!(finished, 3, "each recorded tour is completed");
    assert!(check_converged(&sqlite, &db).await.is_err(), "an empty cloud is not converged");

    copy_to_cloud(&server.db(), &db).await;
    let converged = check_converged(&sqlite, &db).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(converged.tours, 3);
    assert_eq!(converged.events, 14);

    let tour = &tours[1];
    // A missing event, a changed event, a stray row, a duplicate across tables, a changed tour.
    let breakages = [
        format!("DELETE FROM view_events WHERE id = (SELECT id FROM view_events WHERE session_id = '{tour}' LIMIT 1)"),
        format!("UPDATE poi_visits SET duration_ms = duration_ms + 1 WHERE id = (SELECT id FROM poi_visits WHERE session_id = '{tour}' LIMIT 1)"),
        format!("INSERT INTO tracking_events (id, session_id, event_type, \"timestamp\", metadata, site_id) SELECT gen_random_uuid(), '{tour}', 'x', now(), '{{\"kind\":\"custom\"}}', site_id FROM vr_sessions WHERE id = '{tour}'"),
        format!("INSERT INTO tracking_events (id, session_id, event_type, \"timestamp\", metadata, site_id) SELECT id, session_id, 'view', event_time, '{{}}', site_id FROM view_events WHERE session_id = '{tour}' LIMIT 1"),
        format!("UPDATE vr_sessions SET status = 'abandoned' WHERE id = '{tour}'"),
    ];
    for breakage in breakages {
        postgres::execute(&db, &breakage).await;
        let err = check_converged(&sqlite, &db).await.expect_err(&breakage);
        eprintln!("refused as expected: {}", err.lines().nth(1).unwrap_or(""));
        postgres::execute(&db, "TRUNCATE vr_sessions CASCADE").await;
        copy_to_cloud(&server.db(), &db).await;
        check_converged(&sqlite, &db).await.unwrap_or_else(|e| panic!("{e}"));
    }
    server.stop().await;
}

/// What a correct sync would write, done by hand from the SQLite file (the test's stand-in
/// for the engine, to prove the check itself).
async fn copy_to_cloud(conn: &rusqlite::Connection, db: &str) {
    let site = "00000000-0000-7000-8000-0000000000aa";
    let client = postgres::connect(db).await;
    let ts = |ms: Option<i64>| ms.map(|ms| format!("to_timestamp({ms}::numeric / 1000)")).unwrap_or("NULL".into());
    let lit = |s: Option<String>| s.map(|s| format!("'{}'", s.replace('\'', "''"))).unwrap_or("NULL".into());
    let mut tours = conn.prepare("SELECT uuid, status, started_at, ended_at, external_id, device_key, customer_id, property_id, device_type, event_count, id, time_warnings FROM tour_sessions WHERE status IN ('completed','timed_out','abandoned')").unwrap();
    let tours: Vec<(String, String, i64, Option<i64>, Option<String>, String, Option<String>, Option<String>, Option<String>, i64, i64, Option<String>)> = tours
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (uuid, status, started, ended, external, device, customer, property, device_type, count, rowid, warnings) in tours {
        client.batch_execute(&format!(
            "INSERT INTO vr_sessions (id, site_id, started_at, ended_at, status, external_id, device_key, customer_id, property_id, device_type, event_count, time_warnings)
             VALUES ('{uuid}', '{site}', {}, {}, '{status}', {}, {}, {}, {}, {}, {count}, {})",
            ts(Some(started)), ts(ended), lit(external), lit(Some(device)), lit(customer), lit(property), lit(device_type), lit(warnings)
        )).await.unwrap();
        let mut events = conn.prepare("SELECT uuid, kind, event_type, name, zone, source, occurred_at, received_at, dwell_text, dwell_ms, object_name, gaze_target, interaction_type FROM events WHERE session_id = ?1").unwrap();
        let rows: Vec<(Vec<u8>, String, String, Option<String>, Option<String>, Option<String>, i64, i64, Option<String>, Option<i64>, Option<String>, Option<String>, Option<String>)> = events
            .query_map([rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, kind, event_type, name, zone, source, occurred, received, dwell_text, dwell_ms, object, gaze, interaction) in rows {
            let id = uuid::Uuid::from_slice(&id).unwrap();
            let dwell = dwell_ms.map(|d| d.to_string()).unwrap_or("NULL".into());
            let meta = format!("jsonb_build_object('kind', {}::text, 'event_type', {}::text, 'name', {}::text)", lit(Some(kind.clone())), lit(Some(event_type.clone())), lit(name.clone()));
            let sql = match kind.as_str() {
                "view" => format!("INSERT INTO view_events (id, session_id, view_name, duration_string, duration_ms, received_at, event_time, metadata, site_id) VALUES ('{id}', '{uuid}', {}, {}, {dwell}, {}, {}, {meta}, '{site}')",
                    lit(name), lit(dwell_text), ts(Some(received)), ts(Some(occurred))),
                "poi" => format!("INSERT INTO poi_visits (id, session_id, poi_name, parent_zone, poi_source, duration_string, duration_ms, received_at, event_time, metadata, site_id) VALUES ('{id}', '{uuid}', {}, {}, {}, {}, {dwell}, {}, {}, {meta}, '{site}')",
                    lit(name), lit(zone), lit(source), lit(dwell_text), ts(Some(received)), ts(Some(occurred))),
                _ => format!("INSERT INTO tracking_events (id, session_id, event_type, \"timestamp\", zone_name, object_name, gaze_target, dwell_time_ms, interaction_type, metadata, site_id) VALUES ('{id}', '{uuid}', {}, {}, {}, {}, {}, {dwell}, {}, {meta}, '{site}')",
                    lit(Some(event_type.clone())), ts(Some(occurred)), lit(zone), lit(object), lit(gaze), lit(interaction)),
            };
            client.batch_execute(&sql).await.unwrap();
        }
    }
}
