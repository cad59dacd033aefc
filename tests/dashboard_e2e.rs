//! The dashboard in a real browser: headless Chromium through chromedriver against the real
//! `nexero` binary. First-run setup, signing in and out, the live page while `nexero simulate`
//! posts, the tour list's filters and CSV, a tour's timeline, the overview's KPIs, the headsets
//! page; every number on screen is checked against the JSON API on known data. Screenshots go to
//! target/screenshots/.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::browser::{
    self, all, fill, poll, screenshot, text, wait_for, wait_page, wait_path, Driver, DESKTOP,
    TABLET,
};
use common::{add_user, binary, serve_command, Appliance, UNIVERSAL};
use fantoccini::{key::Key, Client, Locator};
use serde_json::{json, Value};

/// `nexero serve` on a free port with a fresh data directory; its standard output is read line by
/// line (the first-run setup link is printed there).
struct Site {
    _app: Appliance,
    port: u16,
    dir: tempfile::TempDir,
    stdout: mpsc::Receiver<String>,
}

impl Site {
    fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let mut command = serve_command(&dir.path().join("data"), port);
        let mut app = Appliance::spawn(command.stdout(Stdio::piped()).stderr(Stdio::null()));
        let out = app.0.stdout.take().unwrap();
        let (lines, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        app.wait_until_healthy(port, Duration::from_secs(10));
        Site {
            _app: app,
            port,
            dir,
            stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The token of the first-run setup link `serve` prints (a line containing `/setup?token=`).
    fn setup_token(&self) -> String {
        let deadline = Instant::now() + browser::WAIT;
        let mut seen = Vec::new();
        while let Ok(line) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some((_, rest)) = line.split_once("/setup?token=") {
                let token: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(*c))
                    .collect();
                assert!(token.len() >= 16, "a setup token worth its name: {line}");
                let port = format!(":{}/setup?token=", self.port);
                assert!(
                    line.contains(&port),
                    "the link points at this server: {line}"
                );
                return token;
            }
            seen.push(line);
        }
        panic!("no /setup?token= link on nexero serve's standard output; it printed: {seen:#?}");
    }

    /// A staff account made with `nexero user add` while the server runs.
    fn user(&self, name: &str, role: &str) -> String {
        let password = format!("{name}-Secret-pass-9");
        add_user(&self.data_dir(), name, role, &password);
        password
    }
}

/// The JSON API as the browser's session sees it: the session cookie read from the browser.
struct Api {
    http: reqwest::Client,
    cookie: String,
    site_port: u16,
}

impl Api {
    async fn of(browser: &Client, site: &Site) -> Api {
        let cookie = browser::cookie(browser, "nexero_session")
            .await
            .expect("the browser holds a session cookie");
        Api {
            http: reqwest::Client::new(),
            cookie: format!("nexero_session={}", cookie.value()),
            site_port: site.port,
        }
    }

    async fn get_text(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.site_port);
        let response = self
            .http
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The JSON answer to a GET that must succeed (200, `"success": true`; the payload is under
    /// `data`, a list's `total` beside it).
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_text(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"));
        assert_eq!(answer["success"], true, "GET {path}: {answer}");
        answer
    }
}

/// Signs in through the login form and waits until the shell names the user.
async fn sign_in(browser: &Client, site: &Site, name: &str, password: &str) {
    browser.goto(&site.url("/login")).await.unwrap();
    wait_for(browser, "form#login-form").await;
    fill(browser, "form#login-form input#username", name).await;
    fill(browser, "form#login-form input#password", password).await;
    wait_for(browser, r#"form#login-form button[type="submit"]"#)
        .await
        .click()
        .await
        .unwrap();
    whoami_is(browser, name).await;
}

async fn whoami_is(browser: &Client, name: &str) {
    poll(&format!("#whoami to name {name}"), || async {
        let shown = match browser.find(Locator::Css("#whoami")).await {
            // textContent: narrow layouts hide the name in the top bar; it is still the shell's.
            Ok(element) => element
                .prop("textContent")
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
            Err(_) => format!("no #whoami on {}", browser.current_url().await.unwrap()),
        };
        if shown.contains(name) {
            Ok(())
        } else {
            Err(shown)
        }
    })
    .await
}

/// The integer a KPI card or counter shows ("1,234" → 1234); `None` while it shows none.
fn number(shown: &str) -> Option<i64> {
    let digits: String = shown.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_setup_then_sign_in_and_out() {
    let site = Site::start();
    let token = site.setup_token();
    let driver = Driver::start();
    let browser = driver.browser().await;

    browser
        .goto(&site.url(&format!("/setup?token={token}")))
        .await
        .unwrap();
    wait_for(&browser, "form#setup-form").await;
    fill(&browser, "#setup-username", "maria").await;
    fill(&browser, "#setup-password", "Maria-first-admin-1").await;
    fill(&browser, "#setup-password2", "Maria-first-admin-1").await;
    wait_for(&browser, r#"form#setup-form button[type="submit"]"#)
        .await
        .click()
        .await
        .unwrap();
    wait_path(&browser, "/live").await;
    whoami_is(&browser, "maria").await;
    wait_page(&browser, "live").await;

    // The session cookie is out of the page's reach and never sent cross-site.
    assert_eq!(
        browser::js(&browser, "return document.cookie;").await,
        json!(""),
        "the session cookie is HttpOnly"
    );
    let cookie = browser::cookie(&browser, "nexero_session")
        .await
        .expect("a nexero_session cookie after setup");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));
    let api = Api::of(&browser, &site).await;
    let me = api.get("/api/v1/auth/me").await;
    assert_eq!(
        (me["data"]["username"].as_str(), me["data"]["role"].as_str()),
        (Some("maria"), Some("admin")),
        "{me}"
    );
    // The link works once.
    let check = reqwest::get(site.url(&format!("/api/v1/auth/setup?token={token}")))
        .await
        .unwrap();
    assert_eq!(
        check.json::<Value>().await.unwrap()["data"]["valid"],
        false,
        "a used setup link is no longer valid"
    );

    wait_for(&browser, "button#sign-out")
        .await
        .click()
        .await
        .unwrap();
    wait_path(&browser, "/login").await;
    assert!(
        browser::cookie(&browser, "nexero_session")
            .await
            .is_none_or(|c| c.value().is_empty()),
        "signing out clears the cookie"
    );
    let (status, _) = api.get_text("/api/v1/auth/me").await;
    assert_eq!(status, 401, "the old session is gone on the server too");
    browser.goto(&site.url("/overview")).await.unwrap();
    wait_path(&browser, "/login").await;
    let sent_back = browser.current_url().await.unwrap();
    assert!(
        sent_back
            .query_pairs()
            .any(|(k, v)| k == "next" && v == "/overview"),
        "the sign-in page knows where to return: {sent_back}"
    );
    wait_for(&browser, "form#login-form").await;
    screenshot(&browser, "login-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "login-tablet", TABLET.0, TABLET.1).await;
    fit_default(&browser).await;

    // A wrong password is refused on the page; the right one signs in again.
    fill(&browser, "input#username", "maria").await;
    fill(&browser, "input#password", "not-her-password").await;
    wait_for(&browser, r#"form#login-form button[type="submit"]"#)
        .await
        .click()
        .await
        .unwrap();
    let error = poll("#login-error to show a message", || async {
        let element = browser
            .find(Locator::Css("#login-error"))
            .await
            .map_err(|e| e.to_string())?;
        let shown = element.text().await.unwrap_or_default();
        if element.is_displayed().await.unwrap_or(false) && !shown.trim().is_empty() {
            Ok(shown)
        } else {
            Err(format!("{shown:?}"))
        }
    })
    .await;
    assert_eq!(
        browser::path(&browser).await,
        "/login",
        "still on the sign-in page after {error:?}"
    );
    assert!(browser::cookie(&browser, "nexero_session")
        .await
        .is_none_or(|c| c.value().is_empty()));
    fill(&browser, "input#password", "Maria-first-admin-1").await;
    wait_for(&browser, r#"form#login-form button[type="submit"]"#)
        .await
        .click()
        .await
        .unwrap();
    wait_path(&browser, "/overview").await;
    whoami_is(&browser, "maria").await;
    wait_page(&browser, "overview").await;
    assert!(
        browser::cookie(&browser, "nexero_session")
            .await
            .is_some_and(|c| !c.value().is_empty()),
        "signed in again"
    );
    browser.close().await.unwrap();
}

/// Tours in progress per the live API: tour uuid → event count.
fn live_tours(state: &Value) -> std::collections::BTreeMap<String, i64> {
    let headsets = state["data"]["headsets"]
        .as_array()
        .unwrap_or_else(|| panic!("live state lists headsets: {state}"));
    headsets
        .iter()
        .filter(|h| h["tour"].is_object())
        .map(|h| {
            (
                h["tour"]["id"].as_str().unwrap().to_string(),
                h["tour"]["event_count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Tours on the live page: tour uuid → the events number shown.
async fn live_tours_on_screen(
    browser: &Client,
) -> Result<std::collections::BTreeMap<String, i64>, String> {
    let mut shown = std::collections::BTreeMap::new();
    for tour in all(browser, "[data-tour-id]").await {
        let id = tour
            .attr("data-tour-id")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let events = tour
            .find(Locator::Css(r#"[data-field="events"]"#))
            .await
            .map_err(|e| format!("{id}: {e}"))?;
        let events = events.text().await.map_err(|e| e.to_string())?;
        shown.insert(id, number(&events).ok_or(format!("events {events:?}"))?);
    }
    Ok(shown)
}

#[tokio::test(flavor = "multi_thread")]
async fn live_tour_appears_while_simulate_posts() {
    let site = Site::start();
    let password = site.user("sam", "sales");
    let driver = Driver::start();
    let browser = driver.browser().await;
    sign_in(&browser, &site, "sam", &password).await;
    browser.goto(&site.url("/live")).await.unwrap();
    wait_page(&browser, "live").await;
    assert!(
        all(&browser, "[data-tour-id]").await.is_empty(),
        "no tour in progress before any headset posts"
    );
    for link in all(&browser, r#"a[href="/headsets"]"#).await {
        assert!(
            !link.is_displayed().await.unwrap(),
            "the headsets page is for admins only"
        );
    }

    // Two headsets post real payloads, one every 250 ms each, for 6 s.
    let url = site.url("");
    let mut simulate = Appliance::spawn(
        std::process::Command::new(binary())
            .args([
                "simulate",
                "--headsets",
                "2",
                "--interval-ms",
                "250",
                "--seconds",
                "6",
                "--url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let (tour, events) = poll("a live tour with events", || async {
        let tours = live_tours_on_screen(&browser).await?;
        tours
            .into_iter()
            .find(|(_, events)| *events > 0)
            .ok_or_else(|| "no tour with events yet".to_string())
    })
    .await;
    assert!(
        simulate.0.try_wait().unwrap().is_none(),
        "the tour ({events} events) showed up while simulate was still posting"
    );
    let card = format!(r#"[data-tour-id="{tour}"]"#);
    let headset = text(&browser, &format!(r#"{card} [data-field="headset"]"#)).await;
    assert!(
        headset.contains("sim-headset-00"),
        "the tour names its headset: {headset:?}"
    );
    for field in ["current", "elapsed"] {
        wait_for(&browser, &format!(r#"{card} [data-field="{field}"]"#)).await;
    }

    let exit = simulate
        .exit_within(Duration::from_secs(10))
        .expect("simulate stops after its 6 s");
    assert!(exit.success(), "simulate: every upload was stored");
    // Nothing posts any more: the page settles on what the API says, tour by tour.
    let api = Api::of(&browser, &site).await;
    let (on_screen, in_api) = poll(
        "the live page to show the API's tours in progress",
        || async {
            let in_api = live_tours(&api.get("/api/v1/live/state").await);
            let on_screen = live_tours_on_screen(&browser).await?;
            if on_screen == in_api {
                Ok((on_screen, in_api))
            } else {
                Err(format!("screen {on_screen:?} vs API {in_api:?}"))
            }
        },
    )
    .await;
    assert!(
        (1..=2).contains(&in_api.len()),
        "one tour in progress per headset at most: {in_api:?}"
    );
    assert_eq!(on_screen.len(), in_api.len());
    let state = api.get("/api/v1/live/state").await;
    for headset in state["data"]["headsets"].as_array().unwrap() {
        let key = headset["device_key"].as_str().unwrap();
        wait_for(
            &browser,
            &format!(r#"[data-headset="{key}"] [data-field="state"]"#),
        )
        .await;
    }
    screenshot(&browser, "live-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "live-tablet", TABLET.0, TABLET.1).await;
    browser.close().await.unwrap();
}

/// Posts `body` as headset `device` would; returns the tour uuid the appliance answers.
async fn post_as(http: &reqwest::Client, site: &Site, device: &str, body: Value) -> String {
    let response = http
        .post(site.url(UNIVERSAL))
        .header("X-Device-Key", device)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{body}");
    let answer: Value = response.json().await.unwrap();
    answer["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body} -> {answer}"))
        .to_string()
}

/// Three tours of three headsets, started minutes ago: ALPHA-7 (5 min, 4 events, completed),
/// BRAVO-7 (1 min, 2 events, completed), and one still in progress (3 events).
async fn known_tours(site: &Site) -> [String; 3] {
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let alpha = [
        json!({"View": "Home", "TotalDuration": "0:20", "sesh_id": "ALPHA-7"}),
        json!({"POI": "Gym", "Source": "NavBar", "Parent": "Amenities", "POI_Duration": "0:15", "sesh_id": "ALPHA-7"}),
        json!({"View": "Amenities", "TotalDuration": "1:05", "sesh_id": "ALPHA-7"}),
        json!({"Name": "A-101", "Sqft": "1250", "Type": "2BHK", "sesh_id": "ALPHA-7"}),
    ];
    let mut a = String::new();
    for body in alpha {
        a = post_as(&http, site, "quest-alpha", body).await;
    }
    let summary = json!({"session_id": "ALPHA-7", "session_start": (now - 300).to_string(), "session_end": now.to_string(), "duration": "5:00"});
    assert_eq!(post_as(&http, site, "quest-alpha", summary).await, a);
    let mut b = String::new();
    for body in [
        json!({"View": "Home", "TotalDuration": "0:10", "sesh_id": "BRAVO-7"}),
        json!({"POI": "Pool", "Parent": "Amenities", "POI_Duration": "0:30", "sesh_id": "BRAVO-7"}),
    ] {
        b = post_as(&http, site, "quest-bravo", body).await;
    }
    let summary = json!({"session_id": "BRAVO-7", "session_start": (now - 60).to_string(), "session_end": now.to_string(), "duration": "1:00"});
    assert_eq!(post_as(&http, site, "quest-bravo", summary).await, b);
    let mut c = String::new();
    for body in [
        json!({"View": "Home", "TotalDuration": "0:05"}),
        json!({"View": "Location", "TotalDuration": "0:12"}),
        json!({"POI": "Spa", "Parent": "Clubhouse", "POI_Duration": "0:09"}),
    ] {
        c = post_as(&http, site, "quest-charlie", body).await;
    }
    [a, b, c]
}

/// The query string of a#export-csv (the tour list's current filters).
async fn export_query(browser: &Client) -> String {
    let href = wait_for(browser, "a#export-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("a#export-csv has an href");
    let (path, query) = href.split_once('?').unwrap_or((&href, ""));
    assert!(
        path.ends_with("/api/v1/sessions.csv"),
        "the export link points at the CSV export: {href}"
    );
    query.to_string()
}

/// Waits until the tour list shows `total` in #tours-total and one row per tour (up to a page),
/// and its export link carries `needle`; returns the export link's query.
async fn tours_settle(browser: &Client, api: &Api, needle: &str) -> (String, i64) {
    poll(
        &format!("the tour list to match the API with {needle:?}"),
        || async {
            let query = export_query(browser).await;
            let answer = api.get(&format!("/api/v1/sessions?{query}")).await;
            let (total, limit) = (
                answer["total"].as_i64().unwrap(),
                answer["limit"].as_i64().unwrap(),
            );
            let shown = text(browser, "#tours-total").await;
            let rows = all(browser, "table#tours-table tr[data-tour-id]")
                .await
                .len() as i64;
            if query.contains(needle) && number(&shown) == Some(total) && rows == total.min(limit) {
                Ok((query, total))
            } else {
                Err(format!(
                    "export ?{query}, #tours-total {shown:?}, {rows} rows; API total {total}"
                ))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tour_detail_list_filter_and_csv() {
    let site = Site::start();
    let [alpha, bravo, charlie] = known_tours(&site).await;
    let password = site.user("olga", "admin");
    let driver = Driver::start();
    let browser = driver.browser().await;
    sign_in(&browser, &site, "olga", &password).await;
    assert!(
        wait_for(&browser, r#"a[href="/headsets"]"#)
            .await
            .is_displayed()
            .await
            .unwrap(),
        "admins see the headsets page in the nav"
    );
    let api = Api::of(&browser, &site).await;
    for (tour, status) in [
        (&alpha, "completed"),
        (&bravo, "completed"),
        (&charlie, "active"),
    ] {
        assert_eq!(
            api.get(&format!("/api/v1/sessions/{tour}")).await["data"]["status"],
            status,
            "tour {tour}"
        );
    }

    // The list with its default filters: all three tours.
    browser.goto(&site.url("/tours")).await.unwrap();
    wait_page(&browser, "tours").await;
    let (_, total) = tours_settle(&browser, &api, "").await;
    assert_eq!(total, 3, "the three known tours are listed");
    for tour in [&alpha, &bravo, &charlie] {
        wait_for(
            &browser,
            &format!(r#"tr[data-tour-id="{tour}"] a[href="/tours/{tour}"]"#),
        )
        .await;
    }
    screenshot(&browser, "tours-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "tours-tablet", TABLET.0, TABLET.1).await;

    // Filter by status: the two completed tours, on screen, in the API and in the CSV.
    fit_default(&browser).await;
    wait_for(&browser, "select#filter-status")
        .await
        .select_by_value("completed")
        .await
        .unwrap();
    let (query, total) = tours_settle(&browser, &api, "status=completed").await;
    assert_eq!(total, 2);
    assert!(
        all(&browser, &format!(r#"tr[data-tour-id="{charlie}"]"#))
            .await
            .is_empty(),
        "the tour in progress is filtered out"
    );
    let (status, csv) = api.get_text(&format!("/api/v1/sessions.csv?{query}")).await;
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        rows.len() as i64 - 1,
        total,
        "one CSV row per listed tour, after the header: {csv}"
    );
    assert!(
        rows[1..]
            .iter()
            .all(|row| row.contains(&alpha) || row.contains(&bravo)),
        "{csv}"
    );

    // Search on top of it: only BRAVO-7.
    let enter = char::from(Key::Enter).to_string();
    fill(&browser, "input#filter-q", &format!("BRAVO{enter}")).await;
    let (query, total) = tours_settle(&browser, &api, "q=BRAVO").await;
    assert!(
        query.contains("status=completed"),
        "the export keeps every filter: {query}"
    );
    assert_eq!(total, 1);
    wait_for(&browser, &format!(r#"tr[data-tour-id="{bravo}"]"#)).await;
    let (_, csv) = api.get_text(&format!("/api/v1/sessions.csv?{query}")).await;
    assert_eq!(
        csv.lines().filter(|l| !l.trim().is_empty()).count(),
        2,
        "header and BRAVO-7: {csv}"
    );

    // Back to the completed tours; ALPHA-7's detail: its timeline row by row.
    fill(&browser, "input#filter-q", &enter).await;
    let (query, total) = tours_settle(&browser, &api, "status=completed").await;
    assert!(
        !query.contains("q="),
        "an emptied search is no filter: {query}"
    );
    assert_eq!(total, 2);
    wait_for(
        &browser,
        &format!(r#"tr[data-tour-id="{alpha}"] a[href="/tours/{alpha}"]"#),
    )
    .await
    .click()
    .await
    .unwrap();
    wait_path(&browser, &format!("/tours/{alpha}")).await;
    wait_page(&browser, "tour").await;
    let detail = api.get(&format!("/api/v1/sessions/{alpha}")).await;
    let timeline = detail["data"]["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("{detail}"))
        .len();
    assert_eq!(timeline, 4, "ALPHA-7's four events: {detail}");
    let mut kinds_in_api: Vec<String> = detail["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut kinds_on_screen = Vec::new();
    for row in all(&browser, "#tour-timeline [data-event-kind]").await {
        kinds_on_screen.push(
            row.attr("data-event-kind")
                .await
                .unwrap()
                .unwrap_or_default(),
        );
    }
    assert_eq!(
        kinds_on_screen.len(),
        timeline,
        "one timeline row per event"
    );
    kinds_in_api.sort();
    kinds_on_screen.sort();
    assert_eq!(kinds_on_screen, kinds_in_api);
    assert_eq!(kinds_in_api, ["poi", "unit_selection", "view", "view"]);
    screenshot(&browser, "tour-detail-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "tour-detail-tablet", TABLET.0, TABLET.1).await;

    // The overview's KPI cards for the last 7 days.
    fit_default(&browser).await;
    browser.goto(&site.url("/overview")).await.unwrap();
    wait_page(&browser, "overview").await;
    wait_for(&browser, r#"button[data-period="7d"]"#)
        .await
        .click()
        .await
        .unwrap();
    let overview = api.get("/api/v1/overview?period=7d").await;
    let kpis = &overview["data"]["kpis"];
    assert_eq!(kpis["tours"]["current"], 3, "{overview}");
    assert_eq!(kpis["unique_headsets"]["current"], 3, "{overview}");
    assert_eq!(
        kpis["engaged_tours"]["current"], 1,
        "ALPHA-7 took 5 minutes: {overview}"
    );
    assert_eq!(kpis["high_intent_tours"]["current"], 0, "{overview}");
    for kpi in [
        "tours",
        "engaged_tours",
        "high_intent_tours",
        "unique_headsets",
    ] {
        let want = kpis[kpi]["current"]
            .as_i64()
            .unwrap_or_else(|| panic!("kpis.{kpi}.current: {overview}"));
        poll(&format!("the {kpi} card to show {want}"), || async {
            let shown = text(
                &browser,
                &format!(r#"[data-kpi="{kpi}"] [data-field="value"]"#),
            )
            .await;
            if number(&shown) == Some(want) {
                Ok(())
            } else {
                Err(shown)
            }
        })
        .await;
    }
    screenshot(&browser, "overview-sparse-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "overview-sparse-tablet", TABLET.0, TABLET.1).await;

    // Headsets (admin): one row per headset the API lists; a name saved on the page sticks.
    fit_default(&browser).await;
    browser.goto(&site.url("/headsets")).await.unwrap();
    wait_page(&browser, "headsets").await;
    let headsets = api.get("/api/v1/headsets").await;
    assert_eq!(headsets["total"], 3, "{headsets}");
    assert_eq!(
        all(&browser, "table#headsets-table tr[data-headset]")
            .await
            .len(),
        3
    );
    let row = r#"table#headsets-table tr[data-headset="quest-alpha"]"#;
    fill(
        &browser,
        &format!("{row} input.headset-name"),
        "Demo Quest A",
    )
    .await;
    wait_for(&browser, &format!("{row} button.save-name"))
        .await
        .click()
        .await
        .unwrap();
    poll("the new headset name in the API", || async {
        let list = api.get("/api/v1/headsets").await;
        let name = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["device_key"] == "quest-alpha")
            .map(|h| h["name"].clone());
        if name == Some(json!("Demo Quest A")) {
            Ok(())
        } else {
            Err(format!("{name:?}"))
        }
    })
    .await;
    screenshot(&browser, "headsets-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "headsets-tablet", TABLET.0, TABLET.1).await;
    browser.close().await.unwrap();
}

/// Back to the desktop viewport after a tablet screenshot.
async fn fit_default(browser: &Client) {
    browser::fit_viewport(browser, DESKTOP.0, DESKTOP.1).await;
}

/// Two weeks of a showroom's tours (index = days ago): busier this week (33 tours) than the week
/// before (19), with tours on every day.
const TOURS_PER_DAY: [usize; 14] = [3, 6, 4, 7, 5, 3, 5, 2, 4, 3, 1, 4, 2, 3];
/// The showroom's headsets; the week before, only the first four were in use.
const SHOWROOM_HEADSETS: [&str; 6] = [
    "quest3-lobby-01",
    "quest3-lobby-02",
    "quest3-sample-flat",
    "questpro-sales-01",
    "pico4-clubhouse",
    "quest3-site-van",
];
const HEADSETS_LAST_WEEK: usize = 4;
/// What the first View of every tour reports: an uninitialised timer in en-IN digit grouping.
const GARBAGE_DURATION: &str = "1,77,50,078:30:03";
/// Categories a buyer opens and the points of interest in them.
const ZONES: [(&str, &[&str]); 3] = [
    (
        "Amenities",
        &["Gym", "Pool", "Spa", "Kids Play Area", "Jogging Track"],
    ),
    (
        "Location",
        &[
            "Metro Station",
            "International School",
            "City Hospital",
            "Tech Park",
        ],
    ),
    ("Clubhouse", &["Banquet Hall", "Indoor Games", "Cafe"]),
];
/// Units a buyer can select: name, sqft, type.
const UNITS: [(&str, &str, &str); 6] = [
    ("A-101", "1250", "2BHK"),
    ("A-1204", "1450", "3BHK"),
    ("B-702", "1680", "3BHK"),
    ("B-1503", "2100", "4BHK"),
    ("C-304", "980", "2BHK"),
    ("C-1801", "2650", "Penthouse"),
];

/// SplitMix64: the same "random" two weeks on every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE5_E9B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One past tour as its headset uploads it: its events one by one (each naming the tour with
/// `sesh_id`), then the summary with the tour's start and end on that day.
#[derive(Clone)]
struct PastTour {
    device: &'static str,
    days_ago: i64,
    /// Unix seconds.
    start: i64,
    seconds: i64,
    events: Vec<Value>,
    summary: Value,
}

/// The headsets' layout, e.g. `02-Dec-2025, 2:54:12 pm` (the site time zone is UTC by default).
fn en_in(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%d-%b-%Y, %-I:%M:%S %P")
        .to_string()
}

/// `M:SS`, as headsets write durations.
fn m_ss(seconds: i64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// `TOURS_PER_DAY` as tours: a third short (1–3 min), a third engaged (3–10 min), a third high
/// intent (10–20 min), at office hours on their day; today's ended a little before `now`.
fn two_weeks_of_tours(now: i64) -> Vec<PastTour> {
    let mut dice = Dice(0x5EED_2026);
    let today = now - now.rem_euclid(86_400);
    let mut tours = Vec::new();
    for (days_ago, &count) in TOURS_PER_DAY.iter().enumerate() {
        let days_ago = days_ago as i64;
        let headsets = if days_ago < 7 {
            SHOWROOM_HEADSETS.len()
        } else {
            HEADSETS_LAST_WEEK
        };
        let first_headset = dice.below(headsets);
        for n in 0..count {
            let seconds = match dice.below(3) {
                0 => dice.range(60, 175),
                1 => dice.range(185, 590),
                _ => dice.range(610, 1200),
            };
            let start = if days_ago == 0 {
                now - 120 - n as i64 * 1500 - dice.range(0, 600) - seconds
            } else {
                today - days_ago * 86_400 + dice.range(9 * 3600, 17 * 3600)
            };
            let device = SHOWROOM_HEADSETS[(first_headset + n) % headsets];
            tours.push(past_tour(&mut dice, device, days_ago, start, seconds));
        }
    }
    tours
}

fn past_tour(
    dice: &mut Dice,
    device: &'static str,
    days_ago: i64,
    start: i64,
    seconds: i64,
) -> PastTour {
    let guid = format!("{:016X}{:016X}", dice.next(), dice.next());
    // Which build: older ones say `Source`, newer ones `POI_Source`.
    let source_key = if dice.chance(30) {
        "Source"
    } else {
        "POI_Source"
    };
    let (opened, _) = dice.pick(&ZONES);
    let (zone, pois) = dice.pick(&ZONES);
    let named = 1 + dice.below(if seconds >= 600 { 3 } else { 2 });
    // The events with a real dwell: the opened category, the named POIs, the view left at the end.
    let mut dwell_events: Vec<Value> =
        vec![json!({"POI": "", source_key: "", "Parent": opened, "POI_Duration": ""})];
    for _ in 0..named {
        let source = dice.pick(&["Floating", "NavBar"]);
        dwell_events.push(
            json!({"POI": dice.pick(pois), source_key: source, "Parent": zone, "POI_Duration": ""}),
        );
    }
    dwell_events.push(json!({"View": zone, "TotalDuration": ""}));
    // About nine tenths of the tour spread over them.
    let weights: Vec<i64> = dwell_events.iter().map(|_| dice.range(1, 4)).collect();
    let total: i64 = weights.iter().sum();
    let mut at = start + dice.range(2, 8);
    let mut events = vec![
        json!({"View": "Home", "TotalDuration": GARBAGE_DURATION, "sesh_id": guid, "Datetime": en_in(at)}),
    ];
    for (mut event, weight) in dwell_events.into_iter().zip(weights) {
        let dwell = (seconds * 9 / 10 * weight / total).max(1);
        at = (at + dwell).min(start + seconds - 1);
        let key = if event.get("View").is_some() {
            "TotalDuration"
        } else {
            "POI_Duration"
        };
        event[key] = json!(m_ss(dwell));
        event["sesh_id"] = json!(guid);
        event["Datetime"] = json!(en_in(at));
        events.push(event);
    }
    if seconds >= 240 && dice.chance(65) {
        let (name, sqft, kind) = dice.pick(&UNITS);
        let at = start + seconds - dice.range(5, 30).min(seconds / 4);
        let unit = json!({"Name": name, "Sqft": sqft, "Type": kind, "sesh_id": guid, "Datetime": en_in(at)});
        events.insert(events.len() - 1, unit);
    }
    // Most summaries use the en-IN layout; older builds send unix seconds as strings.
    let end = start + seconds;
    let (from, to) = if dice.chance(25) {
        (start.to_string(), end.to_string())
    } else {
        (en_in(start), en_in(end))
    };
    let summary = json!({"session_id": guid, "session_start": from, "session_end": to, "duration": m_ss(seconds)});
    PastTour {
        device,
        days_ago,
        start,
        seconds,
        events,
        summary,
    }
}

/// POSTs `body` to the universal endpoint as headset `device` does (VaRest pretty-prints with
/// tabs); wants 201 and gives the answer.
async fn headset_post(http: &reqwest::Client, url: &str, device: &str, body: &Value) -> Value {
    let mut text = Vec::new();
    let tabs = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    serde::Serialize::serialize(
        body,
        &mut serde_json::Serializer::with_formatter(&mut text, tabs),
    )
    .unwrap();
    let response = http
        .post(url)
        .header("X-Device-Key", device)
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{device}: {body} -> {answer}");
    answer
}

/// Uploads `tours`, each headset's one after another and the headsets side by side; checks that
/// each tour's events and summary land on one tour that takes the summary's times. Gives the
/// number of requests and how long they took.
async fn upload_tours(url: String, tours: Vec<PastTour>) -> (usize, Duration) {
    let began = Instant::now();
    let mut by_headset = std::collections::BTreeMap::<&str, Vec<PastTour>>::new();
    for tour in tours {
        by_headset.entry(tour.device).or_default().push(tour);
    }
    let mut headsets = Vec::new();
    for (_, tours) in by_headset {
        let url = url.clone();
        headsets.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut requests = 0;
            for tour in tours {
                let mut id = None;
                for event in &tour.events {
                    let answer = headset_post(&http, &url, tour.device, event).await;
                    let tour_id = answer["session_id"].clone();
                    assert!(tour_id.is_string(), "{event} -> {answer}");
                    assert!(
                        id.get_or_insert(tour_id.clone()) == &tour_id,
                        "every event of a tour goes to one tour: {answer}"
                    );
                }
                let answer = headset_post(&http, &url, tour.device, &tour.summary).await;
                requests += tour.events.len() + 1;
                let summary = &tour.summary;
                assert_eq!(
                    Some(&answer["session_id"]),
                    id.as_ref(),
                    "the summary closes its events' tour: {summary} -> {answer}"
                );
                assert_eq!(answer["status"], "success", "{summary} -> {answer}");
                assert_eq!(
                    answer["warnings"],
                    json!([]),
                    "the summary's own times are taken: {summary} -> {answer}"
                );
                assert_eq!(
                    answer["duration_seconds"], tour.seconds,
                    "{summary} -> {answer}"
                );
                let started =
                    chrono::DateTime::parse_from_rfc3339(answer["started_at"].as_str().unwrap())
                        .unwrap_or_else(|e| panic!("{e}: {answer}"));
                assert_eq!(
                    started.timestamp(),
                    tour.start,
                    "the tour starts when its summary says: {summary} -> {answer}"
                );
            }
            requests
        }));
    }
    let mut requests = 0;
    for headset in headsets {
        requests += headset.await.unwrap();
    }
    (requests, began.elapsed())
}

/// Tours, engaged tours, high-intent tours and headsets among `tours`.
fn expected_kpis<'a>(tours: impl Iterator<Item = &'a PastTour>) -> [i64; 4] {
    let tours: Vec<&PastTour> = tours.collect();
    let headsets: std::collections::BTreeSet<&str> = tours.iter().map(|t| t.device).collect();
    [
        tours.len() as i64,
        tours.iter().filter(|t| t.seconds >= 180).count() as i64,
        tours.iter().filter(|t| t.seconds >= 600).count() as i64,
        headsets.len() as i64,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_on_two_weeks_of_tours() {
    let site = Site::start();
    let password = site.user("priya", "sales");
    let tours = two_weeks_of_tours(chrono::Utc::now().timestamp());
    // Six headsets upload two weeks of tours while the browser starts and signs in.
    let upload = tokio::spawn(upload_tours(site.url(UNIVERSAL), tours.clone()));
    let driver = Driver::start();
    let browser = driver.browser().await;
    sign_in(&browser, &site, "priya", &password).await;
    let (requests, took) = upload.await.unwrap();
    eprintln!(
        "posted {} tours in {requests} requests in {took:.1?}",
        tours.len()
    );

    browser
        .goto(&site.url("/overview?period=7d"))
        .await
        .unwrap();
    wait_page(&browser, "overview").await;
    let pressed = wait_for(&browser, r#"button[data-period="7d"]"#)
        .await
        .attr("aria-pressed")
        .await
        .unwrap();
    assert_eq!(
        pressed.as_deref(),
        Some("true"),
        "the 7-day period is the one shown"
    );
    let api = Api::of(&browser, &site).await;
    let overview = api.get("/api/v1/overview?period=7d").await;
    let data = &overview["data"];
    let kpis = [
        "tours",
        "engaged_tours",
        "high_intent_tours",
        "unique_headsets",
    ];
    let side = |which: &str| {
        kpis.map(|kpi| {
            data["kpis"][kpi][which]
                .as_i64()
                .unwrap_or_else(|| panic!("kpis.{kpi}.{which}: {overview}"))
        })
    };
    let (current, previous) = (side("current"), side("previous"));
    assert_eq!(
        current,
        expected_kpis(tours.iter().filter(|t| t.days_ago < 7)),
        "this week's tours by their summaries' start: {overview}"
    );
    assert_eq!(
        previous,
        expected_kpis(tours.iter().filter(|t| t.days_ago >= 7)),
        "the week before: {overview}"
    );
    assert!(
        previous.iter().all(|&n| n > 0),
        "the previous period has data: {overview}"
    );
    assert!(
        current[0] > previous[0]
            && current[1] > 0
            && current[2] > 0
            && current[2] < current[1]
            && current[1] < current[0],
        "{overview}"
    );
    let days = data["tours_per_day"].as_array().unwrap();
    let busy = |key: &str| {
        days.iter()
            .filter(|d| d[key].as_i64().unwrap_or(0) > 0)
            .count()
    };
    // Today's tours may have started yesterday when the test runs just after midnight.
    assert!(
        days.len() == 7 && busy("tours") >= 6 && busy("previous_tours") == 7,
        "tours on every day of both weeks: {overview}"
    );
    for list in ["top_views", "top_pois", "top_units"] {
        assert!(
            !data[list].as_array().unwrap().is_empty(),
            "{list}: {overview}"
        );
    }

    // What the page shows is what the API says.
    for (kpi, want) in kpis.into_iter().zip(current) {
        poll(&format!("the {kpi} card to show {want}"), || async {
            let shown = text(
                &browser,
                &format!(r#"[data-kpi="{kpi}"] [data-field="value"]"#),
            )
            .await;
            if number(&shown) == Some(want) {
                Ok(())
            } else {
                Err(shown)
            }
        })
        .await;
        let change = text(
            &browser,
            &format!(r#"[data-kpi="{kpi}"] [data-field="change"]"#),
        )
        .await;
        assert!(
            change.contains("vs previous"),
            "{kpi} is compared with the week before: {change:?}"
        );
    }
    let lists = all(&browser, "#chart-top ol.barlist").await;
    assert_eq!(
        lists.len(),
        3,
        "views, points of interest and units are listed"
    );
    for (list, key) in lists.iter().zip(["top_views", "top_pois", "top_units"]) {
        let rows = list.find_all(Locator::Css("li")).await.unwrap().len();
        assert_eq!(
            rows,
            data[key].as_array().unwrap().len(),
            "one row per {key} entry"
        );
    }
    assert_eq!(
        all(&browser, "#chart-funnel ol.funnel li").await.len(),
        3,
        "the funnel's three steps"
    );
    // Chart.js animates the bars for 300 ms after the data arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&browser, "overview-desktop", DESKTOP.0, DESKTOP.1).await;
    screenshot(&browser, "overview-tablet", TABLET.0, TABLET.1).await;
    // For the README: KPIs, chart, funnel and the top lists in one picture.
    screenshot(&browser, "overview-readme", 1280, 1000).await;
    browser.close().await.unwrap();
}

/// The harness itself, on a page every build serves: viewports come out at the exact size, and
/// stopping the driver leaves no browser process behind.
#[tokio::test(flavor = "multi_thread")]
async fn the_browser_harness_sizes_viewports_and_leaves_nothing_running() {
    let site = Site::start();
    let driver = Driver::start();
    let group = driver.pid();
    let browser = driver.browser().await;
    browser.goto(&site.url("/health")).await.unwrap();
    for (width, height) in [DESKTOP, TABLET] {
        browser::fit_viewport(&browser, width, height).await;
        let png = browser.screenshot().await.unwrap();
        assert_eq!(browser::png_size(&png), Some((width, height)));
    }
    assert!(
        count_group(group) >= 2,
        "chromedriver and its chromium run in one process group"
    );
    drop(browser);
    drop(driver);
    poll("the driver's process group to be gone", || async {
        match count_group(group) {
            0 => Ok(()),
            left => Err(format!("{left} processes")),
        }
    })
    .await;
}

/// Live (not zombie) processes in process group `group`.
fn count_group(group: u32) -> usize {
    let out = std::process::Command::new("ps")
        .args(["-e", "-o", "pgid=,stat="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(&group.to_string()) && !f.next().unwrap_or("").starts_with('Z')
        })
        .count()
}
