//! Replays both production tours of 2025-12-02 (reference §2) exactly as the headset sent them:
//! tab-indented bodies, one per request, in order, no session id on events.

mod common;

use common::{TestServer, UNIVERSAL};

/// A body laid out the way the Unreal VaRest plugin sends it.
fn tabbed(pairs: &[(&str, &str)]) -> String {
    let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("\t\"{k}\": \"{v}\"")).collect();
    format!("{{\n{}\n}}", fields.join(",\n"))
}

fn view(name: &str, duration: &str) -> String {
    tabbed(&[("View", name), ("TotalDuration", duration)])
}

fn poi(source_key: &str, name: &str, source: &str, parent: &str, duration: &str) -> String {
    tabbed(&[("POI", name), (source_key, source), ("Parent", parent), ("POI_Duration", duration)])
}

fn summary(id: &str, start: &str, end: &str, duration: &str) -> String {
    tabbed(&[("session_id", id), ("session_start", start), ("session_end", end), ("duration", duration)])
}

fn first_tour() -> Vec<String> {
    vec![
        view("Amenities", "0:06"),
        poi("Source", "", "", "Amenities", "0:02"),
        view("", "1,77,50,078:30:03"),
        poi("Source", "", "", "Location", "1,77,50,078:30:04"),
        poi("Source", "", "", "Location", "0:01"),
        view("Location", "0:04"),
        poi("Source", "", "", "Amenities", "0:03"),
        poi("Source", "", "", "Amenities", "0:01"),
        poi("Source", "", "", "Amenities", "0:01"),
        view("Amenities", "0:05"),
        summary("7AFF2D5C4FDBFA8B8A9FDAA1EFA98CE8", "02-Dec-2025, 2:30:00 pm", "02-Dec-2025, 2:30:14 pm", "0:14"),
    ]
}

fn second_tour() -> Vec<String> {
    vec![
        view("", "1,77,50,078:54:14"),
        view("Home", "0:02"),
        poi("POI_Source", "", "", "Location", "1,77,50,078:54:19"),
        poi("POI_Source", "", "", "Location", "0:01"),
        poi("POI_Source", "", "", "Location", "0:01"),
        view("Location", "0:07"),
        poi("POI_Source", "", "", "Amenities", "0:03"),
        poi("POI_Source", "", "", "Amenities", "0:02"),
        poi("POI_Source", "", "", "Amenities", "0:01"),
        poi("POI_Source", "", "", "Amenities", "0:01"),
        poi("POI_Source", "Gym", "Floating", "Amenities", "0:01"),
        poi("POI_Source", "Gym", "Floating", "Amenities", "0:00"),
        view("Amenities", "0:10"),
        summary("46D673E04225F8C2B5D52F99796B2CDF", "02-Dec-2025, 2:54:12 pm", "02-Dec-2025, 2:54:37 pm", "0:25"),
    ]
}

struct TourFacts {
    uuid: String,
    status: String,
    started_at: i64,
    ended_at: i64,
    duration_ms: i64,
    views: i64,
    pois: i64,
    flagged: i64,
    dwell_ms: i64,
}

fn tour(server: &TestServer, external_id: &str) -> TourFacts {
    server
        .db()
        .query_row(
            "SELECT t.uuid, t.status, t.started_at, t.ended_at, t.duration_ms,
                    (SELECT count(*) FROM events WHERE session_id = t.id AND kind = 'view'),
                    (SELECT count(*) FROM events WHERE session_id = t.id AND kind = 'poi'),
                    (SELECT count(*) FROM events WHERE session_id = t.id AND dwell_invalid IS NOT NULL),
                    (SELECT coalesce(sum(dwell_ms), 0) FROM events WHERE session_id = t.id)
             FROM tour_sessions t WHERE t.external_id = ?1",
            [external_id],
            |r| {
                Ok(TourFacts {
                    uuid: r.get(0)?,
                    status: r.get(1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    duration_ms: r.get(4)?,
                    views: r.get(5)?,
                    pois: r.get(6)?,
                    flagged: r.get(7)?,
                    dwell_ms: r.get(8)?,
                })
            },
        )
        .unwrap_or_else(|e| panic!("tour {external_id}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn both_production_tours_become_two_complete_sessions() {
    let server = TestServer::start().await;
    for body in first_tour().into_iter().chain(second_tour()) {
        let (status, answer) = server.post_raw(UNIVERSAL, body.clone()).await;
        assert_eq!(status, 201, "{body} -> {answer}");
        assert_eq!(answer["status"], "success", "{answer}");
    }

    assert_eq!(server.count("SELECT count(*) FROM tour_sessions"), 2);
    let first = tour(&server, "7AFF2D5C4FDBFA8B8A9FDAA1EFA98CE8");
    let second = tour(&server, "46D673E04225F8C2B5D52F99796B2CDF");
    assert_ne!(first.uuid, second.uuid);
    for (t, start, end) in [(&first, 1_764_685_800_000, 1_764_685_814_000), (&second, 1_764_687_252_000, 1_764_687_277_000)] {
        assert_eq!(t.status, "completed");
        assert_eq!((t.started_at, t.ended_at), (start, end), "the headset's own start and end times");
        assert_eq!(t.duration_ms, end - start);
        assert_eq!(t.flagged, 2, "the garbage view and POI durations of every tour are flagged");
    }
    assert_eq!((first.views, first.pois), (4, 6));
    assert_eq!((second.views, second.pois), (4, 9));
    // Real dwell times only: 6+4+5 s of views and 2+1+3+1+1 s of POIs.
    assert_eq!(first.dwell_ms, 23_000);
    assert_eq!(second.dwell_ms, (2 + 7 + 10 + 1 + 1 + 3 + 2 + 1 + 1 + 1) * 1000);

    let garbage: Vec<(String, Option<i64>, String)> = server
        .db()
        .prepare("SELECT dwell_text, dwell_ms, dwell_invalid FROM events WHERE dwell_invalid IS NOT NULL ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(garbage.len(), 4);
    assert!(garbage.iter().all(|(text, ms, _)| text.starts_with("1,77,50,078:") && ms.is_none()), "{garbage:?}");

    // The roll-ups the dashboard reads agree with the events: 23 events, only real dwell times.
    for table in ["daily_rollup", "daily_totals"] {
        let (events, dwell): (i64, i64) =
            server.db().query_row(&format!("SELECT sum(events), sum(dwell_ms) FROM {table}"), [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((events, dwell), (23, first.dwell_ms + second.dwell_ms), "{table}");
    }

    // Every upload's raw body is kept verbatim, tabs and all.
    let raw: Vec<u8> = server.db().query_row("SELECT body FROM inbox ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap(), view("Amenities", "0:06"));
    assert_eq!(server.count("SELECT count(*) FROM inbox WHERE outcome = 'stored'"), 25);

    // The status endpoint answers by the headset's id and by ours.
    for id in ["46D673E04225F8C2B5D52F99796B2CDF", second.uuid.as_str()] {
        let (status, answer) = server.get(&format!("/api/v1/unreal/session/{id}/status")).await;
        assert_eq!(status, 200);
        assert_eq!(answer["status"], "completed");
        assert_eq!(answer["duration_seconds"], 25);
        assert_eq!(answer["event_count"], 13);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_headsets_streaming_at_once_keep_their_tours_apart() {
    let server = TestServer::start().await;
    let send = |device: &'static str, body: String| {
        let request = server.client.post(server.url(UNIVERSAL)).header("X-Device-Key", device).body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let (a, b) = (first_tour(), second_tour());
    for i in 0..a.len().max(b.len()) {
        if let Some(body) = a.get(i) {
            assert_eq!(send("headset-a", body.clone()).await, 201);
        }
        if let Some(body) = b.get(i) {
            assert_eq!(send("headset-b", body.clone()).await, 201);
        }
    }
    let first = tour(&server, "7AFF2D5C4FDBFA8B8A9FDAA1EFA98CE8");
    let second = tour(&server, "46D673E04225F8C2B5D52F99796B2CDF");
    assert_eq!((first.views + first.pois, second.views + second.pois), (10, 13));
    server.stop().await;
}
