//! The HTTP server: our own accept loop over hyper's HTTP/1 connections, because `axum::serve`
//! has no timeouts and no cap on connections. Every connection is bounded in time and the
//! connections in number:
//!
//! - its request headers must arrive within `header_read_timeout` — hyper restarts that timer
//!   while a keep-alive connection waits for its next request, so it is the idle timeout too;
//! - a request body must arrive within `body_read_timeout` (`ingest::receive` enforces it, and
//!   keeps what arrived); an answer the client does not read for as long is abandoned;
//! - at most `max_connections` are open. A new one beyond them takes the place of the connection
//!   that has waited longest without a request (`slots`); when every connection has a request in
//!   progress it is answered `503` with `Retry-After` and `Connection: close` at once and closed,
//!   so headsets and `/health` get an answer instead of a hang, and the process never runs out of
//!   file descriptors.
//!
//! Graceful shutdown as before: stop accepting, let the requests in flight finish, close idle
//! connections; dropping the future closes whatever is still open.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, OriginalUri};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::router::normalise_path;
use super::slots::{Place, Slots, Take};

/// Connections over the cap whose 503 is given time to be read; beyond these, a connection gets
/// its 503 written and is closed at once.
const OVERFLOW_ANSWERS: usize = 64;
/// How long a refused connection is kept open after its 503 so the client reads it (closing a
/// socket with unread input resets the connection and may destroy the answer).
const OVERFLOW_LINGER: Duration = Duration::from_secs(1);
/// File descriptors kept for everything but connections: the database, its WAL and lock, logs.
#[cfg(unix)]
const RESERVED_FDS: u64 = 64;
/// The most of a request's head, or of a body chunk, hyper buffers per connection: request heads
/// larger than this are refused (431); 16 KiB is twice what common servers allow by default, and
/// 512 connections then buffer at most 8 MiB.
const MAX_CONNECTION_BUFFER: usize = 16 * 1024;

/// The time and number limits of the server (from the settings of the same names).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Headers of a request within this, and a keep-alive connection idle at most this long.
    pub header_read_timeout: Duration,
    /// A client that reads none of its answer for this long is cut off.
    pub write_stall_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `graceful` resolves, then stops accepting, lets the
/// requests in flight finish and returns when every connection has closed. Dropping the
/// returned future closes the connections still open.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, graceful: impl Future<Output = ()>) -> io::Result<()> {
    let max_connections = fit_to_descriptor_limit(limits.max_connections);
    let slots = Slots::new(max_connections);
    // Connections being answered 503, or waiting for the place of one closed for them.
    let overflow = Arc::new(Semaphore::new(OVERFLOW_ANSWERS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_CONNECTION_BUFFER);
    let shared = Arc::new(Shared {
        router,
        builder,
        write_stall_timeout: limits.write_stall_timeout,
        stopping: CancellationToken::new(),
        closing: CancellationToken::new(),
        over_cap_answer: over_cap_answer(max_connections),
    });
    // Dropped with this future (at the end, or when the caller gives up waiting): closes all.
    let _close_all = shared.closing.clone().drop_guard();
    let connections = TaskTracker::new();
    let mut over_cap_logged = false;

    tokio::pin!(graceful);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut graceful => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match slots.take() {
            Take::Free(place) => {
                over_cap_logged = false;
                connections.spawn(connection(stream, addr, place, shared));
            }
            Take::Handover(handover) => match overflow.clone().try_acquire_owned() {
                // Wait for the place off the accept loop, which goes on accepting.
                Ok(pending) => {
                    connections.spawn(async move {
                        match handover.await {
                            Some(place) => {
                                drop(pending);
                                connection(stream, addr, place, shared).await;
                            }
                            None => refuse_over_cap(stream, &shared.over_cap_answer).await,
                        }
                    });
                }
                Err(_) => refuse_over_cap_now(stream, &shared.over_cap_answer),
            },
            Take::Busy => {
                if !over_cap_logged {
                    tracing::warn!(max_connections, "every connection has a request in progress: new connections get 503 until some finish");
                    over_cap_logged = true;
                }
                match overflow.clone().try_acquire_owned() {
                    Ok(answering) => {
                        connections.spawn(async move {
                            refuse_over_cap(stream, &shared.over_cap_answer).await;
                            drop(answering);
                        });
                    }
                    Err(_) => refuse_over_cap_now(stream, &shared.over_cap_answer),
                }
            }
        }
    }

    drop(listener);
    shared.stopping.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// What every connection task shares.
struct Shared {
    router: Router,
    builder: http1::Builder,
    write_stall_timeout: Duration,
    /// Cancelled when shutdown starts: finish what is in flight, take nothing new.
    stopping: CancellationToken,
    /// Cancelled when the grace is over: close now.
    closing: CancellationToken,
    over_cap_answer: String,
}

/// Serves one connection in its place until it closes, is closed for a new one, or shutdown.
async fn connection(stream: TcpStream, addr: SocketAddr, place: Place, shared: Arc<Shared>) {
    let state = place.connection.clone();
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        state.request_started();
        request.extensions_mut().insert(ConnectInfo(addr));
        // The inbox keeps the path as the headset called it; routing uses the rewrite.
        let called = OriginalUri(request.uri().clone());
        request.extensions_mut().insert(called);
        normalise_path(&mut request);
        let answer = router.clone().oneshot(request);
        let state = state.clone();
        async move {
            let answer = answer.await;
            state.request_done();
            answer
        }
    });
    let io = WriteDeadline::new(TokioIo::new(stream), shared.write_stall_timeout);
    let connection = shared.builder.serve_connection(io, service);
    tokio::pin!(connection);
    let (stopping, closing, evicted) = (&shared.stopping, &shared.closing, &place.connection.evicted);
    let served = tokio::select! {
        served = connection.as_mut() => Some(served),
        () = stopping.cancelled() => None,
        () = evicted.cancelled() => None,
        () = closing.cancelled() => return,
    };
    let served = match served {
        Some(served) => served,
        // Stopping, or closed for a new connection after a request: let an answer on its way
        // finish; hyper closes the connection after it (at once when it is idle).
        None if stopping.is_cancelled() || place.connection.served() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                served = connection.as_mut() => served,
                () = closing.cancelled() => return,
            }
        }
        // Closed for a new connection before a whole request came: nothing is owed.
        None => return,
    };
    if let Err(e) = served {
        tracing::debug!(%addr, error = %e, "connection ended with an error");
    }
}

/// An accept error: a connection that failed before we took it is nothing to act on; out of
/// file descriptors, wait a little for some to close instead of spinning.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock) {
        return;
    }
    tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The answer to a connection over the cap: `503` with `Retry-After` and the same JSON shape as
/// every error, written before the request is read.
fn over_cap_answer(max_connections: usize) -> String {
    let body = serde_json::json!({
        "code": "OVERLOADED",
        "message": format!("too many open connections (max_connections = {max_connections}); retry shortly"),
        "detail": "too many open connections; retry shortly",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Writes the 503, closes the sending side, and reads what the client sends until it closes (at
/// most `OVERFLOW_LINGER`), so closing does not reset the connection before the client has read
/// the answer.
async fn refuse_over_cap(mut stream: TcpStream, answer: &str) {
    let linger = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(OVERFLOW_LINGER, linger).await;
}

/// The same without waiting, when even the lingering answers are at their cap: the 503 goes
/// into the socket's empty send buffer, what the client has sent so far is read, and the socket
/// is closed — the answer is lost only when the client's request arrives after that.
fn refuse_over_cap_now(stream: TcpStream, answer: &str) {
    let _ = stream.try_write(answer.as_bytes());
    let Ok(stream) = stream.into_std() else { return };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(std::io::Read::read(&mut &stream, &mut sink), Ok(n) if n > 0) {}
}

/// Raises the soft open-file limit to the hard one, and lowers the connection cap when even that
/// cannot hold it (each connection is a file descriptor; running out would stop `accept`, the
/// database and the logs alike).
fn fit_to_descriptor_limit(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        let limit = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or raise the open-file limit");
                return max_connections;
            }
        };
        let room = limit.saturating_sub(RESERVED_FDS + OVERFLOW_ANSWERS as u64) as usize;
        if room < max_connections {
            let lowered = room.max(16);
            tracing::warn!(
                max_connections,
                open_file_limit = limit,
                lowered,
                "the open-file limit cannot hold max_connections; serving at most {lowered} connections (raise the limit, e.g. LimitNOFILE=)"
            );
            return lowered;
        }
    }
    max_connections
}

/// The connection's socket, with a limit on how long a write may wait: a client that stops
/// reading its answers would otherwise hold its connection (and its slot) for ever.
struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// After a write made progress: `Ready`, and the stall clock stops.
    fn progress<R>(&mut self, poll: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {} s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for WriteDeadline<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: hyper::rt::ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for WriteDeadline<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(poll, cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(poll, cx)
    }
}
