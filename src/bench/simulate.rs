//! `nexero simulate`: realistic headsets touring against any running appliance, for demos,
//! manual testing and soak runs. Each headset posts one event per interval, in real formats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::headset::Headset;
use super::load::post;

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// How many headsets tour at once
    #[arg(long, default_value_t = 4)]
    pub headsets: usize,
    /// The appliance to send to
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Milliseconds between two events of one headset (real headsets: about 1000; 0: as fast as
    /// the appliance answers, for soak runs)
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Stop after this many seconds
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// Runs the simulated headsets; true when every upload was stored.
pub async fn simulate(args: SimulateArgs) -> bool {
    let url = format!("{}/api/v1/unreal/session", args.url.trim_end_matches('/'));
    let (sent, failed, tours) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    println!("simulating {} headsets against {url} for {} s, one event every {} ms each", args.headsets, args.seconds, args.interval_ms);
    let mut tasks = Vec::new();
    for index in 0..args.headsets {
        let (url, sent, failed, tours) = (url.clone(), sent.clone(), failed.clone(), tours.clone());
        let interval = Duration::from_millis(args.interval_ms);
        let seed = std::process::id() as u64;
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut headset = Headset::new(index, seed);
            let mut ticker = (!interval.is_zero()).then(|| tokio::time::interval(interval));
            while Instant::now() < deadline {
                if let Some(ticker) = ticker.as_mut() {
                    ticker.tick().await;
                }
                let before = headset.tours();
                match post(&client, &url, &headset.device.clone(), headset.next_body()).await {
                    Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("{}: {e}", headset.device);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tours.fetch_add(headset.tours() - before, Ordering::Relaxed);
            }
        }));
    }
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(10), Duration::from_secs(10));
    let end = tokio::time::sleep_until(deadline.into());
    tokio::pin!(end);
    loop {
        tokio::select! {
            () = &mut end => break,
            _ = progress.tick() => println!(
                "{} events stored, {} tours completed, {} failed",
                sent.load(Ordering::Relaxed), tours.load(Ordering::Relaxed), failed.load(Ordering::Relaxed)
            ),
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    println!("done: {} events stored, {} tours completed, {failed} failed", sent.load(Ordering::Relaxed), tours.load(Ordering::Relaxed));
    failed == 0
}
