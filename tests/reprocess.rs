//! `nexero reprocess` stores what an older parser refused but this one understands.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn refused_uploads_are_recovered_by_a_newer_parser() {
    let server = TestServer::start().await;
    assert_eq!(server.post(UNIVERSAL, &json!({"nonsense": true})).await.0, 400);
    assert_eq!(server.post(UNIVERSAL, &json!({"View": "Home", "TotalDuration": "0:02"})).await.0, 201);
    let data_dir = server.stop().await;

    // What an older appliance kept after refusing a Connect_Type event a day ago.
    let day_ago = chrono::Utc::now().timestamp_millis() - 86_400_000;
    let conn = rusqlite::Connection::open(data_dir.path().join("nexero.db")).unwrap();
    conn.execute(
        "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, body, status, outcome, detail)
         VALUES (?1, 'POST /api/v1/unreal/session', '10.0.0.7:5000', 'old-headset', ?2, 400, 'rejected', 'unknown payload')",
        rusqlite::params![day_ago, br#"{"Connect_Type": "Site Visit", "sesh_id": "S-OLD"}"#.to_vec()],
    )
    .unwrap();

    // The same refused upload sent twice with one Idempotency-Key: recovered once.
    for _ in 0..2 {
        conn.execute(
            "INSERT INTO inbox (received_at, endpoint, client_addr, device_key, body, status, outcome, detail, idempotency_key)
             VALUES (?1, 'POST /api/v1/unreal/session', '10.0.0.8:5000', 'retrying-headset', ?2, 400, 'rejected',
                     'unknown payload', 'visit-7')",
            rusqlite::params![day_ago, br#"{"Connect_Type": "Walk-in"}"#.to_vec()],
        )
        .unwrap();
    }

    let settings = common::settings(data_dir.path(), |_| {});
    let report = nexero::app::reprocess(&settings).await.unwrap();
    assert_eq!((report.examined, report.recovered, report.events, report.still_rejected), (4, 3, 2, 1));
    let walk_ins: i64 = conn.query_row("SELECT count(*) FROM events WHERE name = 'Walk-in'", [], |r| r.get(0)).unwrap();
    assert_eq!(walk_ins, 1, "the resend with the same Idempotency-Key is not stored twice");
    let outcomes: Vec<String> = common::column(&conn, "SELECT outcome FROM inbox WHERE device_key = 'retrying-headset' ORDER BY id");
    assert_eq!(outcomes, ["stored", "duplicate"]);

    let (outcome, status, tour_device): (String, i64, String) = conn
        .query_row(
            "SELECT i.outcome, i.status, t.device_key FROM inbox i JOIN tour_sessions t ON t.id = i.session_id
             WHERE i.device_key = 'old-headset'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((outcome.as_str(), status, tour_device.as_str()), ("stored", 201, "old-headset"));
    let (kind, name, received): (String, String, i64) = conn
        .query_row("SELECT kind, name, received_at FROM events WHERE kind = 'connect'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!((kind.as_str(), name.as_str(), received), ("connect", "Site Visit", day_ago), "kept at its original time");
    let external: String = conn
        .query_row("SELECT external_id FROM tour_sessions WHERE device_key = 'old-headset'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(external, "S-OLD");

    // Running it again changes nothing.
    let again = nexero::app::reprocess(&settings).await.unwrap();
    assert_eq!((again.examined, again.recovered), (1, 0));
}
