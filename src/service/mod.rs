//! `nexero service ...`: installs and runs the appliance under the operating system's service
//! manager — the Windows SCM (windows.rs) or systemd (linux.rs). Console mode stays `nexero serve`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{ConfigError, Overrides, Settings};

#[cfg(unix)]
mod linux;
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

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub action: ServiceAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum ServiceAction {
    /// Install the service, or update it when it exists: starts with the computer and restarts
    /// after failures. Settings given here (--port, --data-dir, ...) are kept for every start.
    Install(InstallArgs),
    /// Stop the service, wait until it is gone and remove it. The data directory is kept.
    Uninstall {
        /// Also delete the data directory (database, nexero.toml, logs, backups)
        #[arg(long)]
        delete_data: bool,
    },
    /// Start the installed service and wait until it runs (or report why it stopped)
    Start,
    /// Stop the service gracefully and wait until it has stopped
    Stop,
    /// Show state, version, port, data directory, database size and last sync
    Status,
    /// The entry point the Windows service manager starts; not for use from a console
    #[cfg(windows)]
    #[command(hide = true)]
    Run,
}

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Allow the port through Windows Firewall on private networks only (not public ones)
    #[cfg(windows)]
    #[arg(long)]
    pub firewall: bool,
}

/// Something an admin must fix; the message says what and how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServiceError(String);

impl From<ConfigError> for ServiceError {
    fn from(e: ConfigError) -> Self {
        ServiceError(e.to_string())
    }
}

pub fn run(args: ServiceArgs, overrides: &Overrides) -> ExitCode {
    let result = match args.action {
        ServiceAction::Install(install) => platform::install(overrides, &install),
        ServiceAction::Uninstall { delete_data } => platform::uninstall(overrides, delete_data),
        ServiceAction::Start => platform::start(),
        ServiceAction::Stop => platform::stop(),
        ServiceAction::Status => platform::status(),
        #[cfg(windows)]
        ServiceAction::Run => return platform::run(overrides),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexero service: {e}");
            ExitCode::FAILURE
        }
    }
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

/// The flags given on this command line, as arguments for the service's own command line.
fn pinned_flags(overrides: &Overrides) -> Vec<String> {
    let mut flags = Vec::new();
    if let Ok(serde_json::Value::Object(given)) = serde_json::to_value(overrides) {
        for (key, value) in given {
            flags.push(format!("--{}", key.replace('_', "-")));
            flags.push(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        }
    }
    flags
}

/// Prints the facts `service status` shows beyond the service manager's state.
fn print_facts(settings: &Settings) {
    let health = fetch_health(settings.port);
    let running_version = health.as_ref().and_then(|h| h["version"].as_str().map(str::to_owned));
    match running_version {
        Some(v) if v != crate::web::VERSION => println!("version:        {v} running; this program is {}", crate::web::VERSION),
        _ => println!("version:        {}", crate::web::VERSION),
    }
    println!("port:           {} (headsets and staff: http://<this computer's address>:{})", settings.port, settings.port);
    println!("data directory: {}", settings.data_dir.display());
    println!("database:       {}", describe_size(&settings.database_path()));
    println!("logs:           {}", log_location(settings));
    // Cloud sync is not part of this version; say so rather than leave the admin guessing.
    println!("last sync:      never (cloud sync is not available in this version)");
    match health {
        Some(h) => println!("health:         {} (http://127.0.0.1:{}/health)", h["status"].as_str().unwrap_or("unknown"), settings.port),
        None => println!("health:         no answer on http://127.0.0.1:{}/health", settings.port),
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

/// A plain HTTP/1.0 GET of /health on loopback: enough for a status line, no HTTP client needed.
fn fetch_health(port: u16) -> Option<serde_json::Value> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}
