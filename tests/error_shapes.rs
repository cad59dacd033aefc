//! Error bodies for clients written for the old backend: `detail` as it was (an object on a 400,
//! FastAPI's list on a 422, text otherwise) beside today's `code`, `message` and `errors`; and
//! `/health` counting exactly what `nexero reprocess` re-reads apart from every other refusal.

mod common;

use common::{TestServer, UNIVERSAL};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn detail_keeps_the_old_shapes_and_health_counts_refusals_apart() {
    let server = TestServer::start_with(|o| o.max_body_bytes = Some(65_536)).await;

    let (status, answer) = server.post(UNIVERSAL, &json!({"nonsense": true})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["detail"]["error"], "Unknown data type", "{answer}");
    assert_eq!(answer["detail"]["received_keys"], json!(["nonsense"]), "{answer}");
    assert_eq!(answer["detail"]["message"], answer["message"]);
    assert_eq!(answer["code"], "BAD_REQUEST");

    let (status, answer) = server.post("/api/v1/unreal/tracking/event", &json!({"event_type": "gaze", "timestamp": 1764687252, "dwell_time_ms": "long"})).await;
    assert_eq!(status, 422);
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "dwell_time_ms"]), "{answer}");
    assert_eq!(answer["detail"][0]["type"], "value_error");
    assert_eq!(answer["errors"][0]["field"], "dwell_time_ms");

    let (status, answer) = server.post_raw(UNIVERSAL, vec![b' '; 70_000]).await;
    assert_eq!(status, 413);
    assert!(answer["detail"].is_string(), "{answer}");
    let (status, answer) = server.post("/api/v1/unreal/heartbeat/no-such-tour", &json!({})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_FOUND")));

    let (_, health) = server.get("/health").await;
    assert_eq!(health["facts"]["unrecognised_uploads"], 2, "what reprocess re-reads: the 400 and the 422");
    assert_eq!(health["facts"]["refused_uploads"], 4, "and the 413 and the heartbeat too");
    server.stop().await;
}
