//! The load phases `nexero bench` runs against the appliance: simulated headsets posting their
//! real pattern, and tour-end batches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::headset::Headset;
use super::load::{drive, post, Outcome};

/// One client per simulated device: each keeps its own keep-alive connection, like a headset.
pub fn clients(n: usize) -> Result<Arc<Vec<reqwest::Client>>, String> {
    (0..n)
        .map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map(Arc::new)
}

/// `clients.len()` headsets posting one small body each per request to `url`, for `phase`.
pub async fn headsets(clients: Arc<Vec<reqwest::Client>>, url: String, phase: Duration, name: &'static str) -> Outcome {
    let headsets: Arc<Vec<Mutex<Headset>>> = Arc::new((0..clients.len()).map(|i| Mutex::new(Headset::new(i, 1))).collect());
    drive(clients.len(), phase, move |c, _| {
        let body = headsets[c].lock().expect("one task per headset").next_body();
        let device = format!("bench-{name}-{c}");
        let (client, url) = (clients[c].clone(), url.clone());
        async move { post(&client, &url, &device, body).await.map(|()| 1) }
    })
    .await
}

/// `connections` clients posting tour-end batches of `size` tracking events to `url`, for
/// `phase`. Each upload is one tour from its own device, so no event is a resend.
pub async fn batches(size: usize, connections: usize, url: String, phase: Duration) -> Result<Outcome, String> {
    let clients = clients(connections)?;
    let events = Arc::new(tracking_events(size));
    Ok(drive(connections, phase, move |c, sequence| {
        let body = format!("{{\"session_id\": \"BENCH-{c}-{sequence}\", \"sent_at\": 1764687999.0, \"events\": {events}}}");
        let (client, url) = (clients[c].clone(), url.clone());
        async move { post(&client, &url, &format!("bench-batch-{c}-{sequence}"), body).await.map(|()| size as u64) }
    })
    .await)
}

/// The events of one tour-end batch, as a JSON array: gaze samples half a second apart.
fn tracking_events(size: usize) -> String {
    let events: Vec<String> = (0..size)
        .map(|i| {
            format!(
                "{{\"event_type\": \"gaze\", \"timestamp\": {:.3}, \"zone_name\": \"kitchen\", \"gaze_target\": \"window\", \
                 \"dwell_time_ms\": {}, \"position\": {{\"x\": 1.5, \"y\": 2.0, \"z\": -3.25}}, \"metadata\": {{\"fps\": 72}}}}",
                1_764_687_252.0 + i as f64 * 0.5,
                500 + i % 4000
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}
