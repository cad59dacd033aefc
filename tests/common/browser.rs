//! Headless Chromium driven through `chromedriver` (WebDriver), for the dashboard's end-to-end
//! tests. Each test starts its own `Driver` (start-up takes tens of milliseconds); dropping it
//! stops the driver and every browser it started, also when the test panics half-way.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The viewports screenshots are taken at (CSS pixels of the page, not of the window).
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const TABLET: (u32, u32) = (768, 1024);
/// How long any wait for the page may take: a broken page fails fast, not after fantoccini's 30 s.
pub const WAIT: Duration = Duration::from_secs(10);

/// A `chromedriver` on a free loopback port, in its own process group with its own TMPDIR (the
/// browsers' profiles live there too).
pub struct Driver {
    child: Child,
    pub port: u16,
    tmp: Option<tempfile::TempDir>,
    profiles: AtomicUsize,
}

impl Driver {
    pub fn start() -> Driver {
        let tmp = tempfile::tempdir().expect("a temporary directory for chromedriver");
        let port = super::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts (tests/run-all.sh installs chromium and chromium-driver)");
        let mut driver = Driver {
            child,
            port,
            tmp: Some(tmp),
            profiles: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(exit) = driver.child.try_wait().unwrap() {
                panic!("chromedriver exited during start-up: {exit}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }

    /// The driver's process id, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new headless browser with a fresh profile and a desktop-sized window.
    pub async fn browser(&self) -> Client {
        let n = self.profiles.fetch_add(1, Ordering::Relaxed);
        let profile = self
            .tmp
            .as_ref()
            .unwrap()
            .path()
            .join(format!("profile-{n}"));
        let (width, height) = DESKTOP;
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("chromedriver starts a headless chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // chromedriver ignores HTTP/1.0; /shutdown ends its sessions and then the driver.
            let _ = shutdown(self.port);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The browsers and their helpers are in the driver's process group; the unreaped driver
        // keeps the group id from being reused until `wait` below.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_dir_all(tmp.path());
        }
    }
}

fn shutdown(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        format!("GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

/// Polls `check` every 100 ms until it gives `Ok`, for at most `WAIT`; panics naming `what` and
/// the last `Err` (what was seen instead) otherwise.
pub async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(found) => return found,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The first element matching `css`, waiting for it for at most `WAIT`.
pub async fn wait_for(client: &Client, css: &str) -> Element {
    match client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("no element {css} on {url} within {WAIT:?}: {e}");
        }
    }
}

/// Waits until the page `name` (main#page-NAME) says its data has rendered.
pub async fn wait_page(client: &Client, name: &str) -> Element {
    wait_for(client, &format!(r#"main#page-{name}[data-loaded="true"]"#)).await
}

/// Every element matching `css` (none is not an error).
pub async fn all(client: &Client, css: &str) -> Vec<Element> {
    client.find_all(Locator::Css(css)).await.unwrap()
}

/// The visible text of the first element matching `css`, trimmed; waits for the element (and
/// looks again when the page re-renders it between finding and reading).
pub async fn text(client: &Client, css: &str) -> String {
    poll(&format!("the text of {css}"), || async {
        let element = client
            .find(Locator::Css(css))
            .await
            .map_err(|e| e.to_string())?;
        let shown = element.text().await.map_err(|e| e.to_string())?;
        Ok(shown.trim().to_string())
    })
    .await
}

/// Types `value` into the input `css` after clearing it.
pub async fn fill(client: &Client, css: &str, value: &str) {
    let input = wait_for(client, css).await;
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// The path of the page the browser shows.
pub async fn path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

/// Waits until the browser shows `path` (query string ignored).
pub async fn wait_path(client: &Client, want: &str) {
    poll(&format!("the browser to show {want}"), || async {
        let now = path(client).await;
        if now == want {
            Ok(())
        } else {
            Err(now)
        }
    })
    .await
}

/// The value of the cookie `name` as the browser keeps it (HttpOnly cookies included).
pub async fn cookie(client: &Client, name: &str) -> Option<fantoccini::cookies::Cookie<'static>> {
    let cookies = client.get_all_cookies().await.unwrap();
    cookies.into_iter().find(|c| c.name() == name)
}

/// Makes the page's viewport exactly `width`×`height` CSS pixels: a headless window's viewport
/// is smaller than the window, so resize by the difference the page reports.
pub async fn fit_viewport(client: &Client, width: u32, height: u32) {
    client.set_window_size(width, height).await.unwrap();
    let mut inner = (0, 0);
    for _ in 0..4 {
        let size = client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        inner = (size[0].as_i64().unwrap(), size[1].as_i64().unwrap());
        if inner == (width as i64, height as i64) {
            // Let resize handlers (charts) draw before anyone looks.
            let frames = "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));";
            client.execute_async(frames, vec![]).await.unwrap();
            return;
        }
        let (outer_w, outer_h) = client.get_window_size().await.unwrap();
        let w = outer_w as i64 + width as i64 - inner.0;
        let h = outer_h as i64 + height as i64 - inner.1;
        client.set_window_size(w as u32, h as u32).await.unwrap();
    }
    panic!("could not make the viewport {width}x{height}; it is {inner:?}");
}

/// Takes a screenshot of the viewport at `width`×`height` into target/screenshots/NAME.png
/// (relative to the crate) and checks the PNG's size; returns its path.
pub async fn screenshot(client: &Client, name: &str, width: u32, height: u32) -> PathBuf {
    fit_viewport(client, width, height).await;
    let png = client.screenshot().await.unwrap();
    assert_eq!(
        png_size(&png),
        Some((width, height)),
        "{name}.png has the viewport's size"
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    std::fs::write(&file, png).unwrap();
    file
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24, big-endian).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    Some((word(16), word(20)))
}

/// Whatever `script` returns.
pub async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}
