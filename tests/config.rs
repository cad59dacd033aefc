//! Layered configuration, as an admin meets it: defaults < nexero.toml < NEXERO_* < flags, and a
//! bad value stops start-up with a message naming the setting and the fix.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> String {
    std::env::var("NEXERO_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nexero").to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn health(port: u16) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(body) = http::get_health(port) {
            return Some(body);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    None
}

mod http {
    /// A tiny blocking GET /health over std, so this test needs no async runtime.
    pub fn get_health(port: u16) -> std::io::Result<serde_json::Value> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).map_err(std::io::Error::other)
    }
}

#[test]
fn flags_beat_environment_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    std::fs::write(dir.path().join("nexero.toml"), format!("port = {file_port}\nbind = \"127.0.0.1\"\nsite_timezone = \"Asia/Kolkata\"\n")).unwrap();
    for (flag, expected) in [(None, env_port), (Some(flag_port), flag_port)] {
        let mut command = Command::new(binary());
        command.arg("--data-dir").arg(dir.path()).env("NEXERO_PORT", env_port.to_string()).stderr(Stdio::null());
        if let Some(port) = flag {
            command.args(["--port", &port.to_string()]);
        }
        let mut child = command.spawn().unwrap();
        let answer = health(expected);
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(child.wait().unwrap().success());
        let answer = answer.unwrap_or_else(|| panic!("nothing answered on port {expected}"));
        assert_eq!(answer["status"], "healthy");
        assert!(health_file_port_unused(file_port), "the file's port must be overridden");
    }
}

fn health_file_port_unused(port: u16) -> bool {
    http::get_health(port).is_err()
}

#[test]
fn invalid_settings_stop_start_up_with_the_setting_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let output = Command::new(binary()).arg("--data-dir").arg(dir.path()).envs(env.iter().copied()).output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).to_string())
    };
    let (code, message) = run(&[("NEXERO_SITE_TIMEZONE", "Mars/Olympus")]);
    assert_eq!(code, Some(2));
    assert!(message.contains("site_timezone") && message.contains("Fix:"), "{message}");
    let (code, message) = run(&[("NEXERO_PORT", "eighty")]);
    assert_eq!(code, Some(2));
    assert!(message.contains("PORT") && message.contains("Fix:"), "{message}");
    std::fs::write(dir.path().join("nexero.toml"), "prot = 8000\n").unwrap();
    let (code, message) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(message.contains("prot") && message.contains("nexero.toml"), "{message}");
}
