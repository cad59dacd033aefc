//! The live view: uploads and tour endings pushed to signed-in staff as Server-Sent Events
//! within a second of their commit, the snapshot of headsets in use, and open streams that end
//! when the appliance shuts down.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, UNIVERSAL};
use serde_json::{json, Value};

/// An open `GET /api/v1/live`, read event by event.
struct Live {
    response: reqwest::Response,
    buffer: String,
}

/// One event of the stream: its `event:` name, `data:` (as JSON) and `retry:`.
#[derive(Debug)]
struct Sse {
    event: String,
    data: Value,
    retry: Option<String>,
}

impl Live {
    async fn open(server: &TestServer, client: &reqwest::Client) -> Live {
        let response = client.get(server.url("/api/v1/live")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let mut live = Live {
            response,
            buffer: String::new(),
        };
        let hello = live
            .next(Duration::from_secs(5))
            .await
            .expect("the stream says hello");
        assert_eq!(hello.event, "hello");
        assert_eq!(
            hello.retry.as_deref(),
            Some("2000"),
            "browsers are told to reconnect after 2 s"
        );
        live
    }

    /// The next event (comments skipped) within `wait`; `None` when the stream ended or the time
    /// passed.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    event: "message".into(),
                    data: Value::Null,
                    retry: None,
                };
                let mut data = String::new();
                for line in frame.lines() {
                    let (field, value) = line
                        .split_once(':')
                        .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                    match field {
                        "event" => sse.event = value.to_string(),
                        "data" => data.push_str(value),
                        "retry" => sse.retry = Some(value.to_string()),
                        _ => {}
                    }
                }
                if !data.is_empty() || sse.retry.is_some() {
                    sse.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some(sse);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(_) | Err(_) => return None,
            }
        }
    }

    /// The next event named `event`, skipping others.
    async fn wait_for(&mut self, event: &str, wait: Duration) -> Sse {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(sse) if sse.event == event => return sse,
                Some(_) => {}
                None => panic!("no `{event}` event within {wait:?}"),
            }
        }
    }
}


async fn live_state(server: &TestServer, client: &reqwest::Client) -> Value {
    let response = client
        .get(server.url("/api/v1/live/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    body["data"].clone()
}

fn headset<'a>(state: &'a Value, device: &str) -> &'a Value {
    state["headsets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["device_key"] == device)
        .unwrap_or_else(|| panic!("{device} in {state}"))
}

fn is_iso_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.len() == 24
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_out_gets_401() {
    let server = TestServer::start().await;
    for path in ["/api/v1/live", "/api/v1/live/state"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["code"], "UNAUTHORIZED");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_reaches_an_open_stream_within_a_second_and_the_snapshot_shows_the_tour() {
    let server = TestServer::start().await;
    let ana = server.signed_in("ana", "sales").await;
    let mut live = Live::open(&server, &ana).await;

    let answer = server.post_as("quest-live-1",
        json!({"View": "Amenities", "TotalDuration": "0:13"}),
    )
    .await;
    let answered = Instant::now();
    let tour = answer["session_id"].as_str().unwrap().to_string();
    let upload = live.wait_for("upload", Duration::from_secs(5)).await;
    let took = answered.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the upload event came {took:?} after the 2xx"
    );
    assert_eq!(upload.data["headset"], "quest-live-1");
    assert_eq!(upload.data["headset_name"], Value::Null);
    assert_eq!(upload.data["tour"], tour.as_str());
    assert_eq!(upload.data["events_stored"], 1);
    assert!(is_iso_utc(&upload.data["at"]), "{}", upload.data);

    server.post_as("quest-live-1",
        json!({"POI": "Swimming Pool", "Parent": "Amenities", "POI_Duration": "2:00"}),
    )
    .await;
    let upload = live.wait_for("upload", Duration::from_secs(1)).await;
    assert_eq!(upload.data["tour"], tour.as_str());
    // Another headset that only said it started: seen, idle.
    server.post_as("quest-live-2", json!({})).await;
    let upload = live.wait_for("upload", Duration::from_secs(1)).await;
    assert_eq!(
        (upload.data["headset"].as_str(), &upload.data["tour"]),
        (Some("quest-live-2"), &Value::Null)
    );

    let state = live_state(&server, &ana).await;
    assert!(is_iso_utc(&state["generated_at"]));
    assert_eq!(
        state["headsets"][0]["device_key"], "quest-live-1",
        "touring headsets come first: {state}"
    );
    let touring = headset(&state, "quest-live-1");
    assert_eq!(touring["state"], "touring");
    assert_eq!(touring["name"], Value::Null);
    assert!(is_iso_utc(&touring["last_seen_at"]));
    let current = &touring["tour"];
    assert_eq!(current["id"], tour.as_str());
    assert_eq!(current["external_id"], Value::Null);
    assert_eq!(current["event_count"], 2);
    assert_eq!(current["current_view"], "Amenities");
    assert_eq!(current["current_poi"], "Swimming Pool");
    assert_eq!(current["current_zone"], "Amenities");
    assert!(is_iso_utc(&current["started_at"]) && is_iso_utc(&current["last_event_at"]));
    // The tour was backdated by the first view's 13 s.
    assert!(
        current["seconds_so_far"].as_i64().unwrap() >= 13,
        "{current}"
    );
    let idle = headset(&state, "quest-live-2");
    assert_eq!(
        (&idle["state"], &idle["tour"]),
        (&json!("idle"), &Value::Null)
    );

    // The summary ends the tour: `tour_ended`, and the headset is idle.
    let now = chrono::Utc::now().timestamp();
    server.post_as("quest-live-1",
        json!({"session_start": (now - 200).to_string(), "session_end": now.to_string()}),
    )
    .await;
    let ended = live.wait_for("tour_ended", Duration::from_secs(1)).await;
    assert_eq!(ended.data["headset"], "quest-live-1");
    assert_eq!(ended.data["tour"], tour.as_str());
    assert_eq!(ended.data["status"], "completed");
    let state = live_state(&server, &ana).await;
    let after = headset(&state, "quest-live-1");
    assert_eq!(
        (&after["state"], &after["tour"]),
        (&json!("idle"), &Value::Null),
        "{state}"
    );

    // A startup packet abandons the open tour of that headset.
    let next = server.post_as("quest-live-1",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await;
    server.post_as("quest-live-1", json!({})).await;
    let ended = live.wait_for("tour_ended", Duration::from_secs(1)).await;
    assert_eq!(
        (&ended.data["tour"], ended.data["status"].as_str()),
        (&next["session_id"], Some("abandoned"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upload_is_not_announced() {
    let server = TestServer::start().await;
    let ana = server.signed_in("ana", "sales").await;
    let mut live = Live::open(&server, &ana).await;
    let (status, _) = server
        .post_with(
            &server.client,
            UNIVERSAL,
            &json!({"random_field": "x"}),
            &[("X-Device-Key", "junk-sender")],
        )
        .await;
    assert!(status >= 400);
    let (status, _) = server
        .post_with(
            &server.client,
            "/api/v1/unreal/heartbeat/no-such-tour",
            &json!({}),
            &[("X-Device-Key", "hb")],
        )
        .await;
    assert!(status >= 400, "{status}");
    server.post_as("quest-real",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await;
    let upload = live.wait_for("upload", Duration::from_secs(2)).await;
    assert_eq!(
        upload.data["headset"], "quest-real",
        "refused uploads come before it and are not announced"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_idle_sweep_announces_the_tours_it_times_out() {
    let server = TestServer::start_with(|o| o.session_idle_timeout_secs = Some(10)).await;
    let ana = server.signed_in("ana", "sales").await;
    let mut live = Live::open(&server, &ana).await;
    let tour = server.post_as("quest-sleepy",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await["session_id"]
        .clone();
    // Idle for 10 s, plus up to one 5 s sweep.
    let ended = live.wait_for("tour_ended", Duration::from_secs(20)).await;
    assert_eq!(
        (&ended.data["tour"], ended.data["status"].as_str()),
        (&tour, Some("timed_out"))
    );
    assert_eq!(ended.data["headset"], "quest-sleepy");
    let state = live_state(&server, &ana).await;
    assert_eq!(headset(&state, "quest-sleepy")["state"], "idle");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_stream_does_not_hold_up_shutdown() {
    let server = TestServer::start().await;
    let ana = server.signed_in("ana", "sales").await;
    let mut first = Live::open(&server, &ana).await;
    let mut second = Live::open(&server, &ana).await;
    server.post_as("quest-1",
        json!({"View": "Home", "TotalDuration": "0:02"}),
    )
    .await;
    first.wait_for("upload", Duration::from_secs(2)).await;

    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops while streams are open");
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?} with two live streams open (the grace is 20 s)"
    );
    // Both streams were ended by the server, not cut by the test.
    for live in [&mut first, &mut second] {
        while let Some(event) = live.next(Duration::from_secs(2)).await {
            assert_ne!(event.event, "hello", "nothing new starts while stopping");
        }
    }
}
