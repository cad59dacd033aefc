//! The dashboard JSON API on known data: tours posted as headsets post them (summaries with past
//! times, events naming their tour, a live tour), in a site time zone that is not UTC. Every
//! figure is checked exactly: periods and their comparisons, filters, search, sort, pages, one
//! tour's detail; and who may ask (signed in, an API token, nobody).

mod common;

use chrono::{Days, NaiveDate, TimeZone};
use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

/// What `seed` made: S1..S6 (index 0..5) ended tours on past days, and one live tour.
struct Seed {
    today: NaiveDate,
    tours: Vec<String>,
    live: String,
}

impl Seed {
    fn day(&self, days_ago: u64) -> String {
        self.today.checked_sub_days(Days::new(days_ago)).unwrap().to_string()
    }
}

/// Local noon `days_ago` days before today, in unix ms.
fn noon(today: NaiveDate, days_ago: u64) -> i64 {
    let date = today.checked_sub_days(Days::new(days_ago)).unwrap();
    TZ.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap().timestamp_millis()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

async fn post_as(server: &TestServer, device: &str, path: &str, body: Value) -> Value {
    let (status, answer) = server.post_with(&server.client, path, &body, &[("X-Device-Key", device)]).await;
    assert!((200..300).contains(&status), "{path} {body} -> {status} {answer}");
    answer
}

/// The headset's own id of tour `n` (1-based).
fn external(n: usize) -> String {
    format!("E{n}A1B2C3D4E5F60718293A4B5C6D7E8F")
}

async fn seed(server: &TestServer) -> Seed {
    let today = chrono::Utc::now().with_timezone(&TZ).date_naive();
    // (device, days ago, seconds, customer, property)
    let summaries = [
        ("quest-a", 1, 200, Some("cust-1"), "prop-1"),
        ("quest-a", 2, 650, Some("cust-1"), "prop-2"),
        ("quest-b", 3, 100, Some("cust-2"), "prop-1"),
        ("quest-b", 9, 900, Some("cust-3"), "prop-1"),
        ("quest-c", 10, 300, None, "prop-2"),
        ("quest-c", 40, 60, None, "prop-3"),
    ];
    let mut tours = Vec::new();
    for (n, (device, days_ago, seconds, customer, property)) in summaries.into_iter().enumerate() {
        let start = noon(today, days_ago) / 1000;
        let mut body = json!({"session_id": external(n + 1), "session_start": start.to_string(),
                              "session_end": (start + seconds).to_string(), "property_id": property});
        if let Some(customer) = customer {
            body["customer_id"] = json!(customer);
        }
        let answer = post_as(server, device, UNIVERSAL, body).await;
        tours.push(answer["session_id"].as_str().unwrap().to_string());
    }
    // S1's events, in the old test client's tracking shape and the G5 footprints, naming the tour.
    let t1 = noon(today, 1);
    let at = |seconds: i64| iso(t1 + seconds * 1000);
    let s1 = external(1).to_lowercase();
    post_as(
        server,
        "quest-a",
        "/api/v1/unreal/tracking/event",
        json!({"event_type": "zone_enter", "timestamp": (t1 + 10_000) as f64 / 1000.0,
        "session_id": tours[0], "zone_name": "kitchen", "position": {"x": 1.5, "y": 2.0, "z": -3.0},
        "rotation": {"pitch": 0.0, "yaw": 90.0, "roll": 0.0}}),
    )
    .await;
    post_as(
        server,
        "quest-a",
        UNIVERSAL,
        json!({"POI": "Gym", "Castegory": "Amenities", "Click_Source": "Floating",
        "POI_Duration": "0:45", "Datetime": at(60), "sesh_id": s1}),
    )
    .await;
    post_as(server, "quest-a", UNIVERSAL, json!({"ViewMode": "Amenities", "Duration": "1:10", "Datetime": at(90), "sesh_id": s1})).await;
    post_as(
        server,
        "quest-a",
        UNIVERSAL,
        json!({"POI": "Pool", "Castegory": "Amenities", "Click_Source": "NavBar",
        "POI_Duration": "1,77,50,078:30:03", "Datetime": at(120), "sesh_id": s1}),
    )
    .await;
    post_as(
        server,
        "quest-a",
        UNIVERSAL,
        json!({"Name": "A-101", "Sqft": "1250", "Type": "2BHK", "Duration": "0:30",
        "Datetime": at(150), "sesh_id": s1}),
    )
    .await;
    post_as(
        server,
        "quest-a",
        "/api/v1/unreal/tracking/event",
        json!({"event_type": "zone_exit", "timestamp": (t1 + 170_000) as f64 / 1000.0,
        "session_id": tours[0], "zone_name": "kitchen", "dwell_time_ms": 160_000}),
    )
    .await;
    // S2 and S4 (the previous week) by the headset's id.
    let t2 = noon(today, 2);
    post_as(
        server,
        "quest-a",
        UNIVERSAL,
        json!({"ViewMode": "Location", "Duration": "0:20", "Datetime": iso(t2 + 30_000), "sesh_id": external(2)}),
    )
    .await;
    post_as(
        server,
        "quest-a",
        UNIVERSAL,
        json!({"POI": "Gym", "Castegory": "Amenities", "Click_Source": "Floating",
        "POI_Duration": "0:15", "Datetime": iso(t2 + 60_000), "sesh_id": external(2)}),
    )
    .await;
    post_as(
        server,
        "quest-b",
        UNIVERSAL,
        json!({"ViewMode": "Amenities", "Duration": "0:40", "Datetime": iso(noon(today, 9) + 50_000),
        "sesh_id": external(4)}),
    )
    .await;
    // A tour in progress now, as real headsets send it: no ids, no times.
    let live = post_as(server, "quest-live", UNIVERSAL, json!({"View": "Home", "TotalDuration": "0:05"})).await;
    post_as(server, "quest-live", UNIVERSAL, json!({"POI": "Gym", "Parent": "Amenities", "POI_Duration": "0:45"})).await;
    Seed { today, tours, live: live["session_id"].as_str().unwrap().to_string() }
}

async fn start() -> (TestServer, Seed, reqwest::Client) {
    let server = TestServer::start_with(|o| o.site_timezone = Some("Asia/Kolkata".into())).await;
    let seed = seed(&server).await;
    let client = server.signed_in("ana", "sales").await;
    (server, seed, client)
}

async fn get(server: &TestServer, client: &reqwest::Client, path: &str) -> (u16, Value) {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The whole answer of a GET that must succeed.
async fn answer(server: &TestServer, client: &reqwest::Client, path: &str) -> Value {
    let (status, body) = get(server, client, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["success"], true, "{path}: {body}");
    body
}

async fn data(server: &TestServer, client: &reqwest::Client, path: &str) -> Value {
    answer(server, client, path).await["data"].clone()
}

/// The tour ids a list answer holds, in order.
fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|row| row["id"].as_str().unwrap().to_string()).collect()
}

const ROUTES: [&str; 15] = [
    "/api/v1/overview",
    "/api/v1/sessions",
    "/api/v1/sessions.csv",
    "/api/v1/sessions/stats",
    "/api/v1/sessions/active/count",
    "/api/v1/sessions/{id}",
    "/api/v1/sessions/{id}/events",
    "/api/v1/sessions/{id}/events.csv",
    "/api/v1/analytics/dashboard",
    "/api/v1/analytics/views",
    "/api/v1/analytics/poi",
    "/api/v1/analytics/zones",
    "/api/v1/analytics/engagement-trends",
    "/api/v1/analytics/engagement",
    "/api/v1/analytics/funnel",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_route_wants_a_signed_in_user_or_a_read_only_token() {
    let server = TestServer::start().await;
    let tour = post_as(&server, "quest-x", UNIVERSAL, json!({"View": "Home", "TotalDuration": "0:05"})).await["session_id"].clone();
    for route in ROUTES {
        let path = route.replace("{id}", tour.as_str().unwrap());
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 401, "{path} signed out: {body}");
        assert_eq!(body["code"], "UNAUTHORIZED");
    }
    let output = std::process::Command::new(common::binary())
        .args(["token", "add", "crm", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .expect("nexero token add runs");
    assert!(output.status.success(), "nexero token add: {}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().lines().next().unwrap().trim().to_string();
    for route in ROUTES {
        let path = route.replace("{id}", tour.as_str().unwrap());
        let response = server.client.get(server.url(&path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} with a token");
    }
    let wrong = server.client.get(server.url("/api/v1/sessions")).bearer_auth("0".repeat(64)).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    // A token only reads: a change (here: signing out) is refused.
    let post = server.client.post(server.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(post.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_compares_each_period_with_the_one_before() {
    let (server, seed, client) = start().await;
    let overview = data(&server, &client, "/api/v1/overview?period=7d").await;
    assert_eq!(
        overview["period"],
        json!({"from": seed.day(6), "to": seed.day(0), "days": 7, "previous_from": seed.day(13), "previous_to": seed.day(7)})
    );
    let kpis = &overview["kpis"];
    // This week S1 S2 S3 and the live tour; the week before S4 S5.
    assert_eq!(kpis["tours"], json!({"current": 4, "previous": 2, "change_pct": 100}));
    // (200 + 650 + 100) / 3 = 316.7 against (900 + 300) / 2; the live tour has no duration yet.
    assert_eq!(kpis["avg_tour_seconds"], json!({"current": 317, "previous": 600, "change_pct": -47}));
    assert_eq!(kpis["engaged_tours"], json!({"current": 2, "previous": 2, "change_pct": 0}));
    assert_eq!(kpis["high_intent_tours"], json!({"current": 1, "previous": 1, "change_pct": 0}));
    assert_eq!(kpis["unique_headsets"], json!({"current": 3, "previous": 2, "change_pct": 50}));
    let per_day = overview["tours_per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 7);
    let days: Vec<(String, i64, String, i64)> = per_day
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().into(),
                d["tours"].as_i64().unwrap(),
                d["previous_date"].as_str().unwrap().into(),
                d["previous_tours"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, i64, String, i64)> = [(6, 0, 0), (5, 0, 0), (4, 0, 0), (3, 1, 1), (2, 1, 1), (1, 1, 0), (0, 1, 0)]
        .iter()
        .map(|&(ago, tours, previous)| (seed.day(ago), tours, seed.day(ago + 7), previous))
        .collect();
    assert_eq!(days, expected);
    assert_eq!(
        overview["top_views"],
        json!([{"name": "Amenities", "visits": 1, "dwell_seconds": 70.0}, {"name": "Location", "visits": 1, "dwell_seconds": 20.0},
               {"name": "Home", "visits": 1, "dwell_seconds": 5.0}])
    );
    // The flagged Pool timer counts as a visit with no dwell.
    assert_eq!(
        overview["top_pois"],
        json!([{"name": "Gym", "zone": "Amenities", "visits": 3, "dwell_seconds": 105.0}, {"name": "Pool", "zone": "Amenities", "visits": 1, "dwell_seconds": 0.0}])
    );
    assert_eq!(overview["top_units"], json!([{"name": "A-101", "zone": "2BHK", "visits": 1, "dwell_seconds": 30.0}]));
    assert_eq!(
        overview["funnel"],
        json!([{"name": "Tours", "value": 4}, {"name": "Engaged", "value": 2}, {"name": "High intent", "value": 1}])
    );

    // One property: its tours and its roll-up only.
    let prop1 = data(&server, &client, "/api/v1/overview?period=7d&property_id=prop-1").await;
    assert_eq!(prop1["kpis"]["tours"], json!({"current": 2, "previous": 1, "change_pct": 100}));
    assert_eq!(prop1["top_views"], json!([{"name": "Amenities", "visits": 1, "dwell_seconds": 70.0}]));
    // Custom days; nothing before them: no change to show.
    let custom = data(&server, &client, &format!("/api/v1/overview?date_from={}&date_to={}", seed.day(10), seed.day(9))).await;
    assert_eq!(custom["period"]["days"], 2);
    assert_eq!(custom["kpis"]["tours"], json!({"current": 2, "previous": 0, "change_pct": null}));
    assert_eq!(custom["top_views"], json!([{"name": "Amenities", "visits": 1, "dwell_seconds": 40.0}]));
    let today = data(&server, &client, "/api/v1/overview?period=today").await;
    assert_eq!((today["period"]["days"].clone(), today["kpis"]["tours"]["current"].clone()), (json!(1), json!(1)));
    assert_eq!(data(&server, &client, "/api/v1/overview").await["period"]["days"], 7, "7 days unless asked");

    // The old API's KPIs over the same week.
    let old = data(&server, &client, "/api/v1/analytics/dashboard?period=7d").await;
    assert_eq!(
        old,
        json!({"total_leads": 2, "leads_change": 100, "total_views": 3, "views_change": 200, "active_sessions": 1, "sessions_change": 100,
               "conversion_rate": 25.0, "conversion_change": -50, "avg_engagement_time": 316.67, "engagement_change": -47,
               "period": "7d", "period_days": 7})
    );
    assert_eq!(
        data(&server, &client, "/api/v1/sessions/stats?period=1w").await,
        json!({"period": "1w", "total_sessions": 4, "completed_sessions": 3, "avg_duration_seconds": 316, "unique_customers": 2, "unique_headsets": 3})
    );
    assert_eq!(data(&server, &client, "/api/v1/sessions/active/count").await, json!({"count": 1, "active_sessions": 1}));
    assert_eq!(
        data(&server, &client, "/api/v1/analytics/engagement-trends?period=3d").await,
        json!([{"name": seed.day(2), "date": seed.day(2), "value": 1, "session_count": 1, "avg_duration": 650},
               {"name": seed.day(1), "date": seed.day(1), "value": 1, "session_count": 1, "avg_duration": 200},
               {"name": seed.day(0), "date": seed.day(0), "value": 1, "session_count": 1, "avg_duration": 0}])
    );
    assert_eq!(data(&server, &client, "/api/v1/analytics/engagement?period=3").await.as_array().unwrap().len(), 3);
    assert_eq!(
        data(&server, &client, "/api/v1/analytics/funnel").await,
        json!([{"name": "Sessions", "value": 6}, {"name": "Engaged", "value": 4}, {"name": "High Intent", "value": 2}, {"name": "Follow Up Scheduled", "value": 0}])
    );
    assert_eq!(data(&server, &client, "/api/v1/analytics/funnel?period=3m").await[0]["value"], 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn view_poi_and_zone_analytics_count_attributed_events() {
    let (server, _seed, client) = start().await;
    assert_eq!(
        data(&server, &client, "/api/v1/analytics/views").await,
        json!([{"view_name": "Amenities", "view_count": 2, "avg_duration": 55, "total_duration": 110},
               {"view_name": "Location", "view_count": 1, "avg_duration": 20, "total_duration": 20},
               {"view_name": "Home", "view_count": 1, "avg_duration": 5, "total_duration": 5}])
    );
    assert_eq!(data(&server, &client, "/api/v1/analytics/views?view_name=Home").await.as_array().unwrap().len(), 1);
    let pois = json!([{"poi_name": "Gym", "parent_zone": "Amenities", "total_visits": 3, "total_duration_seconds": 105, "avg_duration_seconds": 35},
                      {"poi_name": "Pool", "parent_zone": "Amenities", "total_visits": 1, "total_duration_seconds": 0, "avg_duration_seconds": 0}]);
    assert_eq!(data(&server, &client, "/api/v1/analytics/poi?period=30d").await, pois);
    assert_eq!(data(&server, &client, "/api/v1/analytics/poi?parent_zone=Amenities").await, pois);
    assert_eq!(data(&server, &client, "/api/v1/analytics/poi?parent_zone=Lobby").await, json!([]));
    assert_eq!(
        data(&server, &client, "/api/v1/analytics/zones").await,
        json!([{"zone_name": "Amenities", "total_visits": 4, "total_dwell_time_ms": 105_000, "avg_dwell_time_ms": 35_000, "entry_count": 0, "exit_count": 0},
               {"zone_name": "kitchen", "total_visits": 2, "total_dwell_time_ms": 160_000, "avg_dwell_time_ms": 160_000, "entry_count": 1, "exit_count": 1}])
    );
    assert_eq!(
        data(&server, &client, "/api/v1/analytics/zones?property_id=prop-2").await,
        json!([{"zone_name": "Amenities", "total_visits": 1, "total_dwell_time_ms": 15_000, "avg_dwell_time_ms": 15_000, "entry_count": 0, "exit_count": 0}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tour_list_filters_searches_sorts_and_pages() {
    let (server, seed, client) = start().await;
    let s = |n: usize| seed.tours[n - 1].clone();
    let all = answer(&server, &client, "/api/v1/sessions").await;
    assert_eq!(ids(&all), [seed.live.clone(), s(1), s(2), s(3), s(4), s(5), s(6)]);
    assert_eq!(
        (all["total"].clone(), all["page"].clone(), all["limit"].clone(), all["total_pages"].clone()),
        (json!(7), json!(1), json!(50), json!(1))
    );
    let row = &all["data"][1];
    assert_eq!(row["external_id"], external(1));
    assert_eq!(
        (row["status"].as_str(), row["duration_seconds"].as_i64(), row["event_count"].as_i64()),
        (Some("completed"), Some(200), Some(6))
    );
    assert_eq!(
        (row["customer_id"].as_str(), row["property_id"].as_str(), row["device_key"].as_str()),
        (Some("cust-1"), Some("prop-1"), Some("quest-a"))
    );
    assert_eq!(
        row["started_at"].as_str().unwrap(),
        chrono::DateTime::from_timestamp_millis(noon(seed.today, 1)).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    );
    for key in ["ended_at", "created_at", "updated_at", "last_event_at", "headset_name", "device_type", "time_warnings"] {
        assert!(row.get(key).is_some(), "{key} missing from {row}");
    }

    // Name headset B (as an admin would) to filter and search by its name.
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.execute(
        "INSERT INTO headsets (device_key, name, first_seen_at, last_seen_at) VALUES ('quest-b', 'Showroom B', 0, 0)
         ON CONFLICT (device_key) DO UPDATE SET name = excluded.name",
        [],
    )
    .unwrap();
    let cases: Vec<(String, Vec<String>)> = vec![
        ("status=completed".into(), vec![s(1), s(2), s(3), s(4), s(5), s(6)]),
        ("status=active".into(), vec![seed.live.clone()]),
        ("status=timed_out,abandoned".into(), vec![]),
        ("headset=quest-a".into(), vec![s(1), s(2)]),
        ("headset=showroom%20b".into(), vec![s(3), s(4)]),
        ("property_id=prop-1".into(), vec![s(1), s(3), s(4)]),
        ("customer_id=cust-1".into(), vec![s(1), s(2)]),
        ("period=7d".into(), vec![seed.live.clone(), s(1), s(2), s(3)]),
        ("period=today".into(), vec![seed.live.clone()]),
        (format!("date_from={}&date_to={}", seed.day(10), seed.day(9)), vec![s(4), s(5)]),
        (format!("date_from={}", seed.day(2)), vec![seed.live.clone(), s(1), s(2)]),
        (format!("date_from={}&date_to={}", enc(noon(seed.today, 2) - 3_600_000), enc(noon(seed.today, 1))), vec![s(1), s(2)]),
        ("status=completed&property_id=prop-1&period=7d".into(), vec![s(1), s(3)]),
        ("q=e1a1b2c3d4".into(), vec![s(1)]),
        ("q=SHOWROOM".into(), vec![s(3), s(4)]),
        ("q=cust-2".into(), vec![s(3)]),
        ("q=prop-3".into(), vec![s(6)]),
        (format!("q={}", &s(2)[24..]), vec![s(2)]),
        ("q=quest-live".into(), vec![seed.live.clone()]),
        ("q=%25".into(), vec![]),
        ("q=nothing-like-this".into(), vec![]),
        ("sort=duration&order=asc".into(), vec![s(6), s(3), s(1), s(5), s(2), s(4), seed.live.clone()]),
        ("sort=duration".into(), vec![s(4), s(2), s(5), s(1), s(3), s(6), seed.live.clone()]),
        ("sort=started_at&order=asc".into(), vec![s(6), s(5), s(4), s(3), s(2), s(1), seed.live.clone()]),
        ("sort=events&status=completed".into(), vec![s(1), s(2), s(4), s(3), s(5), s(6)]),
        ("sort=headset&order=asc".into(), vec![s(1), s(2), s(5), s(6), seed.live.clone(), s(3), s(4)]),
        ("sort=headset&order=desc".into(), vec![s(3), s(4), seed.live.clone(), s(5), s(6), s(1), s(2)]),
    ];
    for (query, expected) in cases {
        let list = answer(&server, &client, &format!("/api/v1/sessions?{query}")).await;
        assert_eq!(ids(&list), expected, "{query}");
        assert_eq!(list["total"], expected.len(), "{query}");
    }
    let named = answer(&server, &client, "/api/v1/sessions?headset=quest-b").await;
    assert_eq!(named["data"][0]["headset_name"], "Showroom B");

    let page = answer(&server, &client, "/api/v1/sessions?limit=2&offset=2").await;
    assert_eq!(ids(&page), [s(2), s(3)]);
    assert_eq!(
        (page["total"].clone(), page["page"].clone(), page["limit"].clone(), page["total_pages"].clone()),
        (json!(7), json!(2), json!(2), json!(4))
    );
    let page = answer(&server, &client, "/api/v1/sessions?limit=2&page=4").await;
    assert_eq!((ids(&page), page["page"].clone()), (vec![s(6)], json!(4)));
    assert_eq!(ids(&answer(&server, &client, "/api/v1/sessions?offset=50").await), Vec::<String>::new());
    // Pages of the headset order run across headsets.
    let by_headset = answer(&server, &client, "/api/v1/sessions?sort=headset&order=asc&limit=3&offset=1").await;
    assert_eq!((ids(&by_headset), by_headset["total"].clone()), (vec![s(2), s(5), s(6)], json!(7)));
    let by_headset = answer(&server, &client, "/api/v1/sessions?sort=headset&order=desc&limit=3&page=2&status=completed").await;
    assert_eq!((ids(&by_headset), by_headset["total"].clone()), (vec![s(6), s(1), s(2)], json!(6)));
}

/// An instant as a query value (ISO with its offset, `+` escaped).
fn enc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&TZ).to_rfc3339().replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_query_values_are_refused_naming_the_parameter() {
    let server = TestServer::start().await;
    let client = server.signed_in("ben", "sales").await;
    let tour = post_as(&server, "quest-x", UNIVERSAL, json!({"View": "Home", "TotalDuration": "0:05"})).await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, field) in [
        ("/api/v1/sessions?limit=abc", "limit"),
        ("/api/v1/sessions?limit=0", "limit"),
        ("/api/v1/sessions?limit=201", "limit"),
        ("/api/v1/sessions?offset=-1", "offset"),
        ("/api/v1/sessions?page=0", "page"),
        ("/api/v1/sessions?sort=bogus", "sort"),
        ("/api/v1/sessions?order=sideways", "order"),
        ("/api/v1/sessions?status=bogus", "status"),
        ("/api/v1/sessions?date_from=garbage", "date_from"),
        ("/api/v1/sessions?date_to=2026-13-45", "date_to"),
        ("/api/v1/sessions?date_from=2026-03-02&date_to=2026-03-01", "date_to"),
        ("/api/v1/sessions?period=forever", "period"),
        ("/api/v1/sessions.csv?status=bogus", "status"),
        ("/api/v1/overview?period=0d", "period"),
        ("/api/v1/overview?date_to=2026-03-01", "date_from"),
        ("/api/v1/sessions/stats?period=abc", "period"),
        ("/api/v1/analytics/dashboard?period=7x", "period"),
        ("/api/v1/analytics/views?period=-1d", "period"),
        ("/api/v1/analytics/poi?period=1.5d", "period"),
        ("/api/v1/analytics/zones?period=99999d", "period"),
        ("/api/v1/analytics/engagement-trends?period=x", "period"),
        ("/api/v1/analytics/funnel?period=d", "period"),
    ] {
        let (status, body) = get(&server, &client, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().starts_with(field), "{path}: {body}");
    }
    for path in [format!("/api/v1/sessions/{tour}/events?limit=1001"), format!("/api/v1/sessions/{tour}/events?limit=x")] {
        let (status, body) = get(&server, &client, &path).await;
        assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some("limit")), "{path}: {body}");
    }
    for path in ["/api/v1/sessions/no-such-tour", "/api/v1/sessions/no-such-tour/events", "/api/v1/sessions/no-such-tour/events.csv"] {
        let (status, body) = get(&server, &client, path).await;
        assert_eq!((status, body["message"].as_str()), (404, Some("Session not found")), "{path}");
    }
    // Empty values are no filter at all.
    assert_eq!(answer(&server, &client, "/api/v1/sessions?status=&q=&limit=&period=").await["total"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tour_in_detail_by_our_id_or_the_headsets() {
    let (server, seed, client) = start().await;
    let t1 = noon(seed.today, 1);
    let by_uuid = data(&server, &client, &format!("/api/v1/sessions/{}", seed.tours[0])).await;
    let by_external = data(&server, &client, &format!("/api/v1/sessions/{}", external(1).to_lowercase())).await;
    assert_eq!(by_uuid, by_external);
    let tour = by_uuid;
    assert_eq!(
        (tour["id"].as_str(), tour["external_id"].as_str(), tour["duration_seconds"].as_i64()),
        (Some(seed.tours[0].as_str()), Some(external(1).as_str()), Some(200))
    );

    let timeline = tour["timeline"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = timeline.iter().map(|e| (e["kind"].as_str().unwrap(), e["event_type"].as_str().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("tracking", "zone_enter"),
            ("poi", "poi"),
            ("view", "view"),
            ("poi", "poi"),
            ("unit_selection", "unit_selection"),
            ("tracking", "zone_exit")
        ]
    );
    assert_eq!((tour["timeline_total"].as_i64(), tour["timeline_truncated"].as_bool()), (Some(6), Some(false)));
    let gym = &timeline[1];
    assert_eq!((gym["name"].as_str(), gym["zone"].as_str(), gym["source"].as_str()), (Some("Gym"), Some("Amenities"), Some("Floating")));
    assert_eq!(
        (gym["dwell_seconds"].as_f64(), gym["dwell_text"].as_str(), gym["flagged"].clone()),
        (Some(45.0), Some("0:45"), Value::Null)
    );
    assert_eq!(
        gym["occurred_at"],
        chrono::DateTime::from_timestamp_millis(t1 + 60_000).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    );
    let pool = &timeline[3];
    assert_eq!((pool["dwell_seconds"].clone(), pool["dwell_text"].as_str()), (Value::Null, Some("1,77,50,078:30:03")));
    assert!(pool["flagged"].as_str().unwrap().contains("max_dwell_secs"), "{pool}");

    assert_eq!(
        tour["zones"],
        json!([{"zone": "kitchen", "visits": 2, "dwell_seconds": 160.0}, {"zone": "Amenities", "visits": 2, "dwell_seconds": 45.0}])
    );
    assert_eq!(tour["views"], json!([{"name": "Amenities", "visits": 1, "dwell_seconds": 70.0}]));
    let at =
        |seconds: i64| chrono::DateTime::from_timestamp_millis(t1 + seconds * 1000).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    assert_eq!(
        tour["path"],
        json!([{"zone": "kitchen", "entered_at": at(10), "dwell_seconds": 5.0}, {"zone": "Amenities", "entered_at": at(15), "dwell_seconds": 115.0},
               {"zone": "kitchen", "entered_at": at(10), "dwell_seconds": 160.0}])
    );

    // The old API's lists.
    let tracking = tour["tracking_events"].as_array().unwrap();
    assert_eq!(tracking.len(), 6);
    let enter = &tracking[0];
    assert_eq!(
        (enter["session_id"].as_str(), enter["event_type"].as_str(), enter["zone_name"].as_str()),
        (Some(seed.tours[0].as_str()), Some("zone_enter"), Some("kitchen"))
    );
    assert_eq!(
        (enter["position"].clone(), enter["rotation"].clone()),
        (json!({"x": 1.5, "y": 2.0, "z": -3.0}), json!({"pitch": 0.0, "yaw": 90.0, "roll": 0.0}))
    );
    assert_eq!(
        (tracking[5]["dwell_time_ms"].as_i64(), tracking[1]["object_name"].as_str(), tracking[1]["metadata"]["kind"].as_str()),
        (Some(160_000), Some("Gym"), Some("poi"))
    );
    let pois = tour["poi_visits"].as_array().unwrap();
    assert_eq!(pois.len(), 2);
    assert_eq!(
        (pois[0]["poi_name"].as_str(), pois[0]["parent_zone"].as_str(), pois[0]["poi_source"].as_str()),
        (Some("Gym"), Some("Amenities"), Some("Floating"))
    );
    assert_eq!((pois[0]["duration_seconds"].as_i64(), pois[0]["duration_string"].as_str()), (Some(45), Some("0:45")));
    assert_eq!(pois[1]["duration_seconds"], Value::Null, "a flagged timer is no duration, not 0");
    assert_eq!(
        tour["view_events"].as_array().unwrap().iter().map(|v| (v["view_name"].clone(), v["duration_seconds"].clone())).collect::<Vec<_>>(),
        [(json!("Amenities"), json!(70))]
    );

    // The summary and the six event uploads, bodies as sent.
    let uploads = tour["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 7, "{uploads:?}");
    assert!(uploads[0]["body"].as_str().unwrap().contains(&external(1)));
    assert_eq!(
        (uploads[0]["outcome"].as_str(), uploads[0]["status"].as_i64(), uploads[0]["body_truncated"].as_bool()),
        (Some("stored"), Some(201), Some(false))
    );
    assert_eq!(uploads[1]["endpoint"], "POST /api/v1/unreal/tracking/event");

    // The events route pages any kind in the old shape.
    let events = answer(&server, &client, &format!("/api/v1/sessions/{}/events?event_type=poi&limit=1&offset=1", external(1))).await;
    assert_eq!((events["total"].clone(), events["page"].clone(), events["total_pages"].clone()), (json!(2), json!(2), json!(2)));
    assert_eq!(events["data"][0]["object_name"], "Pool");
    let all = answer(&server, &client, &format!("/api/v1/sessions/{}/events", seed.tours[0])).await;
    assert_eq!((all["total"].clone(), all["limit"].clone()), (json!(6), json!(200)));
    assert_eq!(all["data"], tour["tracking_events"]);

    // A flexible event: its own fields are the old shape's metadata.
    post_as(
        &server,
        "quest-c",
        "/api/v1/unreal/event",
        json!({"event_type": "NavBar_Click", "Menu_Item": "Amenities", "session_id": external(6)}),
    )
    .await;
    let flexible = answer(&server, &client, &format!("/api/v1/sessions/{}/events", seed.tours[5])).await;
    let event = &flexible["data"][0];
    assert_eq!(
        (event["event_type"].as_str(), event["metadata"]["Menu_Item"].as_str()),
        (Some("NavBar_Click"), Some("Amenities")),
        "{event}"
    );
    assert_eq!((event["metadata"]["kind"].as_str(), event["position"].clone()), (Some("custom"), Value::Null));

    // The live tour, as it stands.
    let live = data(&server, &client, &format!("/api/v1/sessions/{}", seed.live.to_uppercase())).await;
    assert_eq!(
        (live["status"].as_str(), live["duration_seconds"].clone(), live["ended_at"].clone()),
        (Some("active"), Value::Null, Value::Null)
    );
    assert_eq!(live["path"].as_array().unwrap().iter().map(|p| p["zone"].clone()).collect::<Vec<_>>(), [json!("Home"), json!("Amenities")]);
}
