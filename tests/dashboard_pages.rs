//! The dashboard's pages and files on a real server: signed-out visitors are sent to sign in
//! (and back), pages carry the security headers and name this build's files, which are cached
//! for good under a version that a page of another build does not get; `/` stays the service
//! document for clients that are not browsers.

mod common;

use common::TestServer;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// The version in the files a page names (`/assets/<version>/…`).
fn asset_version(html: &str) -> String {
    let start = html.find("/assets/").expect("the page names a versioned file") + "/assets/".len();
    html[start..].split('/').next().unwrap().to_string()
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_back() {
    let server = TestServer::start().await;
    let client = no_redirects();
    for (path, next) in [
        ("/", "/"),
        ("/live", "/live"),
        ("/overview?period=30d", "/overview%3Fperiod%3D30d"),
        ("/tours", "/tours"),
        ("/tours/0193a000-7c1e-7a55-9f0e-000000000000", "/tours/0193a000-7c1e-7a55-9f0e-000000000000"),
        ("/headsets", "/headsets"),
    ] {
        let response = client.get(server.url(path)).header(ACCEPT, HTML).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()[LOCATION], format!("/login?next={next}").as_str(), "{path}");
    }
}

#[tokio::test]
async fn public_pages_carry_the_security_headers_and_are_revalidated() {
    let server = TestServer::start().await;
    for path in ["/login", "/setup"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[CACHE_CONTROL], "no-cache");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        let html = response.text().await.unwrap();
        assert!(!html.contains("{{v}}"), "the version placeholder is filled in");
        assert!(!html.contains("<script>"), "no inline script (the CSP forbids it)");
    }
}

#[tokio::test]
async fn files_are_cached_for_good_under_this_builds_version_only() {
    let server = TestServer::start().await;
    let html = server.client.get(server.url("/login")).send().await.unwrap().text().await.unwrap();
    let version = asset_version(&html);
    assert!(html.contains(&format!("/assets/{version}/js/login.js")));

    let script = server.url(&format!("/assets/{version}/js/app.js"));
    let response = server.client.get(&script).header(ACCEPT_ENCODING, "gzip").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");

    let styles = server.client.get(server.url(&format!("/assets/{version}/css/app.css"))).send().await.unwrap();
    assert_eq!(styles.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(styles.text().await.unwrap().contains("--accent"));

    for path in [
        "/assets/0123456789ab/js/app.js".to_string(),
        format!("/assets/{version}/js/nothing.js"),
        format!("/assets/{version}/index.html"),
    ] {
        let response = server.client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().get(CACHE_CONTROL).is_none_or(|c| !c.to_str().unwrap().contains("immutable")));
    }
}

#[tokio::test]
async fn signed_in_staff_get_the_app_shell_and_clients_the_service_document() {
    let server = TestServer::start().await;
    let staff = server.signed_in("ana", "sales").await;
    for path in ["/", "/live", "/tours/anything", "/headsets"] {
        let response = staff.get(server.url(path)).header(ACCEPT, HTML).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"sign-out\"") && html.contains("/js/app.js"), "{path}");
    }

    let document = server.client.get(server.url("/")).header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(document.status(), 200);
    let body: serde_json::Value = document.json().await.unwrap();
    assert_eq!(body["service"], "Nexero Showroom");
    let plain: serde_json::Value = server.client.get(server.url("/")).send().await.unwrap().json().await.unwrap();
    assert_eq!(plain["endpoints"]["docs"], "/docs");
}
