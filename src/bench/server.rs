//! A server process of the benchmark's own: `nexero serve` (or the minimal-handler ceiling) on a
//! free loopback port, killed when dropped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::net;

/// A server process of ours, killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `nexero <args>` on a free loopback port; returns it and the time to its first answer.
    pub async fn start(args: &[&str], data_dir: Option<&Path>, ready_path: &str) -> Result<(Server, Duration), String> {
        let port = net::free_port();
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        command.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        match data_dir {
            Some(dir) => command.args(["--bind", "127.0.0.1", "--log", "warn", "--port", &port.to_string(), "--data-dir"]).arg(dir),
            None => command.args(["--minimal-server", &port.to_string()]),
        };
        // The appliance answers /health; the minimal server only its one POST route.
        let probe = match ready_path {
            "/health" => net::HEALTH_REQUEST.to_owned(),
            path => format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        };
        let started = Instant::now();
        let child = command.spawn().map_err(|e| format!("cannot start the server: {e}"))?;
        let server = Server { child, base: format!("http://127.0.0.1:{port}") };
        match tokio::task::spawn_blocking(move || net::wait_until_ok(port, &probe, Duration::from_secs(30))).await {
            Ok(true) => Ok((server, started.elapsed())),
            _ => Err("the server did not answer within 30 s".into()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
