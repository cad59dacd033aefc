//! The built-in load client: closed-loop connections (each sends its next request when the
//! previous one is answered), bounded in time, loopback only.

use std::future::Future;
use std::time::{Duration, Instant};

/// What one load phase did.
pub struct Outcome {
    pub requests: u64,
    pub events: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1) in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

/// Runs `connections` closed loops for `duration`. `request(connection, sequence)` sends one
/// request and returns how many events it carried (an error counts as a failed request).
pub async fn drive<F, Fut>(connections: usize, duration: Duration, request: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for connection in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let (mut events, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match request(connection, sequence).await {
                    Ok(n) => {
                        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        events += n;
                    }
                    Err(_) => errors += 1,
                }
                sequence += 1;
            }
            (events, errors, latencies)
        }));
    }
    let mut outcome = Outcome { requests: 0, events: 0, errors: 0, elapsed: Duration::ZERO, latencies_us: Vec::new() };
    for task in tasks {
        let (events, errors, latencies) = task.await.expect("a load connection does not panic");
        outcome.requests += latencies.len() as u64;
        outcome.events += events;
        outcome.errors += errors;
        outcome.latencies_us.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    outcome.latencies_us.sort_unstable();
    outcome
}

/// Sends `body` and expects a 2xx.
pub async fn post(client: &reqwest::Client, url: &str, device: &str, body: String) -> Result<(), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-device-key", device)
        .body(body)
        .send()
        .await
        .map_err(|e| with_causes(&e))?;
    let status = response.status();
    // Read the answer fully so the connection is reused.
    let _ = response.bytes().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// An error with its causes: reqwest's own text ("error sending request") leaves out the reason
/// ("Connection refused") that says what to fix.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}
