//! The Windows service: registration with the Service Control Manager (manager.rs: install,
//! uninstall, start, stop, status), the entry point the SCM starts (host.rs: `nexero.exe service
//! run`, which reports honest states and logs to rotating files), the Event Log source
//! (eventlog.rs) and the optional firewall rule (firewall.rs).

use std::path::PathBuf;

use super::{ServiceError, SERVICE_NAME};

mod eventlog;
mod firewall;
mod host;
mod manager;

pub use host::run;
pub use manager::{install, start, status, stop, uninstall};

/// Lifecycle messages use this target so they reach the Event Log at info level too.
const LIFECYCLE: &str = "nexero::service";

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_INVALID_LEVEL: i32 = 124;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;

pub fn default_data_dir() -> PathBuf {
    // %ProgramData% is set for every account, LocalSystem included.
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("Nexero")
}

/// Turns a service-manager failure into what the admin must do about it.
fn api_error(what: &str, e: windows_service::Error) -> ServiceError {
    let os = match &e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    };
    match os {
        Some(ERROR_ACCESS_DENIED) => ServiceError(format!(
            "{what}: access denied. Fix: run this from a PowerShell or Command Prompt opened with \"Run as administrator\""
        )),
        Some(ERROR_SERVICE_DOES_NOT_EXIST) => ServiceError(format!(
            "{what}: the {SERVICE_NAME} service is not installed. Fix: run `nexero service install` as administrator"
        )),
        Some(code) => ServiceError(format!("{what}: Windows error {code} ({})", std::io::Error::from_raw_os_error(code))),
        None => ServiceError(format!("{what}: {e}")),
    }
}

fn is_missing(e: &windows_service::Error) -> bool {
    matches!(e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST))
}
