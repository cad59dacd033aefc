//! The dashboard API on generated data, for `nexero bench`: each call a browser or a BI tool makes,
//! timed through the real server (a child `nexero serve`, an API token, gzip as browsers ask),
//! first with nothing else running, then while the simulated headsets upload; and the headsets'
//! own latency meanwhile. Targets: every call under 100 ms p95 on 10M events while 64 headsets
//! upload, and their p99 under 10 ms. Figures are printed, never asserted.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::headset::Headset;
use super::load::{post, with_causes, Outcome};
use super::server::Server;
use super::synthetic::{self, Loaded};
use super::{fmt_opt, phases, quantile_ms};

const WARM_UPS: usize = 3;
const CALL_TARGET_MS: f64 = 100.0;
const HEADSET_TARGET_MS: f64 = 10.0;
/// A call stops early after this long, so one slow route cannot hold a run up for minutes.
const CALL_BUDGET: Duration = Duration::from_secs(20);

pub struct Options {
    /// Timed requests per call, after the warm-ups.
    pub requests: usize,
    /// Simulated headsets uploading during the loaded half.
    pub headsets: usize,
    /// How long the headsets' idle baseline runs.
    pub phase: Duration,
    /// Each headset posts once per interval (its real pace); zero: as fast as answered.
    pub interval: Duration,
}

/// One dashboard call: what the table shows, and the path with its query.
struct Call {
    label: String,
    path: String,
}

fn calls(loaded: &Loaded) -> Vec<Call> {
    let deep = (loaded.tours * 9 / 10) / 50 * 50;
    let search = &loaded.sample_external_id[..loaded.sample_external_id.len().min(8)];
    let large = &loaded.large_tour;
    let call = |label: String, path: String| Call { label, path: format!("/api/v1/{path}") };
    let same = |path: &str| call(path.to_string(), path.to_string());
    vec![
        same("overview?period=7d"),
        same("overview?period=90d"),
        same("sessions"),
        same("sessions?status=timed_out"),
        call("sessions?q=<8 hex of an id>".into(), format!("sessions?q={search}")),
        same("sessions?sort=duration"),
        call(format!("sessions?limit=50&offset={deep}"), format!("sessions?limit=50&offset={deep}")),
        call(format!("sessions/{{id}} ({} events)", loaded.large_tour_events), format!("sessions/{large}")),
        call("sessions/{id}/events".into(), format!("sessions/{large}/events")),
        same("sessions.csv?period=7d"),
        same("sessions/stats?period=30d"),
        same("sessions/active/count"),
        same("analytics/dashboard"),
        same("analytics/views"),
        same("analytics/poi"),
        same("analytics/zones"),
        same("analytics/engagement-trends"),
        same("analytics/funnel"),
        same("live/state"),
        same("headsets"),
    ]
}

/// One call's timings (sorted, µs), bytes of its last answer and failed requests; or why it was
/// not timed.
type Measured = Result<(Vec<u32>, usize, usize), String>;

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<(reqwest::StatusCode, usize), String> {
    let response = client.get(url).bearer_auth(token).header("accept-encoding", "gzip").send().await.map_err(|e| with_causes(&e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| with_causes(&e))?;
    Ok((status, body.len()))
}

async fn measure(client: &reqwest::Client, url: &str, token: &str, requests: usize) -> Measured {
    for _ in 0..WARM_UPS {
        match get(client, url, token).await? {
            (status, _) if status == reqwest::StatusCode::NOT_FOUND => return Err("missing (404)".into()),
            (status, _) if !status.is_success() => return Err(format!("HTTP {}", status.as_u16())),
            _ => {}
        }
    }
    let (mut times, mut bytes, mut errors) = (Vec::with_capacity(requests), 0, 0);
    let started = Instant::now();
    while times.len() + errors < requests && started.elapsed() < CALL_BUDGET {
        let sent = Instant::now();
        match get(client, url, token).await {
            Ok((status, n)) if status.is_success() => {
                times.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                bytes = n;
            }
            _ => errors += 1,
        }
    }
    times.sort_unstable();
    Ok((times, bytes, errors))
}

/// Simulated headsets posting their real pattern until stopped. Each upload is filed under the
/// dashboard call being timed when it was sent, to show which call slows uploads down.
struct HeadsetLoad {
    stop: Arc<AtomicBool>,
    current: Arc<AtomicUsize>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<HeadsetTally>>,
}

/// One headset's failed uploads, and each upload's (dashboard call index, latency in µs).
type HeadsetTally = (u64, Vec<(usize, u32)>);

impl HeadsetLoad {
    fn start(clients: &Arc<Vec<reqwest::Client>>, url: &str, seed: u64, interval: Duration) -> HeadsetLoad {
        let (stop, current) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(usize::MAX)));
        let n = clients.len() as u32;
        let tasks = (0..clients.len())
            .map(|c| {
                let (client, url, stop, current) = (clients[c].clone(), url.to_string(), stop.clone(), current.clone());
                tokio::spawn(async move {
                    let (mut headset, device) = (Headset::new(c, seed), format!("bench-dashboard-{c}"));
                    let (mut errors, mut latencies) = (0u64, Vec::new());
                    // Paced headsets start spread over one interval, as real ones are.
                    let mut ticker = (!interval.is_zero()).then(|| {
                        let first = tokio::time::Instant::now() + interval * c as u32 / n;
                        let mut ticker = tokio::time::interval_at(first, interval);
                        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        ticker
                    });
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(ticker) = ticker.as_mut() {
                            ticker.tick().await;
                        }
                        let (sent, during) = (Instant::now(), current.load(Ordering::Relaxed));
                        match post(&client, &url, &device, headset.next_body()).await {
                            Ok(()) => latencies.push((during, sent.elapsed().as_micros().min(u32::MAX as u128) as u32)),
                            Err(_) => errors += 1,
                        }
                    }
                    (errors, latencies)
                })
            })
            .collect();
        HeadsetLoad { stop, current, started: Instant::now(), tasks }
    }

    /// Uploads sent from now on are filed under call `index`.
    fn during(&self, index: usize) {
        self.current.store(index, Ordering::Relaxed);
    }

    /// Stops; returns what the headsets did and the slowest upload (µs) under each of `calls`.
    async fn stop(self, calls: usize) -> (Outcome, Vec<Option<u32>>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcome = Outcome { requests: 0, events: 0, errors: 0, elapsed: self.started.elapsed(), latencies_us: Vec::new() };
        let mut worst = vec![None; calls];
        for task in self.tasks {
            let (errors, latencies) = task.await.unwrap_or_default();
            outcome.requests += latencies.len() as u64;
            outcome.errors += errors;
            for (during, us) in latencies {
                if let Some(w) = worst.get_mut(during) {
                    *w = Some(w.unwrap_or(0).max(us));
                }
                outcome.latencies_us.push(us);
            }
        }
        outcome.latencies_us.sort_unstable();
        (outcome, worst)
    }
}

fn cells(measured: &Measured) -> (String, String) {
    match measured {
        Ok((times, _, _)) => (fmt_opt(quantile_ms(times, 0.5), 1), fmt_opt(quantile_ms(times, 0.95), 1)),
        Err(_) => ("-".into(), "-".into()),
    }
}

fn verdict(idle: &Measured, loaded: &Measured, requests: usize) -> String {
    let p95 = |m: &Measured| m.as_ref().ok().and_then(|(t, _, _)| quantile_ms(t, 0.95));
    let failed: usize = [idle, loaded].iter().filter_map(|m| m.as_ref().ok().map(|(_, _, e)| *e)).sum();
    let short = [idle, loaded].iter().filter_map(|m| m.as_ref().ok().map(|(t, _, _)| t.len())).min().unwrap_or(requests);
    let mut text = match (idle, loaded) {
        (Err(why), _) | (_, Err(why)) => why.clone(),
        _ => {
            let over =
                |label: &str, m: &Measured| p95(m).filter(|p| *p >= CALL_TARGET_MS).map(|p| format!("{label} {:.1}x", p / CALL_TARGET_MS));
            let misses: Vec<String> = [over("idle", idle), over("under load", loaded)].into_iter().flatten().collect();
            match (p95(idle), p95(loaded)) {
                (None, _) | (_, None) => "no answer".into(),
                _ if misses.is_empty() => "ok".into(),
                _ => format!("MISS ({})", misses.join(", ")),
            }
        }
    };
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    if short < requests {
        text.push_str(&format!(", {short} requests (20 s budget)"));
    }
    text
}

/// Times every dashboard call on the data set in `data_dir` (already loaded; not being served),
/// idle and while `options.headsets` headsets upload, and prints one table.
pub async fn run(data_dir: &Path, loaded: &Loaded, options: &Options) -> Result<(), String> {
    let token = crate::auth::token::generate();
    let (path, hash) = (data_dir.join(crate::config::DATABASE_FILE_NAME), crate::auth::token::digest(&token));
    tokio::task::spawn_blocking(move || synthetic::add_api_token(&path, "nexero bench", &hash))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (server, _) = Server::start(&["serve"], Some(data_dir), "/health").await?;
    let headset_url = format!("{}/api/v1/unreal/session", server.base);
    let clients = phases::clients(options.headsets)?;
    let client = reqwest::Client::new();
    let calls = calls(loaded);

    let baseline = HeadsetLoad::start(&clients, &headset_url, 1, options.interval);
    tokio::time::sleep(options.phase).await;
    let (baseline, _) = baseline.stop(0).await;
    let mut idle = Vec::with_capacity(calls.len());
    for call in &calls {
        idle.push(measure(&client, &format!("{}{}", server.base, call.path), &token, options.requests).await);
    }
    let load = HeadsetLoad::start(&clients, &headset_url, 2, options.interval);
    let mut loaded_runs = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        load.during(i);
        loaded_runs.push(measure(&client, &format!("{}{}", server.base, call.path), &token, options.requests).await);
    }
    let (during, worst) = load.stop(calls.len()).await;
    drop(server);

    println!(
        "\nDASHBOARD API on {} events ({} tours; p50/p95 ms of {} requests per call after {WARM_UPS} warm-ups, API token, gzip)",
        loaded.events, loaded.tours, options.requests
    );
    println!(
        "{:<40} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8}  verdict (p95 < {CALL_TARGET_MS:.0} ms)",
        "call", "idle p50", "idle p95", "load p50", "load p95", "hs max", "KB"
    );
    for (((call, idle), loaded), worst) in calls.iter().zip(&idle).zip(&loaded_runs).zip(&worst) {
        let worst = fmt_opt(worst.map(|us| us as f64 / 1000.0), 1);
        let ((ip50, ip95), (lp50, lp95)) = (cells(idle), cells(loaded));
        let kb = loaded.as_ref().or(idle.as_ref()).map(|(_, b, _)| format!("{:.1}", *b as f64 / 1024.0)).unwrap_or_else(|_| "-".into());
        println!(
            "{:<40} {ip50:>8} {ip95:>8} {lp50:>9} {lp95:>9} {worst:>8} {kb:>8}  {}",
            call.label,
            verdict(idle, loaded, options.requests)
        );
    }
    println!("(load: while the headsets upload; hs max: their slowest upload while that call was timed; KB: its gzipped answer)");
    let (idle_p99, load_p99) = (baseline.latency_ms(0.99), during.latency_ms(0.99));
    let pace = match options.interval.as_millis() {
        0 => "each as fast as answered".to_string(),
        ms => format!("each one upload every {ms} ms"),
    };
    println!(
        "load = {} headsets uploading meanwhile ({pace}): p99 {} ms ({} ms with no dashboard reads, {:.1}x), p50 {} ms, {:.0} uploads/s, {} failed; {} (p99 < {HEADSET_TARGET_MS:.0} ms)",
        options.headsets,
        fmt_opt(Some(load_p99), 2),
        fmt_opt(Some(idle_p99), 2),
        load_p99 / idle_p99,
        fmt_opt(Some(during.latency_ms(0.5)), 2),
        during.per_second(during.requests),
        during.errors,
        if load_p99 < HEADSET_TARGET_MS { "ok" } else { "MISS" },
    );
    println!("(dashboard phase on {} events took {:.0} s)", loaded.events, started.elapsed().as_secs_f64());
    Ok(())
}
