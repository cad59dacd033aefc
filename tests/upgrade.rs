//! A database written by an older version is backed up, then upgraded in place, keeping its data.

mod common;

use common::UNIVERSAL;

/// The schema as the first release wrote it: `schema.sql` up to its second migration.
fn first_release_schema() -> String {
    let schema = include_str!("../schema.sql");
    let end = schema.find("-- migration: 2").expect("schema.sql has a second migration");
    schema[..end].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_database_is_backed_up_then_upgraded_keeping_its_data() {
    let data_dir = tempfile::tempdir().unwrap();
    let db_path = data_dir.path().join("nexero.db");
    {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        conn.execute_batch(&first_release_schema()).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, body, status, outcome)
             VALUES (1764687252000, 'POST /api/v1/unreal/session', '10.0.0.9:5000', 'old-headset', X'7B7D', 201, 'ignored')",
            [],
        )
        .unwrap();
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nexero::launch(common::settings(data_dir.path(), |_| {}), listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut status = None;
    for _ in 0..100 {
        let sent = client
            .post(format!("{base}{UNIVERSAL}"))
            .header("Idempotency-Key", "upgrade-check")
            .body(r#"{"View": "Home", "TotalDuration": "0:05"}"#)
            .send()
            .await;
        if let Ok(response) = sent {
            status = Some(response.status().as_u16());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, Some(201));
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    // The copy taken before the upgrade is the old file, whole.
    let backups: Vec<_> = std::fs::read_dir(data_dir.path().join("backups")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].file_name().unwrap().to_string_lossy().starts_with("nexero-schema1-"), "{backups:?}");
    let backup = rusqlite::Connection::open(&backups[0]).unwrap();
    let (version, rows): (i64, i64) = backup
        .query_row("SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM inbox)", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((version, rows), (1, 1));

    // The live file is on the new schema, with the old row and the new upload's key.
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, nexero::store::schema_version());
    let keys: Vec<(String, Option<String>)> = conn
        .prepare("SELECT device_key, idempotency_key FROM inbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], ("old-headset".to_string(), None));
    assert_eq!(keys[1].1.as_deref(), Some("upgrade-check"));
}
