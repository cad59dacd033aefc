//! `nexero bench`: measures this machine's ceilings and the appliance against them, in one run on
//! loopback with a temporary data directory, and prints one table. `nexero simulate` drives the
//! same simulated headsets against any running appliance.

mod cloud;
mod dashboard;
pub mod headset;
mod load;
mod phases;
mod process;
mod reads;
pub mod simulate;
mod server;
mod sync;
mod sync_client;
mod synthetic;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{drive, post, Outcome};
use process::Probe;
use server::Server;

use crate::config::{Durability, Settings};
use crate::store::{now_ms, IngestOptions, Store, StoreOptions, WriterOptions};
use synthetic::SyntheticSpec;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Seconds each load phase runs
    #[arg(long, default_value_t = 6)]
    pub seconds: u64,
    /// Simulated headsets (concurrent connections) in the real-headset pattern
    #[arg(long, default_value_t = 64)]
    pub headsets: usize,
    /// Events in the large read-side data set; the small one has a tenth
    #[arg(long, default_value_t = 10_000_000)]
    pub large_events: u64,
    /// Event counts to time the dashboard API on, comma-separated (default: the read side's two
    /// data sets, which are generated anyway)
    #[arg(long, value_delimiter = ',')]
    pub dashboard_events: Vec<u64>,
    /// Only the dashboard API phase (and the generation of its data): no ceilings, no load phases
    #[arg(long, conflicts_with = "no_dashboard")]
    pub dashboard_only: bool,
    /// Skip the dashboard API phase
    #[arg(long)]
    pub no_dashboard: bool,
    /// Timed requests per dashboard call, after 3 warm-ups
    #[arg(long, default_value_t = 50)]
    pub dashboard_requests: usize,
    /// During the dashboard phase each headset uploads once per this many ms, as real ones do
    /// (0: as fast as answered, a saturation test)
    #[arg(long, default_value_t = 1000)]
    pub dashboard_interval_ms: u64,
    /// Only the cloud sync phase: a backlog drained to a throwaway PostgreSQL, directly and
    /// through postrust, against a minimal client inserting the same rows
    #[arg(long, conflicts_with = "dashboard_only")]
    pub sync: bool,
    /// Events in the cloud sync backlog
    #[arg(long, default_value_t = 1_000_000)]
    pub sync_events: u64,
    /// Keep the temporary data directory instead of deleting it
    #[arg(long)]
    pub keep: bool,
    /// Internal: serve the minimal-handler ceiling on this port
    #[arg(long, hide = true)]
    pub minimal_server: Option<u16>,
}

const RAW_INSERT_ROWS: usize = 300_000;
/// The fairness phase: small-upload headsets, and the size of the batches flowing meanwhile
/// (about 4 MB each, like a long tour's tracking upload).
const SMALL_DURING_LARGE: usize = 16;
const LARGE_BATCH: usize = 20_000;
const RAW_INSERT_PER_TRANSACTION: usize = 10_000;
const QUERY_RUNS: usize = 30;

/// The ceiling for HTTP: the smallest axum handler that reads a small JSON body and answers one.
pub async fn serve_minimal(port: u16) {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/",
        post(|body: axum::body::Bytes| async move { axum::Json(serde_json::json!({"status": "ok", "bytes": body.len()})) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the minimal server binds");
    axum::serve(listener, app).await.expect("the minimal server runs");
}

/// One line of the table.
struct Line {
    name: String,
    outcome: Option<Outcome>,
    cores: Option<f64>,
    peak_mb: Option<f64>,
    ratio: Option<(f64, &'static str)>,
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite()).map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into())
}

fn print_lines(title: &str, lines: &[Line]) {
    println!("\n{title}");
    println!(
        "{:<46} {:>9} {:>10} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6}  ratio to ceiling",
        "", "req/s", "events/s", "p50 ms", "p95 ms", "p99 ms", "cores", "peak MB", "errors"
    );
    for line in lines {
        let o = line.outcome.as_ref();
        println!(
            "{:<46} {:>9} {:>10} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6}  {}",
            line.name,
            fmt_opt(o.map(|o| o.per_second(o.requests)), 0),
            fmt_opt(o.map(|o| o.per_second(o.events)).filter(|v| *v > 0.0), 0),
            fmt_opt(o.map(|o| o.latency_ms(0.50)), 2),
            fmt_opt(o.map(|o| o.latency_ms(0.95)), 2),
            fmt_opt(o.map(|o| o.latency_ms(0.99)), 2),
            fmt_opt(line.cores, 2),
            fmt_opt(line.peak_mb, 1),
            o.map(|o| o.errors.to_string()).unwrap_or_default(),
            line.ratio.map(|(r, of)| format!("{:.0}% of {of}", r * 100.0)).unwrap_or_default(),
        );
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cores} cores ({cpu}), {memory} memory, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

pub async fn bench(args: BenchArgs) -> Result<(), String> {
    let started = Instant::now();
    let temp = tempfile::Builder::new().prefix("nexero-bench-").tempdir().map_err(|e| e.to_string())?;
    let dir = temp.path().to_path_buf();
    println!("nexero bench {} — {}", env!("CARGO_PKG_VERSION"), machine());
    println!("data directory {}; durability FULL; load phases {} s each; loopback only", dir.display(), args.seconds);
    let phase = Duration::from_secs(args.seconds);
    if args.sync {
        sync::run(&args, &dir).await?;
        println!("\nbench finished in {:.0} s", started.elapsed().as_secs_f64());
        if args.keep {
            println!("kept {}", temp.keep().display());
        }
        return Ok(());
    }
    if !args.dashboard_only {
        appliance(&args, &dir, phase).await?;
    }

    // Read side, then the dashboard API, on generated data.
    let read_sizes = [args.large_events / 10, args.large_events];
    let dashboard_sizes: Vec<u64> = match (args.no_dashboard, args.dashboard_events.is_empty()) {
        (true, _) => Vec::new(),
        (false, true) => read_sizes.to_vec(),
        (false, false) => args.dashboard_events.clone(),
    };
    let mut sizes: Vec<u64> = dashboard_sizes.iter().copied().chain(read_sizes.into_iter().filter(|_| !args.dashboard_only)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    println!("\nREAD SIDE (dashboard queries, {QUERY_RUNS} runs each through the reader pool)");
    println!("{:<14} {:>10} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}", "events", "load s", "MB/M ev", "start ms", "tours/day", "zone dwell", "top POIs", "top views", "timeline", "status");
    let mut data_sets = Vec::new();
    for events in sizes {
        let (data_dir, loaded) = read_side(&dir, events).await?;
        if dashboard_sizes.contains(&events) {
            data_sets.push((data_dir, loaded));
        } else if !args.keep {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
    }
    println!("(each query cell: p50/p95 ms; start ms: spawn to first /health answer on that file)");
    let interval = Duration::from_millis(args.dashboard_interval_ms);
    let options = dashboard::Options { requests: args.dashboard_requests, headsets: args.headsets, phase, interval };
    for (data_dir, loaded) in data_sets {
        dashboard::run(&data_dir, &loaded, &options).await?;
        if !args.keep {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
    }
    println!("\nbench finished in {:.0} s", started.elapsed().as_secs_f64());
    if args.keep {
        println!("kept {}", temp.keep().display());
    }
    Ok(())
}

/// This machine's ceilings, then the appliance's load phases on a fresh data directory.
async fn appliance(args: &BenchArgs, dir: &Path, phase: Duration) -> Result<(), String> {
    // Ceilings: the same event rows into the same schema, and the smallest axum handler.
    let raw_path = dir.join("raw-ceiling.db");
    let raw = tokio::task::spawn_blocking(move || {
        synthetic::raw_insert_ceiling(&raw_path, RAW_INSERT_ROWS, RAW_INSERT_PER_TRANSACTION, Durability::Full)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let raw_rows_per_second = RAW_INSERT_ROWS as f64 / raw.as_secs_f64();
    let (minimal, _) = Server::start(&["bench"], None, "/").await?;
    let probe = Probe::start(minimal.pid());
    let minimal_url = format!("{}/", minimal.base);
    let clients = phases::clients(args.headsets)?;
    let minimal_outcome = {
        let clients = clients.clone();
        drive(args.headsets, phase, move |c, _| {
            let (client, url) = (clients[c].clone(), minimal_url.clone());
            async move { post(&client, &url, "ceiling", r#"{"View": "Home", "TotalDuration": "0:04"}"#.into()).await.map(|()| 1) }
        })
        .await
    };
    let minimal_rps = minimal_outcome.per_second(minimal_outcome.requests);
    let minimal_line = Line {
        name: "minimal axum handler (small JSON)".into(),
        cores: probe.cores(),
        peak_mb: probe.peak_mb(),
        ratio: None,
        outcome: Some(minimal_outcome),
    };
    drop(minimal);
    println!("\nCEILINGS");
    println!(
        "raw rusqlite insert: {RAW_INSERT_ROWS} event rows, {RAW_INSERT_PER_TRANSACTION} per transaction, prepared, FULL: {raw_rows_per_second:.0} rows/s"
    );
    print_lines("", &[minimal_line]);

    // The appliance, as a child process on a fresh data directory.
    let live_dir = dir.join("live");
    let (server, _) = Server::start(&["serve"], Some(&live_dir), "/health").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_mb = process::rss_mb(server.pid());
    let session_url = format!("{}/api/v1/unreal/session", server.base);
    let batch_url = format!("{}/api/v1/unreal/tracking/batch", server.base);
    let mut lines = Vec::new();

    let headsets_phase = |label: String| {
        let (clients, url, pid) = (clients.clone(), session_url.clone(), server.pid());
        async move {
            let probe = Probe::start(pid);
            let outcome = phases::headsets(clients, url, phase, "headset").await;
            let ratio = Some((outcome.per_second(outcome.requests) / minimal_rps, "minimal handler req/s"));
            Line { name: label, cores: probe.cores(), peak_mb: probe.peak_mb(), ratio, outcome: Some(outcome) }
        }
    };
    lines.push(headsets_phase(format!("real-headset pattern, {} headsets", args.headsets)).await);
    // The same headset load while two dashboard readers query the same file.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2).map(|_| reads::spawn_reader(live_dir.join("nexero.db"), stop.clone())).collect();
    lines.push(headsets_phase("real-headset pattern + 2 dashboard readers".into()).await);
    stop.store(true, Ordering::Relaxed);
    let mut reader_latencies = Vec::new();
    for reader in readers {
        reader_latencies.extend(reader.join().map_err(|_| "a reader thread panicked")?);
    }
    reader_latencies.sort_unstable();
    for (size, connections) in [(100usize, 8usize), (5_000, 4)] {
        let probe = Probe::start(server.pid());
        let outcome = phases::batches(size, connections, batch_url.clone(), phase).await?;
        let ratio = Some((outcome.per_second(outcome.events) / raw_rows_per_second, "raw insert rows/s"));
        lines.push(Line { name: format!("tour-end batches of {size}, {connections} connections"), cores: probe.cores(), peak_mb: probe.peak_mb(), ratio, outcome: Some(outcome) });
    }
    // Fairness: small uploads while large batches flow (the writer takes one large batch per
    // group commit, so a small upload waits behind one at most).
    let probe = Probe::start(server.pid());
    let small = phases::headsets(phases::clients(SMALL_DURING_LARGE)?, session_url.clone(), phase, "small");
    let large = phases::batches(LARGE_BATCH, 4, batch_url.clone(), phase);
    let (small, large) = tokio::join!(small, large);
    let (cores, peak_mb) = (probe.cores(), probe.peak_mb());
    lines.push(Line { name: format!("{SMALL_DURING_LARGE} headsets while {LARGE_BATCH}-event batches flow"), cores, peak_mb, ratio: None, outcome: Some(small) });
    lines.push(Line { name: format!("  the {LARGE_BATCH}-event batches meanwhile, 4 conns"), cores, peak_mb, ratio: None, outcome: Some(large?) });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_mb = process::rss_mb(server.pid());
    drop(server);
    print_lines("APPLIANCE (child process `nexero serve`, writes through the group-commit writer)", &lines);
    println!(
        "dashboard readers during the headset load: {} queries, p50 {} ms, p95 {} ms",
        reader_latencies.len(),
        fmt_opt(quantile_ms(&reader_latencies, 0.5), 2),
        fmt_opt(quantile_ms(&reader_latencies, 0.95), 2)
    );
    println!("appliance memory: {} MB idle after start, {} MB idle after the load", fmt_opt(idle_mb, 1), fmt_opt(after_mb, 1));
    Ok(())
}

fn quantile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    (!sorted_us.is_empty()).then(|| sorted_us[((sorted_us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0)
}

/// Times `QUERY_RUNS` runs of a query; "p50/p95" in ms.
async fn timed<T, E, F, Fut>(mut run: F) -> Result<String, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut times = Vec::with_capacity(QUERY_RUNS);
    for _ in 0..QUERY_RUNS {
        let t = Instant::now();
        run().await.map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_micros() as u32);
    }
    times.sort_unstable();
    Ok(format!("{}/{}", fmt_opt(quantile_ms(&times, 0.5), 1), fmt_opt(quantile_ms(&times, 0.95), 1)))
}

/// Generates `events` events into a data directory of their own, times the read-side queries on
/// it and prints their row; returns the directory and what was loaded.
async fn read_side(dir: &Path, events: u64) -> Result<(PathBuf, synthetic::Loaded), String> {
    let data_dir = dir.join(format!("read-{events}"));
    std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
    let path = data_dir.join(crate::config::DATABASE_FILE_NAME);
    let spec = SyntheticSpec { events, events_per_tour: 1_000, properties: 50, days: 120, end_ms: now_ms() };
    let load_started = Instant::now();
    let load_path = path.clone();
    let loaded = tokio::task::spawn_blocking(move || synthetic::load(&load_path, &spec))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let (server, startup) = Server::start(&["serve"], Some(&data_dir), "/health").await?;
    let client = reqwest::Client::new();
    let status_url = format!("{}/api/v1/unreal/session/{}/status", server.base, loaded.sample_tour);
    let status = timed(|| {
        let request = client.get(&status_url);
        async move { request.send().await.map_err(|e| e.to_string())?.bytes().await.map_err(|e| e.to_string()) }
    })
    .await?;
    drop(server);

    let store = Store::open(StoreOptions {
        path: path.clone(),
        durability: Durability::Full,
        ingest: IngestOptions {
            tz: chrono_tz::UTC,
            max_dwell_ms: 4 * 3_600_000,
            idle_timeout_ms: 600_000,
            resend_window_ms: Settings::default().resend_window_ms(),
        },
        writer: WriterOptions { min_free_bytes: 0, queue_capacity: Settings::default().max_queued_uploads },
    })
    .map_err(|e| e.to_string())?;
    let [per_day, zone, pois, views, timeline] = reads::timings(&store, &loaded).await?;
    store.shutdown().await;
    println!(
        "{:<14} {:>10.1} {:>8.0} {:>9.0} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        format!("{}", loaded.events),
        load_seconds,
        bytes as f64 / 1e6 / (loaded.events as f64 / 1e6),
        startup.as_secs_f64() * 1000.0,
        per_day,
        zone,
        pois,
        views,
        timeline,
        status
    );
    Ok((data_dir, loaded))
}
