//! `GET /api/v1/live`: what the store commits, as Server-Sent Events.
//!
//! The stream opens with `retry: 2000` and `event: hello`; then `event: upload` for each stored
//! upload and `event: tour_ended` for each tour that ends; a browser that falls more than the
//! channel's capacity behind gets `event: resync` (refetch the snapshot) and goes on from there.
//! A `:keepalive` comment every 15 s keeps proxies from closing an idle stream. When the
//! appliance starts shutting down every stream ends, so the ordered shutdown does not wait for
//! browsers (they reconnect to the next run after `retry`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use super::{iso, LiveState};
use crate::auth::Staff;
use crate::store::live::LiveUpdate;
use crate::store::now_ms;

const RETRY: Duration = Duration::from_millis(2000);
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Events queued for one browser between the store's channel and its socket.
const QUEUED: usize = 64;

pub(super) async fn live(
    State(live): State<LiveState>,
    Staff(_): Staff,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the answer starts: whatever is committed after `hello` is heard.
    let mut updates = live.store.subscribe();
    let shutdown = live.shutdown.clone();
    let (events, queued) = mpsc::channel::<Event>(QUEUED);
    tokio::spawn(async move {
        let mut next = Some(
            Event::default()
                .retry(RETRY)
                .event("hello")
                .data(json!({"at": iso(now_ms())}).to_string()),
        );
        loop {
            if let Some(event) = next.take() {
                tokio::select! {
                    sent = events.send(event) => if sent.is_err() { return },
                    () = shutdown.cancelled() => return,
                }
            }
            next = tokio::select! {
                () = shutdown.cancelled() => return,
                // The browser went away.
                () = events.closed() => return,
                update = updates.recv() => match update {
                    Ok(update) => Some(event_of(update)),
                    Err(RecvError::Lagged(skipped)) => Some(Event::default().event("resync").data(json!({"skipped": skipped}).to_string())),
                    Err(RecvError::Closed) => return,
                },
            };
        }
    });
    Sse::new(ReceiverStream::new(queued).map(Ok))
        .keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive"))
}

fn event_of(update: LiveUpdate) -> Event {
    let (kind, data) = match update {
        LiveUpdate::Upload {
            device_key,
            headset_name,
            tour,
            at,
            events_stored,
        } => (
            "upload",
            json!({"headset": device_key, "headset_name": headset_name, "tour": tour, "at": iso(at), "events_stored": events_stored}),
        ),
        LiveUpdate::TourEnded {
            device_key,
            headset_name,
            tour,
            status,
            ended_at,
        } => (
            "tour_ended",
            json!({"headset": device_key, "headset_name": headset_name, "tour": tour, "status": status, "ended_at": iso(ended_at)}),
        ),
    };
    Event::default().event(kind).data(data.to_string())
}
