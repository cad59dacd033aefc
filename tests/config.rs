//! Layered configuration, as an admin meets it: defaults < nexero.toml < NEXERO_* < flags, and a
//! bad value stops start-up with a message naming the setting and the fix.
#![cfg(unix)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{binary, free_port, get_health, wait_until_healthy, Appliance};

/// The /health answer on `port`, once it is healthy (within 15 s).
fn health(port: u16) -> Option<serde_json::Value> {
    wait_until_healthy(port, Duration::from_secs(15)).then(|| get_health(port)).flatten()
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
        let mut child = Appliance::spawn(&mut command);
        let answer = health(expected);
        child.terminate();
        assert!(child.0.wait().unwrap().success());
        let answer = answer.unwrap_or_else(|| panic!("nothing answered on port {expected}"));
        assert_eq!(answer["status"], "healthy");
        assert!(health_file_port_unused(file_port), "the file's port must be overridden");
    }
}

fn health_file_port_unused(port: u16) -> bool {
    get_health(port).is_none()
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
