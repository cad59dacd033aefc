//! Installs and runs the appliance under the operating system's service manager — the Windows SCM
//! (windows/) or systemd (linux.rs). Console mode stays `nexero serve`; the command line that
//! calls this is cli/service.rs, which hands over parsed settings so nothing here re-reads it.

use std::path::{Path, PathBuf};
#[cfg(windows)]
use std::process::ExitCode;

use crate::config::{ConfigError, Overrides, Settings};

#[cfg(unix)]
mod linux;
mod secrets;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
use linux as platform;
#[cfg(windows)]
use windows as platform;

/// The Windows service name and Event Log source; the systemd unit is `nexero.service`.
pub const SERVICE_NAME: &str = "Nexero";
pub const DISPLAY_NAME: &str = "Nexero Showroom";
pub const DESCRIPTION: &str =
    "Receives VR headset tour events on the showroom LAN and stores them for the sales dashboard.";

/// Something an admin must fix; the message says what and how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(String);

impl From<ConfigError> for ServiceError {
    fn from(e: ConfigError) -> Self {
        ServiceError(e.to_string())
    }
}

/// Installs the service, or updates it when it exists, with the settings given kept for every
/// start; secrets go into the data directory's nexero.toml, never onto the service's command
/// line. `firewall` (Windows) also allows the port through Windows Firewall on private networks.
pub fn install(overrides: &Overrides, firewall: bool) -> Result<(), ServiceError> {
    platform::install(overrides, firewall)
}

/// Stops and removes the service; the data directory goes too only with `delete_data`.
/// `overrides` names the data directory when the service is not installed any more.
pub fn uninstall(overrides: &Overrides, delete_data: bool) -> Result<(), ServiceError> {
    platform::uninstall(overrides, delete_data)
}

/// Starts the installed service and waits until it runs, or says why it stopped.
pub fn start() -> Result<(), ServiceError> {
    platform::start()
}

/// Stops the service gracefully and waits until it has stopped.
pub fn stop() -> Result<(), ServiceError> {
    platform::stop()
}

/// Prints the service's state and the facts an admin asks about; never a secret.
pub fn status() -> Result<(), ServiceError> {
    platform::status()
}

/// The entry point the Windows service manager starts (`nexero.exe service run ...`).
#[cfg(windows)]
pub fn run(overrides: &Overrides) -> ExitCode {
    platform::run(overrides)
}

/// The overrides with the data directory always set: flag, else NEXERO_DATA_DIR, else the
/// platform's service default, made absolute. A service never depends on its working directory
/// (C:\Windows\System32 under the Windows SCM).
fn pinned_data_dir(overrides: &Overrides, default: PathBuf) -> Overrides {
    let dir = overrides
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("NEXERO_DATA_DIR").map(PathBuf::from))
        .unwrap_or(default);
    // On failure the path is kept as given and Settings::load reports it with the fix.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    Overrides { data_dir: Some(dir), ..overrides.clone() }
}

/// Prints the facts `service status` shows beyond the service manager's state.
fn print_facts(settings: &Settings) {
    use crate::http::system::VERSION;
    let health = crate::net::get_health(settings.port);
    let running_version = health.as_ref().and_then(|h| h["version"].as_str().map(str::to_owned));
    match running_version {
        Some(v) if v != VERSION => println!("version:        {v} running; this program is {VERSION}"),
        _ => println!("version:        {VERSION}"),
    }
    println!("port:           {} (headsets and staff: http://<this computer's address>:{})", settings.port, settings.port);
    println!("data directory: {}", settings.data_dir.display());
    println!("database:       {}", describe_size(&settings.database_path()));
    println!("logs:           {}", log_location(settings));
    println!("last sync:      {}", last_sync(health.as_ref(), settings));
    match health {
        Some(h) => println!("health:         {} (http://127.0.0.1:{}/health)", h["status"].as_str().unwrap_or("unknown"), settings.port),
        None => println!("health:         no answer on http://127.0.0.1:{}/health", settings.port),
    }
}

/// The running appliance's last sync, from the `sync` section of its `/health`.
fn last_sync(health: Option<&serde_json::Value>, settings: &Settings) -> String {
    let configured = !settings.sync.url.is_empty();
    let Some(health) = health else {
        return if configured { "unknown (the appliance is not answering)".into() } else { "not configured".into() };
    };
    let sync = &health["sync"];
    match sync["state"].as_str() {
        Some("disabled") if sync["configured"].as_bool() == Some(true) => "switched off ([sync] enabled = false)".into(),
        Some("disabled") => "not configured".into(),
        Some(state) => {
            let tz = settings.timezone();
            let last = crate::sync::control::moment(&sync["last_success"], tz, crate::store::now_ms(), "never");
            format!("{last}; now {state} (details: `nexero sync status`)")
        }
        None => "unknown (the running appliance is a version without cloud sync)".into(),
    }
}

fn log_location(settings: &Settings) -> String {
    if cfg!(windows) {
        format!("{} and the Windows Event Log (Application, source {SERVICE_NAME})", settings.data_dir.join("logs").display())
    } else {
        "journalctl -u nexero".into()
    }
}

fn describe_size(db: &Path) -> String {
    let size = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::metadata(name).map(|m| m.len())
    };
    match size("") {
        Ok(main) => {
            let total = main + size("-wal").unwrap_or(0);
            format!("{:.1} MB ({})", total as f64 / 1_000_000.0, db.display())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("not created yet ({})", db.display()),
        Err(e) => format!("cannot read {} ({e}); run this as administrator / root", db.display()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn last_sync_reads_the_running_appliances_sync_section() {
        let mut settings = crate::config::Settings::default();
        assert_eq!(super::last_sync(None, &settings), "not configured");
        let off = json!({"sync": {"state": "disabled", "configured": false}});
        assert_eq!(super::last_sync(Some(&off), &settings), "not configured");
        settings.sync.url = "https://x.supabase.co/rest/v1".into();
        assert_eq!(super::last_sync(None, &settings), "unknown (the appliance is not answering)");
        let never = json!({"sync": {"state": "retrying", "last_success": null}});
        assert_eq!(super::last_sync(Some(&never), &settings), "never; now retrying (details: `nexero sync status`)");
        let synced = json!({"sync": {"state": "idle", "last_success": "2026-01-02T03:04:05.000Z"}});
        assert!(super::last_sync(Some(&synced), &settings).starts_with("2026-01-02 "), "a time in the site's zone");
        let old = json!({"status": "healthy"});
        assert_eq!(super::last_sync(Some(&old), &settings), "unknown (the running appliance is a version without cloud sync)");
    }
}
