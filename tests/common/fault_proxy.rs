//! Fault injection between the appliance and its cloud.
//!
//! `FaultProxy` is an HTTP/1 reverse proxy on a free loopback port that forwards every request
//! to a base URL (postrust) and, when told, answers in its place: latency, a connection closed
//! without an answer (RST), 413, 429 with `Retry-After`, 500 with PostgREST's `57014` or `21000`
//! bodies, 503, or the request forwarded and its answer lost. Faults follow a deterministic
//! schedule (always, the next N matching requests, every Kth, or a seeded fraction) and may be
//! limited to paths containing a string. It counts requests per path and remembers each one's
//! outcome. `FaultProxy::start_supabase` adds Supabase's gateway shape in front: `/rest/v1/*`
//! maps to the root, `apikey` is required (401 without a `code` otherwise) and passed on as the
//! Bearer when `Authorization` is absent.
//!
//! `TcpProxy` is the same idea one level down for the `postgres://` target: it forwards bytes to
//! a TCP address and can add latency, reset new connections, cut every open connection, or
//! refuse everything (cloud down).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with a request the schedule selects.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Pass,
    /// Waits, then forwards.
    Latency(Duration),
    /// Closes the connection with a reset, without forwarding or answering.
    Reset,
    /// Forwards (the cloud commits it), then resets instead of answering.
    LoseAnswer,
    /// 413, as a reverse proxy with a body limit answers.
    TooLarge,
    /// 429 with `Retry-After: N` (seconds).
    TooMany { retry_after: u64 },
    /// 500 `{"code":"57014"}`: statement timeout.
    StatementTimeout,
    /// 503 `{"code":"PGRST001"}`: the database is unreachable.
    Unavailable,
    /// 500 `{"code":"21000"}`: the same id twice in a merge batch.
    DuplicateInBatch,
    /// Any answer.
    Answer { status: u16, body: String },
}

/// Which matching requests get the fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Always,
    /// The next N matching requests, then pass-through.
    Next(u64),
    /// Every Kth matching request (the Kth, 2Kth, ...).
    EveryKth(u64),
    /// Each matching request with probability p, from a seeded generator (reproducible).
    Fraction { p: f64, seed: u64 },
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Fault,
    /// The status answered (0: reset without an answer).
    pub status: u16,
    pub bytes: usize,
    /// When it arrived.
    pub at: std::time::Instant,
}

struct State {
    fault: Fault,
    schedule: Schedule,
    only_path: Option<String>,
    matched: u64,
    rng: fastrand::Rng,
    seen: Vec<Seen>,
}

impl State {
    fn pick(&mut self, path: &str) -> Fault {
        if self.fault == Fault::Pass {
            return Fault::Pass;
        }
        if let Some(only) = &self.only_path {
            if !path.contains(only.as_str()) {
                return Fault::Pass;
            }
        }
        self.matched += 1;
        let hit = match &mut self.schedule {
            Schedule::Always => true,
            Schedule::Next(n) => {
                if *n == 0 {
                    false
                } else {
                    *n -= 1;
                    true
                }
            }
            Schedule::EveryKth(k) => self.matched % (*k).max(1) == 0,
            Schedule::Fraction { p, .. } => self.rng.f64() < *p,
        };
        if hit {
            self.fault.clone()
        } else {
            Fault::Pass
        }
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    target: String,
    gateway_key: Option<String>,
    client: reqwest::Client,
}

pub struct FaultProxy {
    shared: Shared,
    port: u16,
    stop: watch::Sender<bool>,
}

fn postgrest_error(status: u16, code: &str, message: &str, hint: Option<&str>) -> (u16, String) {
    (
        status,
        serde_json::json!({"code": code, "details": null, "hint": hint, "message": message}).to_string(),
    )
}

impl FaultProxy {
    /// A pass-through proxy to `target` (e.g. postrust's REST root).
    pub async fn start(target: &str) -> FaultProxy {
        Self::launch(target, None).await
    }

    /// Supabase's gateway shape in front of a bare PostgREST root: `url()` ends in `/rest/v1`,
    /// requests need `apikey: <key>`.
    pub async fn start_supabase(target: &str, key: &str) -> FaultProxy {
        Self::launch(target, Some(key.to_string())).await
    }

    async fn launch(target: &str, gateway_key: Option<String>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared {
            state: Arc::new(Mutex::new(State {
                fault: Fault::Pass,
                schedule: Schedule::Always,
                only_path: None,
                matched: 0,
                rng: fastrand::Rng::with_seed(0),
                seen: Vec::new(),
            })),
            target: target.trim_end_matches('/').to_string(),
            gateway_key,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        };
        let (stop, mut stopped) = watch::channel(false);
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                    _ = stopped.changed() => return,
                };
                let shared = accept_shared.clone();
                let stopped = stopped.clone();
                tokio::spawn(serve_connection(shared, stream, stopped));
            }
        });
        FaultProxy { shared, port, stop }
    }

    /// The URL to give the appliance (with `/rest/v1` in the Supabase shape).
    pub fn url(&self) -> String {
        match self.shared.gateway_key {
            Some(_) => format!("http://127.0.0.1:{}/rest/v1", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `fault` for every request (on the paths of `only_path`, if set).
    pub fn set(&self, fault: Fault) {
        self.schedule(fault, Schedule::Always);
    }

    /// `fault` for the next `n` matching requests, then pass-through.
    pub fn set_next(&self, n: u64, fault: Fault) {
        self.schedule(fault, Schedule::Next(n));
    }

    /// `fault` for every `k`th matching request.
    pub fn set_every(&self, k: u64, fault: Fault) {
        self.schedule(fault, Schedule::EveryKth(k));
    }

    pub fn schedule(&self, fault: Fault, schedule: Schedule) {
        let mut s = self.shared.state.lock().unwrap();
        if let Schedule::Fraction { seed, .. } = schedule {
            s.rng = fastrand::Rng::with_seed(seed);
        }
        s.fault = fault;
        s.schedule = schedule;
        s.matched = 0;
    }

    /// Limits faults to paths containing `part` (e.g. "tracking_events"); None: every path.
    pub fn only_path(&self, part: Option<&str>) {
        self.shared.state.lock().unwrap().only_path = part.map(str::to_string);
    }

    /// Pass-through from now on.
    pub fn clear(&self) {
        self.set(Fault::Pass);
        self.only_path(None);
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    /// Requests per path (query strings left out).
    pub fn per_path(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for s in self.seen() {
            *counts.entry(s.path).or_insert(0) += 1;
        }
        counts
    }

    /// How many requests got a fault (anything but `Pass`).
    pub fn faults_applied(&self) -> usize {
        self.seen().iter().filter(|s| s.fault != Fault::Pass).count()
    }

    /// How many requests reached the target and were answered by it with a 2xx.
    pub fn forwarded_ok(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| matches!(s.fault, Fault::Pass | Fault::Latency(_)) && (200..300).contains(&s.status))
            .count()
    }

    /// Waits until `pred` holds for the requests seen, or panics after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.seen()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "proxy: timed out waiting for {what}; seen: {:?}",
                self.per_path()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Closes `socket` with a reset (SO_LINGER 0) once every handle to it is gone.
fn arm_reset(socket: &std::net::TcpStream) {
    let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
}

async fn serve_connection(shared: Shared, stream: TcpStream, mut stopped: watch::Receiver<bool>) {
    let std_stream = stream.into_std().unwrap();
    let handle = Arc::new(std_stream.try_clone().unwrap());
    let stream = TcpStream::from_std(std_stream).unwrap();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        let handle = handle.clone();
        async move { handle_request(shared, handle, request).await }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = stopped.changed() => {}
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fault proxy")
    }
}
impl std::error::Error for Dropped {}

fn respond(status: u16, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

async fn handle_request(
    shared: Shared,
    socket: Arc<std::net::TcpStream>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let method = parts.method.to_string();
    let at = std::time::Instant::now();
    let mut path = parts.uri.path().to_string();
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut headers = parts.headers.clone();

    let record = |fault: &Fault, status: u16, path: &str| {
        shared.state.lock().unwrap().seen.push(Seen {
            method: method.clone(),
            path: path.to_string(),
            fault: fault.clone(),
            status,
            bytes: body.len(),
            at,
        });
    };

    if let Some(key) = &shared.gateway_key {
        let Some(rest) = path.strip_prefix("/rest/v1") else {
            record(&Fault::Pass, 404, &path);
            return Ok(respond(404, &[], br#"{"message":"no Route matched with those values"}"#.to_vec()));
        };
        let rest = if rest.is_empty() { "/".to_string() } else { rest.to_string() };
        let apikey = headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string);
        match apikey {
            None => {
                record(&Fault::Pass, 401, &rest);
                return Ok(respond(401, &[("content-type", "application/json".into())],
                    br#"{"message":"No API key found in request","hint":"No `apikey` request header or url param was found."}"#.to_vec()));
            }
            Some(k) if &k != key => {
                record(&Fault::Pass, 401, &rest);
                return Ok(respond(401, &[("content-type", "application/json".into())],
                    br#"{"message":"Invalid API key","hint":"Double check your Supabase `anon` or `service_role` API key."}"#.to_vec()));
            }
            Some(k) => {
                if !headers.contains_key("authorization") {
                    headers.insert("authorization", format!("Bearer {k}").parse().unwrap());
                }
            }
        }
        path = rest;
    }

    let fault = shared.state.lock().unwrap().pick(&path);
    let canned = match &fault {
        Fault::Pass | Fault::Latency(_) | Fault::LoseAnswer => None,
        Fault::Reset => {
            record(&fault, 0, &path);
            arm_reset(&socket);
            return Err(Dropped);
        }
        Fault::TooLarge => Some((413, r#"{"message":"Request Entity Too Large"}"#.to_string(), vec![])),
        Fault::TooMany { retry_after } => Some((
            429,
            r#"{"message":"Too many requests"}"#.to_string(),
            vec![("retry-after", retry_after.to_string())],
        )),
        Fault::StatementTimeout => {
            let (s, b) = postgrest_error(500, "57014", "canceling statement due to statement timeout", None);
            Some((s, b, vec![]))
        }
        Fault::Unavailable => {
            let (s, b) = postgrest_error(503, "PGRST001", "Database client error. Retrying the connection.", None);
            Some((s, b, vec![]))
        }
        Fault::DuplicateInBatch => {
            let (s, b) = postgrest_error(
                500,
                "21000",
                "ON CONFLICT DO UPDATE command cannot affect row a second time",
                Some("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."),
            );
            Some((s, b, vec![]))
        }
        Fault::Answer { status, body } => Some((*status, body.clone(), vec![])),
    };
    if let Some((status, text, mut extra)) = canned {
        record(&fault, status, &path);
        extra.push(("content-type", "application/json".into()));
        return Ok(respond(status, &extra, text.into_bytes()));
    }
    if let Fault::Latency(d) = &fault {
        tokio::time::sleep(*d).await;
    }

    let url = format!("{}{}{}", shared.target, path, query);
    let mut forward = shared
        .client
        .request(parts.method.clone(), &url)
        .body(body.clone());
    for (name, value) in headers.iter() {
        if matches!(name.as_str(), "host" | "content-length" | "connection" | "keep-alive" | "transfer-encoding" | "apikey") {
            continue;
        }
        forward = forward.header(name, value);
    }
    let upstream = match forward.send().await {
        Ok(r) => r,
        Err(e) => {
            record(&fault, 502, &path);
            return Ok(respond(502, &[], format!("fault proxy: upstream: {e}").into_bytes()));
        }
    };
    let status = upstream.status().as_u16();
    let mut out_headers = Vec::new();
    for (name, value) in upstream.headers() {
        if matches!(name.as_str(), "content-length" | "connection" | "keep-alive" | "transfer-encoding") {
            continue;
        }
        if let Ok(v) = value.to_str() {
            out_headers.push((name.as_str().to_string(), v.to_string()));
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default().to_vec();
    if fault == Fault::LoseAnswer {
        record(&fault, 0, &path);
        arm_reset(&socket);
        return Err(Dropped);
    }
    record(&fault, status, &path);
    let refs: Vec<(&str, String)> = out_headers.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    Ok(respond(status, &refs, bytes))
}

// ---------------------------------------------------------------------------------------------

/// What the TCP proxy does with connections.
#[derive(Clone, Debug, PartialEq)]
pub enum TcpFault {
    Pass,
    /// Each chunk in either direction waits this long.
    Latency(Duration),
    /// New connections are accepted and reset at once (the target looks down).
    Refuse,
    /// New connections are forwarded, but reset after this many bytes from the client.
    CutAfter(usize),
}

struct TcpState {
    fault: TcpFault,
    /// New connections left to reset before `fault` applies (deterministic "next N").
    reset_next: u64,
    accepted: u64,
    reset: u64,
}

pub struct TcpProxy {
    state: Arc<Mutex<TcpState>>,
    port: u16,
    target: SocketAddr,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

impl TcpProxy {
    /// Forwards 127.0.0.1:<free port> to `target` (e.g. 127.0.0.1:<PostgreSQL port>).
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(TcpState {
            fault: TcpFault::Pass,
            reset_next: 0,
            accepted: 0,
            reset: 0,
        }));
        let (cut, cut_rx) = watch::channel(0u64);
        let (stop, mut stopped) = watch::channel(false);
        let accept_state = state.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                    _ = stopped.changed() => return,
                };
                let fault = {
                    let mut s = accept_state.lock().unwrap();
                    s.accepted += 1;
                    if s.reset_next > 0 {
                        s.reset_next -= 1;
                        s.reset += 1;
                        TcpFault::Refuse
                    } else {
                        if s.fault == TcpFault::Refuse {
                            s.reset += 1;
                        }
                        s.fault.clone()
                    }
                };
                if fault == TcpFault::Refuse {
                    let _ = client.set_zero_linger_compat();
                    drop(client);
                    continue;
                }
                let state = accept_state.clone();
                let cut_rx = cut_rx.clone();
                let stopped = stopped.clone();
                tokio::spawn(pipe(client, target, state, fault, cut_rx, stopped));
            }
        });
        TcpProxy { state, port, target, cut, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// `url` (a postgres:// URL to the target) rewritten to go through the proxy.
    pub fn rewrite(&self, url: &str) -> String {
        url.replacen(&format!(":{}/", self.target.port()), &format!(":{}/", self.port), 1)
    }

    /// Applies to connections opened from now on (`Latency` also to open ones).
    pub fn set(&self, fault: TcpFault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Resets the next `n` new connections, then `set`'s fault applies again.
    pub fn reset_next(&self, n: u64) {
        self.state.lock().unwrap().reset_next = n;
    }

    /// Resets every open connection now.
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// (connections accepted, connections reset by the proxy).
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.accepted, s.reset)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

trait ZeroLinger {
    fn set_zero_linger_compat(&self) -> std::io::Result<()>;
}

impl ZeroLinger for TcpStream {
    fn set_zero_linger_compat(&self) -> std::io::Result<()> {
        socket2::SockRef::from(self).set_linger(Some(Duration::ZERO))
    }
}

async fn pipe(
    client: TcpStream,
    target: SocketAddr,
    state: Arc<Mutex<TcpState>>,
    fault: TcpFault,
    mut cut: watch::Receiver<u64>,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        let _ = client.set_zero_linger_compat();
        return;
    };
    // A second handle to the client's socket, to turn the close into a reset when cut.
    let std_client = client.into_std().unwrap();
    let handle = std_client.try_clone().unwrap();
    let client = TcpStream::from_std(std_client).unwrap();
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let latency = |state: &Arc<Mutex<TcpState>>| match state.lock().unwrap().fault {
        TcpFault::Latency(d) => Some(d),
        _ => None,
    };
    let limit = match fault {
        TcpFault::CutAfter(n) => Some(n),
        _ => None,
    };
    let up_state = state.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => n,
            };
            if let Some(d) = latency(&up_state) {
                tokio::time::sleep(d).await;
            }
            sent += n;
            if limit.is_some_and(|l| sent > l) {
                return Err(());
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return Ok(());
            }
        }
    };
    let down_state = state.clone();
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some(d) = latency(&down_state) {
                tokio::time::sleep(d).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    cut.borrow_and_update(); // cuts before this connection was accepted do not apply to it
    let broke = tokio::select! {
        r = up => r.is_err(),
        _ = down => false,
        _ = cut.changed() => true,
        _ = stopped.changed() => false,
    };
    if broke {
        state.lock().unwrap().reset += 1;
        arm_reset(&handle);
    }
}
