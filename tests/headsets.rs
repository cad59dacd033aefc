//! The headsets registry: every device key that uploads is recorded by the writer with its
//! upload; staff list them with today's tours, admins name them.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};


async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn patch(client: &reqwest::Client, url: String, body: &str) -> (u16, Value) {
    let response = client
        .patch(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn row<'a>(list: &'a Value, device: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["device_key"] == device)
        .unwrap_or_else(|| panic!("{device} in {list}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_headset_that_uploads_is_listed_with_its_tours_today() {
    let server = TestServer::start_with(|o| o.site_timezone = Some("Asia/Kolkata".into())).await;
    let ana = server.signed_in("ana", "sales").await;
    let now = chrono::Utc::now().timestamp();
    // Yesterday's tour (its summary came late), then one in progress now, then a finished one.
    server.post_as("quest-a", json!({"session_start": (now - 30 * 3600).to_string(), "session_end": (now - 29 * 3600).to_string()})).await;
    let first = server.post_as("quest-a",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await;
    server.post_as("quest-a",
        json!({"session_start": (now - 60).to_string(), "session_end": now.to_string()}),
    )
    .await;
    let current = server.post_as("quest-a",
        json!({"View": "Pool", "TotalDuration": "0:05"}),
    )
    .await;
    assert_ne!(first["session_id"], current["session_id"]);
    server.post_as("quest-b", json!({})).await;
    // An unreadable upload does not make a headset.
    let (status, _) = server
        .post_with(
            &server.client,
            UNIVERSAL,
            &json!({"random_field": 1}),
            &[("X-Device-Key", "junk")],
        )
        .await;
    assert!(status >= 400);

    let (status, list) = get(&ana, server.url("/api/v1/headsets")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["success"], true);
    assert_eq!(
        (
            list["total"].as_i64(),
            list["page"].as_i64(),
            list["total_pages"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{list}"
    );
    let a = row(&list, "quest-a");
    assert_eq!(a["tours_today"], 2, "yesterday's tour is not today's: {a}");
    assert_eq!(a["state"], "touring");
    assert_eq!(a["current_tour"], current["session_id"]);
    assert_eq!(a["name"], Value::Null);
    let first_seen = a["first_seen_at"].as_str().unwrap();
    assert!(
        first_seen.ends_with('Z') && first_seen.len() == 24,
        "{first_seen}"
    );
    assert!(first_seen <= a["last_seen_at"].as_str().unwrap());
    let b = row(&list, "quest-b");
    assert_eq!(
        (&b["state"], &b["tours_today"], &b["current_tour"]),
        (&json!("idle"), &json!(0), &Value::Null)
    );

    // The registry as the writer kept it.
    let db = server.db();
    let (last_tour, first_seen, last_seen): (String, i64, i64) = db
        .query_row(
            "SELECT t.uuid, h.first_seen_at, h.last_seen_at FROM headsets h JOIN tour_sessions t ON t.id = h.last_tour_id WHERE h.device_key = 'quest-a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(Some(last_tour.as_str()), current["session_id"].as_str());
    assert!(first_seen <= last_seen);

    // Paging, and bad values named.
    let (status, page) = get(&ana, server.url("/api/v1/headsets?limit=1&offset=1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            page["data"].as_array().unwrap().len(),
            page["page"].as_i64(),
            page["total_pages"].as_i64()
        ),
        (1, Some(2), Some(2))
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("offset=-1", "offset"),
        ("limit=100000", "limit"),
    ] {
        let (status, body) = get(&ana, server.url(&format!("/api/v1/headsets?{query}"))).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (status, _) = server.get("/api/v1/headsets").await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_names_a_headset_and_the_live_view_uses_the_name() {
    let server = TestServer::start().await;
    let ana = server.signed_in("ana", "sales").await;
    let boss = server.signed_in("boss", "admin").await;
    server.post_as("quest-7",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await;
    let url = server.url("/api/v1/headsets/quest-7");

    let (status, body) = patch(&ana, url.clone(), r#"{"name": "Front desk"}"#).await;
    assert_eq!(status, 403, "sales staff cannot rename: {body}");
    let (status, _) = patch(&server.client, url.clone(), r#"{"name": "Front desk"}"#).await;
    assert_eq!(status, 401);

    let (status, body) = patch(&boss, url.clone(), r#"{"name": "  Front desk  "}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["device_key"], "quest-7");
    assert_eq!(body["data"]["name"], "Front desk", "the name is trimmed");
    assert_eq!(body["data"]["state"], "touring");
    assert_eq!(body["data"]["tours_today"], 1);

    // The live snapshot and the next upload's event carry the name.
    let state: Value = ana
        .get(server.url("/api/v1/live/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["data"]["headsets"][0]["name"], "Front desk",
        "{state}"
    );
    let (_, list) = get(&ana, server.url("/api/v1/headsets")).await;
    assert_eq!(row(&list, "quest-7")["name"], "Front desk");

    for (body, status) in [
        (r#"{"name": ""}"#, 422),
        (r#"{"name": "   "}"#, 422),
        (&format!(r#"{{"name": "{}"}}"#, "x".repeat(65)), 422),
        (r#"{"name": 7}"#, 422),
        (r#"{}"#, 422),
        (r#"not json"#, 400),
        (r#"["name"]"#, 400),
    ] {
        let (got, answer) = patch(&boss, url.clone(), body).await;
        assert_eq!(got, status, "{body}: {answer}");
        if status == 422 {
            assert_eq!(answer["errors"][0]["field"], "name", "{body}: {answer}");
        }
    }
    let (status, body) = patch(
        &boss,
        url.clone(),
        &format!(r#"{{"name": "{}"}}"#, "é".repeat(64)),
    )
    .await;
    assert_eq!(
        status, 200,
        "64 characters are allowed, whatever their bytes: {body}"
    );

    let (status, body) = patch(&boss, url.clone(), r#"{"name": null}"#).await;
    assert_eq!(
        (status, &body["data"]["name"]),
        (200, &Value::Null),
        "{body}"
    );
    let (status, body) = patch(
        &boss,
        server.url("/api/v1/headsets/never-seen"),
        r#"{"name": "Ghost"}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrading_fills_the_registry_from_the_tours_already_stored() {
    let data_dir = tempfile::tempdir().unwrap();
    {
        let schema = include_str!("../schema.sql");
        let before = &schema[..schema
            .find("-- migration: 4")
            .expect("schema.sql has migration 4")];
        let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        conn.execute_batch(before).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO tour_sessions (id, uuid, device_key, status, started_at, ended_at, last_event_at, duration_ms, created_at, updated_at) VALUES
                 (1, 'u1', 'old-a', 'completed', 1000, 5000, 5000, 4000, 1000, 5000),
                 (2, 'u2', 'old-b', 'timed_out', 2000, 3000, 3000, 1000, 2000, 3000),
                 (3, 'u3', 'old-a', 'completed', 9000, 12000, 12000, 3000, 9000, 12000);",
        )
        .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nexero::launch(
        common::settings(data_dir.path(), |_| {}),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    assert!(tokio::task::spawn_blocking({
        let port = base.rsplit(':').next().unwrap().parse().unwrap();
        move || common::wait_until_healthy(port, std::time::Duration::from_secs(5))
    })
    .await
    .unwrap());
    // A new upload of an old headset keeps when it was first seen.
    let answer = reqwest::Client::new()
        .post(format!("{base}{UNIVERSAL}"))
        .header("X-Device-Key", "old-b")
        .body(r#"{"View": "Home", "TotalDuration": "0:05"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    let rows: Vec<(String, i64, i64, String)> = conn
        .prepare(
            "SELECT h.device_key, h.first_seen_at, h.last_seen_at, t.uuid FROM headsets h JOIN tour_sessions t ON t.id = h.last_tour_id
             ORDER BY h.device_key",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        ("old-a".to_string(), 1000, 12000, "u3".to_string())
    );
    let (device, first_seen, last_seen, last_tour) = &rows[1];
    assert_eq!((device.as_str(), *first_seen), ("old-b", 2000));
    assert!(
        *last_seen > 1_700_000_000_000,
        "the new upload is its last sighting"
    );
    assert_ne!(last_tour, "u2", "and its tour the latest");
}
