//! A secret setting (`sync.key`) is used, never shown: not in the logs (even at debug level), not in
//! /health, not in the settings' Debug form, and not on the command line a service is installed
//! with (it goes to the protected nexero.toml instead). `nexero service status` needs systemd and
//! is not run here.
#![cfg(unix)]

mod common;

use std::fs::File;
use std::time::Duration;

use common::{free_port, raw_http, raw_post, serve_command, Appliance, HEALTH_REQUEST, UNIVERSAL};
use nexero::config::{Overrides, Settings};

const SECRET: &str = "sb_secret_TESTONLY_7f3a9c";
const SYNC_URL: &str = "https://example.invalid/rest/v1";

#[test]
fn the_sync_key_stays_out_of_logs_and_health() {
    let data_dir = tempfile::tempdir().unwrap();
    let output_dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (output_dir.path().join("stdout"), output_dir.path().join("stderr"));
    let port = free_port();
    // Output to files, not pipes: nothing is dropped or blocked however much is logged.
    let mut appliance = Appliance::spawn(
        serve_command(data_dir.path(), port)
            .args(["--log", "debug"])
            .env("NEXERO_SYNC_URL", SYNC_URL)
            .env("NEXERO_SYNC_KEY", SECRET)
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap()),
    );
    appliance.wait_until_healthy(port, Duration::from_secs(20));

    let (status, answer) = raw_post(port, UNIVERSAL, r#"{"View": "Home", "TotalDuration": "0:02"}"#).unwrap();
    assert_eq!(status, 201, "{answer}");
    let (status, info) = raw_http(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(status, 200, "{info}");
    let (status, health) = raw_http(port, HEALTH_REQUEST).unwrap();
    assert_eq!(status, 200, "{health}");
    let parsed: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(parsed["sync"]["configured"], true, "the key's URL is configured: {health}");
    assert!(!health.contains(SECRET), "/health shows the secret: {health}");
    assert!(!info.contains(SECRET), "/ shows the secret: {info}");

    appliance.terminate();
    let exit = appliance.exit_within(Duration::from_secs(20)).expect("nexero exits within 20 s of SIGTERM");
    assert!(exit.success(), "a SIGTERM stop is a clean exit, got {exit:?}");
    let (stdout, stderr) = (std::fs::read_to_string(stdout).unwrap(), std::fs::read_to_string(stderr).unwrap());
    assert!(stderr.contains("Nexero Showroom is listening"), "the log was captured: {stderr}");
    assert!(!stderr.contains(SECRET), "the log shows the secret:\n{stderr}");
    assert!(!stdout.contains(SECRET), "stdout shows the secret:\n{stdout}");
}

#[test]
fn settings_from_nexero_toml_print_the_key_as_stars() {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join("nexero.toml"), format!("[sync]\nurl = \"{SYNC_URL}\"\nkey = \"{SECRET}\"\n")).unwrap();
    let settings = common::settings(data_dir.path(), |_| {});
    let shown = format!("{settings:?}");
    assert!(shown.contains("***"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(settings.sync.key.expose(), SECRET, "the key itself is there for the code that uses it");
}

#[test]
fn a_service_command_line_never_carries_the_key() {
    // What `nexero service install --port 8001 --sync-url ... --sync-key ...` is given.
    let flags = ["--port", "8001", "--sync-url", SYNC_URL, "--sync-key", SECRET].map(String::from);
    let overrides = Overrides::from_flags(flags).unwrap();
    let shown = format!("{overrides:?}");
    assert!(!shown.contains(SECRET), "{shown}");

    // The unit's Environment lines / the Windows service's arguments are made from these flags.
    let kept = overrides.to_flags();
    assert_eq!(kept, ["--port", "8001", "--sync-url", SYNC_URL], "settings other than the secret are kept");
    assert!(!kept.iter().any(|flag| flag.contains(SECRET) || flag == "--sync-key"), "{kept:?}");
    // The key goes to the protected nexero.toml, under its key there.
    assert_eq!(overrides.secrets(), [("sync.key", SECRET.to_string())]);
}

#[test]

fn a_mistyped_key_is_not_quoted_in_the_configuration_error() {
    // A stray word after the key (TOML syntax error: the message shows the line), and a numeric
    // key written without quotes (a type error: the message shows the value).
    for (toml, secret) in [(format!("[sync]\nkey = \"{SECRET}\" oops\n"), SECRET), ("[sync]\nkey = 7301946285\n".into(), "7301946285")] {
        let data_dir = tempfile::tempdir().unwrap();
        std::fs::write(data_dir.path().join("nexero.toml"), toml).unwrap();
        if let Err(error) = Settings::load(&Overrides { data_dir: Some(data_dir.path().to_path_buf()), ..Default::default() }) {
            assert!(!error.to_string().contains(secret), "{error}");
        }
    }
}
