//! The served OpenAPI document matches the router: every documented operation exists, and every
//! documented example of the universal endpoint gets the documented answer.

mod common;

use common::TestServer;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_served() {
    let server = TestServer::start().await;
    let (status, spec) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 16, "{} paths", paths.len());
    for (path, item) in paths {
        // Every path parameter ({id}, {device_key}, …) gets a value no route knows.
        let concrete = path.split('/').map(|part| if part.starts_with('{') { "test-id" } else { part }).collect::<Vec<_>>().join("/");
        for method in item.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => server.client.get(server.url(&concrete)),
                "post" => server.client.post(server.url(&concrete)).body("{}"),
                "patch" => server.client.patch(server.url(&concrete)).body("{}"),
                other => panic!("undocumented method kind {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let fell_through = body["message"].as_str().is_some_and(|m| m.starts_with("no route for"));
            assert!(status != 405 && !fell_through, "{method} {path} is documented but not served ({status} {body})");
            let documented = item[method]["responses"].as_object().unwrap();
            assert!(documented.contains_key(&status.to_string()), "{method} {path} answered {status}, which is not documented");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn universal_endpoint_examples_get_their_documented_answer() {
    let server = TestServer::start().await;
    let (_, spec) = server.get("/openapi.json").await;
    let examples = spec["paths"]["/api/v1/unreal/session"]["post"]["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap()
        .clone();
    assert!(examples.len() >= 10);
    for (name, example) in examples {
        let (status, answer) = server.post("/api/v1/unreal/session", &example["value"]).await;
        assert_eq!(status, 201, "example {name}: {answer}");
        let expected = if example["value"] == json!({}) { "ignored" } else { "success" };
        assert_eq!(answer["status"], expected, "example {name}: {answer}");
    }
    let docs = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(docs.headers()["content-type"], "text/html");
    assert!(docs.text().await.unwrap().contains("fetch(\"/openapi.json\")"));
}
