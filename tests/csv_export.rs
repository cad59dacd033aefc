//! CSV exports: the tour list (every row the list's filters take, not one page) and one tour's
//! events, as spreadsheets read them: a UTF-8 byte-order mark, RFC 4180 quoting, no cell a
//! spreadsheet would run as a formula, times in UTC and in the site's time zone.

mod common;

use chrono::{Days, NaiveDate, TimeZone};
use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Kolkata;
const TOUR_HEADER: [&str; 18] = [
    "id",
    "external_id",
    "device_key",
    "headset_name",
    "status",
    "started_at_utc",
    "started_at_local",
    "ended_at_utc",
    "ended_at_local",
    "duration_seconds",
    "event_count",
    "customer_id",
    "property_id",
    "device_type",
    "last_event_at_utc",
    "time_warnings",
    "created_at_utc",
    "updated_at_utc",
];

fn noon(today: NaiveDate, days_ago: u64) -> i64 {
    let date = today.checked_sub_days(Days::new(days_ago)).unwrap();
    TZ.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap().timestamp_millis()
}

async fn post_as(server: &TestServer, device: &str, path: &str, body: Value) -> Value {
    let (status, answer) = server.post_with(&server.client, path, &body, &[("X-Device-Key", device)]).await;
    assert!((200..300).contains(&status), "{path} {body} -> {status} {answer}");
    answer
}

/// A tour that ended `seconds` after local noon `days_ago` days back, as a headset's summary.
async fn summary(server: &TestServer, device: &str, today: NaiveDate, days_ago: u64, seconds: i64, extra: Value) -> String {
    let start = noon(today, days_ago) / 1000;
    let mut body = json!({"session_start": start.to_string(), "session_end": (start + seconds).to_string()});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    post_as(server, device, UNIVERSAL, body).await["session_id"].as_str().unwrap().to_string()
}

struct Csv {
    content_type: String,
    disposition: String,
    bytes: Vec<u8>,
}

impl Csv {
    fn rows(&self) -> Vec<Vec<String>> {
        assert!(self.bytes.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark");
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&self.bytes[3..]);
        reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
    }

    fn text(&self) -> String {
        String::from_utf8(self.bytes.clone()).unwrap()
    }
}

async fn csv(server: &TestServer, client: &reqwest::Client, path: &str) -> Csv {
    let response = client.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let header = |name| response.headers()[name].to_str().unwrap().to_string();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    Csv { content_type, disposition, bytes: response.bytes().await.unwrap().to_vec() }
}

async fn list_ids(server: &TestServer, client: &reqwest::Client, query: &str) -> Vec<String> {
    let response = client.get(server.url(&format!("/api/v1/sessions?limit=200&{query}"))).send().await.unwrap();
    let list: Value = response.json().await.unwrap();
    assert!(list["total"].as_i64().unwrap() <= 200, "{query}: more than one page");
    list["data"].as_array().unwrap().iter().map(|row| row["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tour_export_holds_every_matching_row_quoted_and_formula_safe() {
    let server = TestServer::start_with(|o| o.site_timezone = Some("Asia/Kolkata".into())).await;
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    let tricky = "Smith, \"Bob\"\nJr";
    let t1 = summary(&server, "quest-a", today, 1, 200, json!({"customer_id": tricky, "property_id": "=cmd|' /C calc'!A0"})).await;
    let t2 = summary(&server, "quest-b", today, 2, 60, json!({"customer_id": "+44 20 7946", "property_id": "@SUM(A1)"})).await;
    summary(
        &server,
        "quest-b",
        today,
        3,
        700,
        json!({"customer_id": "-5", "property_id": "prop-1", "session_id": "AB12CD34EF56AB12CD34EF56AB12CD34"}),
    )
    .await;
    // More tours than a page of the list: written straight into the file, on exact days.
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    for n in 0..60i64 {
        let started = noon(today, 4 + n as u64 % 20) + n * 1000;
        db.execute(
            "INSERT INTO tour_sessions (uuid, device_key, status, started_at, ended_at, last_event_at, duration_ms, property_id, event_count,
                 created_at, updated_at)
             VALUES (?1, 'bulk-1', ?2, ?3, ?3 + ?4, ?3 + ?4, ?4, 'bulk', 0, ?3, ?3)",
            rusqlite::params![uuid::Uuid::now_v7().to_string(), if n % 3 == 0 { "timed_out" } else { "completed" }, started, (n + 1) * 7000],
        )
        .unwrap();
    }
    let client = server.signed_in("cara", "sales").await;

    let export = csv(&server, &client, "/api/v1/sessions.csv").await;
    assert_eq!(export.content_type, "text/csv; charset=utf-8");
    assert!(export.disposition.starts_with("attachment; filename=\"") && export.disposition.ends_with(".csv\""), "{}", export.disposition);
    let rows = export.rows();
    assert_eq!(rows[0], TOUR_HEADER);
    assert_eq!(rows.len(), 1 + 63, "every tour, not one page");
    let ids: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, list_ids(&server, &client, "").await);

    // RFC 4180: the comma, the quotes and the line break survive in one quoted cell.
    assert!(export.text().contains("\"Smith, \"\"Bob\"\"\nJr\""), "{}", export.text());
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap().clone();
    let column = |name: &str| TOUR_HEADER.iter().position(|c| *c == name).unwrap();
    let first = row(&t1);
    assert_eq!(first[column("customer_id")], tricky);
    assert_eq!(first[column("property_id")], "'=cmd|' /C calc'!A0", "a formula is made text");
    assert_eq!((first[column("duration_seconds")].as_str(), first[column("status")].as_str()), ("200", "completed"));
    let started = chrono::DateTime::from_timestamp_millis(noon(today, 1)).unwrap();
    assert_eq!(first[column("started_at_utc")], started.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    assert_eq!(first[column("started_at_local")], format!("{} 12:00:00", today.checked_sub_days(Days::new(1)).unwrap()));
    let second = row(&t2);
    assert_eq!((second[column("customer_id")].as_str(), second[column("property_id")].as_str()), ("'+44 20 7946", "'@SUM(A1)"));
    assert!(rows.iter().any(|r| r[column("customer_id")] == "'-5"), "text that looks like a negative number is text");

    // Exactly the list's filters and order.
    for query in [
        "status=completed&property_id=bulk",
        "status=timed_out",
        "q=smith",
        "q=ab12cd34",
        "headset=quest-b",
        "period=7d",
        "sort=duration&order=asc",
        "sort=headset",
        &format!("date_from={}&date_to={}", today.checked_sub_days(Days::new(10)).unwrap(), today.checked_sub_days(Days::new(5)).unwrap()),
    ] {
        let export = csv(&server, &client, &format!("/api/v1/sessions.csv?{query}")).await;
        let ids: Vec<String> = export.rows()[1..].iter().map(|r| r[0].clone()).collect();
        let listed = list_ids(&server, &client, query).await;
        assert!(!listed.is_empty(), "{query} matches nothing: a weak case");
        assert_eq!(ids, listed, "{query}");
    }
    assert_eq!(client.get(server.url("/api/v1/sessions.csv?sort=nope")).send().await.unwrap().status(), 400);
    assert_eq!(server.client.get(server.url("/api/v1/sessions.csv")).send().await.unwrap().status(), 401);
}

const EVENT_HEADER: [&str; 22] = [
    "event_id",
    "occurred_at_utc",
    "occurred_at_local",
    "kind",
    "event_type",
    "name",
    "zone",
    "source",
    "dwell_seconds",
    "dwell_text",
    "flagged",
    "object_name",
    "gaze_target",
    "interaction_type",
    "pos_x",
    "pos_y",
    "pos_z",
    "rot_pitch",
    "rot_yaw",
    "rot_roll",
    "received_at_utc",
    "data",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_tours_events_export_in_time_order() {
    let server = TestServer::start_with(|o| o.site_timezone = Some("Asia/Kolkata".into())).await;
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    let external = "0F0E0D0C0B0A09080706050403020100";
    let tour = summary(&server, "quest-a", today, 1, 300, json!({"session_id": external})).await;
    let t = noon(today, 1);
    let at = |seconds: i64| chrono::DateTime::from_timestamp_millis(t + seconds * 1000).unwrap().to_rfc3339();
    post_as(&server, "quest-a", "/api/v1/unreal/tracking/event", json!({"event_type": "zone_enter", "timestamp": (t + 5_000) as f64 / 1000.0,
        "session_id": tour, "zone_name": "kitchen", "position": {"x": 1.5, "y": 2.0, "z": -3.0}, "rotation": {"pitch": -10.0, "yaw": 90.0, "roll": 0.0}})).await;
    post_as(
        &server,
        "quest-a",
        UNIVERSAL,
        json!({"ViewMode": "=HYPERLINK(\"http://x\")", "Duration": "0:20", "Datetime": at(30), "sesh_id": external}),
    )
    .await;
    post_as(
        &server,
        "quest-a",
        UNIVERSAL,
        json!({"POI": "Pool", "Castegory": "Amenities", "Click_Source": "NavBar",
        "POI_Duration": "1,77,50,078:30:03", "Datetime": at(60), "sesh_id": external}),
    )
    .await;
    let client = server.signed_in("dev", "sales").await;

    let export = csv(&server, &client, &format!("/api/v1/sessions/{}/events.csv", external.to_lowercase())).await;
    assert_eq!(export.content_type, "text/csv; charset=utf-8");
    assert!(export.disposition.contains(&tour), "{}", export.disposition);
    let rows = export.rows();
    assert_eq!(rows[0], EVENT_HEADER);
    assert_eq!(rows.len(), 4);
    let column = |name: &str| EVENT_HEADER.iter().position(|c| *c == name).unwrap();
    let kinds: Vec<&str> = rows[1..].iter().map(|r| r[column("kind")].as_str()).collect();
    assert_eq!(kinds, ["tracking", "view", "poi"]);
    let enter = &rows[1];
    assert_eq!(
        (enter[column("zone")].as_str(), enter[column("pos_z")].as_str(), enter[column("rot_pitch")].as_str()),
        ("kitchen", "-3", "-10"),
        "numbers stay numbers"
    );
    let day = today.checked_sub_days(Days::new(1)).unwrap();
    assert_eq!(enter[column("occurred_at_local")], format!("{day} 12:00:05"));
    assert_eq!(
        enter[column("occurred_at_utc")],
        chrono::DateTime::from_timestamp_millis(t + 5000).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    );
    let view = &rows[2];
    assert_eq!((view[column("name")].as_str(), view[column("dwell_seconds")].as_str()), ("'=HYPERLINK(\"http://x\")", "20"));
    let pool = &rows[3];
    assert_eq!((pool[column("dwell_seconds")].as_str(), pool[column("dwell_text")].as_str()), ("", "1,77,50,078:30:03"));
    assert!(pool[column("flagged")].contains("max_dwell_secs"), "{pool:?}");
    assert_eq!(uuid::Uuid::parse_str(&pool[column("event_id")]).unwrap().get_version_num(), 7);

    assert_eq!(client.get(server.url("/api/v1/sessions/nope/events.csv")).send().await.unwrap().status(), 404);
    assert_eq!(server.client.get(server.url(&format!("/api/v1/sessions/{tour}/events.csv"))).send().await.unwrap().status(), 401);
}
