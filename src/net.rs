//! Plain blocking HTTP over loopback: a free port, one raw request, the `/health` answer, and
//! waiting until an appliance answers. `service status` asks the running appliance with these,
//! `bench` starts its servers with them, and the integration tests (tests/common) use the same
//! functions, so there is one implementation of each.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// `GET /health` as a complete request, closing the connection after the answer.
pub const HEALTH_REQUEST: &str = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// How long one connection attempt may take; loopback answers at once or refuses.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the answer to one request may take: /health does a real write through the writer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two attempts while waiting for a server; short, since bench reports start-up times.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// A loopback port that was free a moment ago (the OS picks it; another process may take it
/// before the caller binds it, which on loopback in a test is rare enough to accept).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("the OS gives a free loopback port")
        .port()
}

/// Sends `request` exactly as given to 127.0.0.1:`port` (the caller writes `Connection: close`,
/// or the read waits for the server to close), reads the answer to its end and returns its status
/// code and body. Chunked bodies are returned as sent, chunk sizes included.
pub fn raw_http(port: u16, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let malformed = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP answer: {answer:.200}"));
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(malformed)?;
    // "HTTP/1.1 200 OK": the second word of the status line.
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(malformed)?;
    Ok((status, body.to_owned()))
}

/// The JSON body of `/health` on `port`, whatever its status (a 503 also says why), or `None`
/// when nothing answered with JSON.
pub fn get_health(port: u16) -> Option<serde_json::Value> {
    let (_, body) = raw_http(port, HEALTH_REQUEST).ok()?;
    serde_json::from_str(&body).ok()
}

/// Polls `/health` on `port` until it answers 200; false when `timeout` passes first.
pub fn wait_until_healthy(port: u16, timeout: Duration) -> bool {
    wait_until_ok(port, HEALTH_REQUEST, timeout)
}

/// Sends `request` to `port` until it is answered 200 (`HEALTH_REQUEST`, or a probe of a server
/// without `/health`); false when `timeout` passes first.
pub fn wait_until_ok(port: u16, request: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if raw_http(port, request).is_ok_and(|(status, _)| status == 200) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
