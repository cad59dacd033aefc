//! Registration with the Service Control Manager — install, uninstall, start, stop, status —
//! and the settings stored in the service's command line (`nexero.exe service run --port ...`).

use std::ffi::{OsStr, OsString};
use std::time::{Duration, Instant};

use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceErrorControl, ServiceExitCode, ServiceFailureActions,
    ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::{api_error, default_data_dir, eventlog, firewall, is_missing};
use super::{ERROR_INVALID_LEVEL, ERROR_SERVICE_NOT_ACTIVE};
use crate::config::{Overrides, Settings};
use crate::service::{pinned_data_dir, print_facts, secrets, ServiceError, DESCRIPTION, DISPLAY_NAME, SERVICE_NAME};

/// How long start/stop/uninstall wait for the service before giving up.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, ServiceError> {
    ServiceManager::local_computer(None::<&str>, access).map_err(|e| api_error("cannot open the Service Control Manager", e))
}

fn open(access: ServiceAccess) -> Result<Service, ServiceError> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(SERVICE_NAME, access)
        .map_err(|e| api_error("cannot open the service", e))
}

pub fn install(overrides: &Overrides, firewall: bool) -> Result<(), ServiceError> {
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let access = ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG | ServiceAccess::QUERY_STATUS | ServiceAccess::START;
    let existing = match scm.open_service(SERVICE_NAME, access) {
        Ok(service) => Some(service),
        Err(e) if is_missing(&e) => None,
        Err(e) => return Err(api_error("cannot open the service", e)),
    };
    // Taken before the merge below, which carries the command-line flags only.
    let given_secrets = overrides.secrets();
    // Re-running install changes only the settings given this time (an upgrade gives none).
    let overrides = match &existing {
        Some(service) => merged(&stored_overrides(service)?, overrides),
        None => overrides.clone(),
    };
    let overrides = pinned_data_dir(&overrides, default_data_dir());
    // A bad setting fails here, in front of the admin, rather than at the next boot.
    let settings = Settings::load(&overrides)?;
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        ServiceError(format!("cannot create the data directory {}: {e}. Fix: choose a writable --data-dir", settings.data_dir.display()))
    })?;
    // The command line (below) is readable by every user; the secrets go into the file instead.
    let secrets = secrets::store(&settings.data_dir, &given_secrets)?;
    let exe = std::env::current_exe().map_err(|e| ServiceError(format!("cannot find this program's own path: {e}")))?;
    let mut launch_arguments: Vec<OsString> = vec!["service".into(), "run".into()];
    launch_arguments.extend(overrides.to_flags().into_iter().map(OsString::from));
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let (service, verb) = match existing {
        Some(service) => {
            service.change_config(&info).map_err(|e| api_error("cannot update the service", e))?;
            (service, "updated")
        }
        None => (scm.create_service(&info, access).map_err(|e| api_error("cannot create the service", e))?, "installed"),
    };
    service.set_description(DESCRIPTION).map_err(|e| api_error("cannot set the description", e))?;
    optional_setting(service.set_delayed_auto_start(true), "delayed automatic start", "it starts at boot without the delay")?;
    let restart = |secs| ServiceAction { action_type: ServiceActionType::Restart, delay: Duration::from_secs(secs) };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(5), restart(30), restart(120)]),
        })
        .map_err(|e| api_error("cannot set the recovery actions", e))?;
    // A start-up failure ends with a non-zero exit code but no crash; restart then too.
    optional_setting(
        service.set_failure_actions_on_non_crash_failures(true),
        "recovery after start-up failures",
        "it is restarted after crashes only",
    )?;
    eventlog::register_source()?;
    if firewall {
        firewall::allow(&exe, settings.port)?;
    }
    let running = service.query_status().is_ok_and(|s| s.current_state != ServiceState::Stopped);
    println!("{verb} the {DISPLAY_NAME} service ({SERVICE_NAME}): starts with the computer, restarts after failures");
    println!("  program:        {}", exe.display());
    println!("  data directory: {}", settings.data_dir.display());
    println!("  port:           {}", settings.port);
    if let Some(secrets) = secrets {
        println!("  secrets:        {secrets}");
    }
    if running {
        println!("It is running the previous settings; they apply after `nexero service stop` and `nexero service start`.");
    } else {
        println!("Start it now with `nexero service start` (it also starts with the computer).");
    }
    Ok(())
}

/// Applies a setting that Windows 10+ supports but some systems (Wine) refuse with
/// ERROR_INVALID_LEVEL: then the admin is told what differs instead of the install failing.
fn optional_setting(result: windows_service::Result<()>, what: &str, consequence: &str) -> Result<(), ServiceError> {
    match result {
        Ok(()) => Ok(()),
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(ERROR_INVALID_LEVEL) => {
            println!("note: this Windows does not support {what}; {consequence}");
            Ok(())
        }
        Err(e) => Err(api_error(&format!("cannot set {what}"), e)),
    }
}

pub fn uninstall(overrides: &Overrides, delete_data: bool) -> Result<(), ServiceError> {
    let scm = manager(ServiceManagerAccess::CONNECT)?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG | ServiceAccess::STOP | ServiceAccess::DELETE;
    let data_dir = match scm.open_service(SERVICE_NAME, access) {
        Ok(service) => {
            let data_dir = pinned_data_dir(&stored_overrides(&service)?, default_data_dir()).data_dir;
            stop_and_wait(&service)?;
            service.delete().map_err(|e| api_error("cannot remove the service", e))?;
            // Deletion completes once every handle, ours included, is closed.
            drop(service);
            wait_until_gone(&scm)?;
            println!("removed the {SERVICE_NAME} service");
            data_dir.unwrap_or_else(default_data_dir)
        }
        Err(e) if is_missing(&e) => {
            println!("the {SERVICE_NAME} service is not installed");
            pinned_data_dir(overrides, default_data_dir()).data_dir.unwrap_or_else(default_data_dir)
        }
        Err(e) => return Err(api_error("cannot open the service", e)),
    };
    eventlog::deregister_source();
    firewall::remove();
    if delete_data {
        match std::fs::remove_dir_all(&data_dir) {
            Ok(()) => println!("deleted the data directory {}", data_dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ServiceError(format!("cannot delete {}: {e}. Fix: close programs using it and delete it by hand", data_dir.display())))
            }
        }
    } else {
        println!("kept the data directory {} (database, settings, logs, backups)", data_dir.display());
    }
    Ok(())
}

fn wait_until_gone(scm: &ServiceManager) -> Result<(), ServiceError> {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        match scm.open_service(SERVICE_NAME, ServiceAccess::QUERY_STATUS) {
            Err(e) if is_missing(&e) => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(ServiceError(format!(
                    "the service is marked for deletion but still registered after {} s. Fix: close the Services \
                     window and Event Viewer (they hold it open), or restart the computer",
                    STATE_TIMEOUT.as_secs()
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

pub fn start() -> Result<(), ServiceError> {
    let service = open(ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    let status = service.query_status().map_err(|e| api_error("cannot query the service", e))?;
    if status.current_state == ServiceState::Running {
        println!("the {SERVICE_NAME} service is already running");
        return Ok(());
    }
    service.start::<&OsStr>(&[]).map_err(|e| api_error("cannot start the service", e))?;
    let status = wait_while(&service, ServiceState::StartPending)?;
    match status.current_state {
        ServiceState::Running => {
            println!("the {SERVICE_NAME} service is running");
            Ok(())
        }
        _ => Err(ServiceError(format!("the service did not start: {}", describe_exit(&status.exit_code)))),
    }
}

pub fn stop() -> Result<(), ServiceError> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    stop_and_wait(&service)?;
    println!("the {SERVICE_NAME} service is stopped");
    Ok(())
}

fn stop_and_wait(service: &Service) -> Result<(), ServiceError> {
    match service.stop() {
        Ok(_) => {}
        Err(windows_service::Error::Winapi(e)) if e.raw_os_error() == Some(ERROR_SERVICE_NOT_ACTIVE) => return Ok(()),
        Err(e) => return Err(api_error("cannot stop the service", e)),
    }
    let status = wait_while(service, ServiceState::StopPending)?;
    if status.current_state != ServiceState::Stopped {
        return Err(ServiceError(format!("the service is {:?} instead of stopped", status.current_state)));
    }
    Ok(())
}

/// Polls until the service leaves `pending` (or a state that leads to it).
fn wait_while(service: &Service, pending: ServiceState) -> Result<ServiceStatus, ServiceError> {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let status = service.query_status().map_err(|e| api_error("cannot query the service", e))?;
        let settled = match pending {
            ServiceState::StartPending => !matches!(status.current_state, ServiceState::StartPending),
            _ => status.current_state == ServiceState::Stopped,
        };
        if settled {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(ServiceError(format!(
                "the service is still {:?} after {} s. Fix: see the log files under the data directory's logs folder",
                status.current_state,
                STATE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn describe_exit(code: &ServiceExitCode) -> String {
    match code {
        ServiceExitCode::ServiceSpecific(n) => {
            let why = match n {
                2 => "invalid configuration",
                3 => "the port is in use",
                4 => "the database or data directory cannot be opened",
                _ => "the server failed",
            };
            format!("exit code {n} ({why}). The reason is in the Event Log (Application, source {SERVICE_NAME}) and the log files")
        }
        ServiceExitCode::Win32(0) => "stopped normally".into(),
        ServiceExitCode::Win32(n) => format!("Windows error {n}"),
    }
}

pub fn status() -> Result<(), ServiceError> {
    let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)?;
    let status = service.query_status().map_err(|e| api_error("cannot query the service", e))?;
    let state = match status.current_state {
        ServiceState::Running => format!("running (process {})", status.process_id.unwrap_or_default()),
        ServiceState::Stopped => format!("stopped ({})", describe_exit(&status.exit_code)),
        other => format!("{other:?}"),
    };
    println!("service:        {SERVICE_NAME} ({DISPLAY_NAME})");
    println!("state:          {state}");
    let overrides = pinned_data_dir(&stored_overrides(&service)?, default_data_dir());
    match Settings::load(&overrides) {
        Ok(settings) => print_facts(&settings),
        Err(e) => {
            println!("data directory: {}", overrides.data_dir.unwrap_or_else(default_data_dir).display());
            println!("settings:       {e}");
        }
    }
    Ok(())
}

/// The flags stored in the installed service's command line.
fn stored_overrides(service: &Service) -> Result<Overrides, ServiceError> {
    let config = service.query_config().map_err(|e| api_error("cannot read the service configuration", e))?;
    let command_line = config.executable_path.to_string_lossy().into_owned();
    overrides_in(&command_line).map_err(|why| {
        ServiceError(format!("the installed service's command line ({command_line}) is not understood: {why}. Fix: run `nexero service uninstall`, then `nexero service install`"))
    })
}

/// The flags of a command line that install wrote as `<program> service run <flags>`.
fn overrides_in(command_line: &str) -> Result<Overrides, String> {
    match split_command_line(command_line).as_slice() {
        [_program, service, run, flags @ ..] if service == "service" && run == "run" => {
            Overrides::from_flags(flags.iter().cloned()).map_err(|e| e.to_string())
        }
        _ => Err("it does not start with `service run`".into()),
    }
}

/// `base` with every flag `given` sets replaced: the later of two repeated flags wins.
fn merged(base: &Overrides, given: &Overrides) -> Overrides {
    // Both inputs came from parsed flags, so the combination parses too.
    Overrides::from_flags(base.to_flags().into_iter().chain(given.to_flags())).unwrap_or_else(|_| given.clone())
}

/// Splits a command line the way the Microsoft C runtime does (quotes, and backslashes before
/// quotes), which is how windows-service quoted the arguments it stored.
fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let (mut in_quotes, mut started, mut backslashes) = (false, false, 0usize);
    for c in line.chars() {
        match c {
            '\\' => {
                backslashes += 1;
                started = true;
            }
            '"' => {
                current.extend(std::iter::repeat_n('\\', backslashes / 2));
                if backslashes % 2 == 1 {
                    current.push('"');
                } else {
                    in_quotes = !in_quotes;
                }
                backslashes = 0;
                started = true;
            }
            ' ' | '\t' if !in_quotes => {
                current.extend(std::iter::repeat_n('\\', backslashes));
                backslashes = 0;
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            c => {
                current.extend(std::iter::repeat_n('\\', backslashes));
                backslashes = 0;
                current.push(c);
                started = true;
            }
        }
    }
    current.extend(std::iter::repeat_n('\\', backslashes));
    if started {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_command_line_install_wrote() {
        let line = r#""C:\Program Files\Nexero\nexero.exe" service run --data-dir "C:\ProgramData\Nexero Showroom" --port 8001"#;
        let overrides = overrides_in(line).unwrap();
        assert_eq!(overrides.data_dir.as_deref(), Some(std::path::Path::new(r"C:\ProgramData\Nexero Showroom")));
        assert_eq!(overrides.port, Some(8001));
        assert!(overrides_in(r"C:\nexero.exe serve --port 8001").is_err());
    }

    #[test]
    fn a_new_install_changes_only_the_settings_it_gives() {
        let stored = overrides_in(r"C:\nexero.exe service run --bind 127.0.0.1 --port 8001").unwrap();
        let given = Overrides { port: Some(8002), log: Some("debug".into()), ..Overrides::default() };
        let both = merged(&stored, &given);
        assert_eq!(both.to_flags(), ["--bind", "127.0.0.1", "--port", "8002", "--log", "debug"]);
    }
}
