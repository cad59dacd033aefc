//! The Windows service: registration with the Service Control Manager (install, uninstall, start,
//! stop, status) and the entry point the SCM starts (`nexero.exe service run`), which reports
//! honest states and logs to rotating files and the Event Log.
//!
//! The Event Log and registry calls go straight to the Win32 API (windows-sys); each unsafe block
//! only passes NUL-terminated UTF-16 strings and handles it owns.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::Notify;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::Win32::System::EventLog as el;
use windows_sys::Win32::System::Registry as reg;

use super::{InstallArgs, ServiceError, DESCRIPTION, DISPLAY_NAME, SERVICE_NAME};
use crate::config::{Overrides, Settings};
use crate::StartError;

/// Lifecycle messages use this target so they reach the Event Log at info level too.
const LIFECYCLE: &str = "nexero::service";
const EVENT_SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\Nexero";
/// .NET Framework 4's message file maps every event id to "%1", so Event Viewer shows our text
/// as is; it ships with every Windows 10/11 and Server 2016+.
const EVENT_MESSAGE_FILE: &str = r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";
const FIREWALL_RULE: &str = "Nexero Showroom";
const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_INVALID_LEVEL: i32 = 124;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
/// How long start/stop/uninstall wait for the service before giving up.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Rotated daily; this many days of file logs are kept.
const LOG_DAYS_KEPT: usize = 14;

pub fn default_data_dir() -> PathBuf {
    // %ProgramData% is set for every account, LocalSystem included.
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("Nexero")
}

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

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, ServiceError> {
    ServiceManager::local_computer(None::<&str>, access).map_err(|e| api_error("cannot open the Service Control Manager", e))
}

fn open(access: ServiceAccess) -> Result<Service, ServiceError> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(SERVICE_NAME, access)
        .map_err(|e| api_error("cannot open the service", e))
}

pub fn install(overrides: &Overrides, args: &InstallArgs) -> Result<(), ServiceError> {
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let access = ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG | ServiceAccess::QUERY_STATUS | ServiceAccess::START;
    let existing = match scm.open_service(SERVICE_NAME, access) {
        Ok(service) => Some(service),
        Err(e) if is_missing(&e) => None,
        Err(e) => return Err(api_error("cannot open the service", e)),
    };
    // Re-running install changes only the settings given this time (an upgrade gives none).
    let overrides = match &existing {
        Some(service) => merged(&stored_overrides(service)?, overrides),
        None => overrides.clone(),
    };
    let overrides = super::pinned_data_dir(&overrides, default_data_dir());
    // A bad setting fails here, in front of the admin, rather than at the next boot.
    let settings = Settings::load(&overrides)?;
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        ServiceError(format!("cannot create the data directory {}: {e}. Fix: choose a writable --data-dir", settings.data_dir.display()))
    })?;
    let exe = std::env::current_exe().map_err(|e| ServiceError(format!("cannot find this program's own path: {e}")))?;
    let mut launch_arguments: Vec<OsString> = vec!["service".into(), "run".into()];
    launch_arguments.extend(super::pinned_flags(&overrides).into_iter().map(OsString::from));
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
    register_event_source()?;
    if args.firewall {
        allow_through_firewall(&exe, settings.port)?;
    }
    let running = service.query_status().is_ok_and(|s| s.current_state != ServiceState::Stopped);
    println!("{verb} the {DISPLAY_NAME} service ({SERVICE_NAME}): starts with the computer, restarts after failures");
    println!("  program:        {}", exe.display());
    println!("  data directory: {}", settings.data_dir.display());
    println!("  port:           {}", settings.port);
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
            let data_dir = super::pinned_data_dir(&stored_overrides(&service)?, default_data_dir()).data_dir;
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
            super::pinned_data_dir(overrides, default_data_dir()).data_dir.unwrap_or_else(default_data_dir)
        }
        Err(e) => return Err(api_error("cannot open the service", e)),
    };
    deregister_event_source();
    remove_firewall_rule();
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
    let overrides = super::pinned_data_dir(&stored_overrides(&service)?, default_data_dir());
    match Settings::load(&overrides) {
        Ok(settings) => super::print_facts(&settings),
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
    crate::cli::Cli::try_parse_from(split_command_line(&command_line)).map(|cli| cli.overrides).map_err(|e| {
        ServiceError(format!("the installed service's command line ({command_line}) is not understood: {e}. Fix: run `nexero service uninstall`, then `nexero service install`"))
    })
}

/// `base` with every flag `given` sets replaced.
fn merged(base: &Overrides, given: &Overrides) -> Overrides {
    let mut flags = std::collections::BTreeMap::new();
    for source in [base, given] {
        let pairs = super::pinned_flags(source);
        flags.extend(pairs.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())));
    }
    let line = std::iter::once("nexero".to_owned()).chain(flags.into_iter().flat_map(|(k, v)| [k, v]));
    // Both inputs came from parsed flags, so the combination parses too.
    crate::cli::Cli::try_parse_from(line).map(|cli| cli.overrides).unwrap_or_else(|_| given.clone())
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

static RUN_OVERRIDES: OnceLock<Overrides> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `nexero.exe service run`: hands the process to the SCM, which calls `service_main`.
pub fn run(overrides: &Overrides) -> ExitCode {
    let _ = RUN_OVERRIDES.set(overrides.clone());
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "nexero: `service run` is started by the Windows service manager, not from a console ({e}). \
                 Fix: use `nexero service start`, or `nexero serve` to run in this window"
            );
            ExitCode::FAILURE
        }
    }
}

/// Reports states to the SCM; shared by the service thread and the stop-progress task.
#[derive(Clone)]
struct Reporter {
    handle: ServiceStatusHandle,
    checkpoint: Arc<AtomicU32>,
}

impl Reporter {
    fn report(&self, state: ServiceState, exit_code: ServiceExitCode, wait_hint: Duration) {
        let pending = matches!(state, ServiceState::StartPending | ServiceState::StopPending);
        let status = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: match state {
                ServiceState::Running => ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
                _ => ServiceControlAccept::empty(),
            },
            exit_code,
            // A growing checkpoint tells the SCM a pending operation is still making progress.
            checkpoint: if pending { self.checkpoint.fetch_add(1, Ordering::Relaxed) + 1 } else { 0 },
            wait_hint,
            process_id: None,
        };
        if let Err(e) = self.handle.set_service_status(status) {
            tracing::warn!("cannot report {state:?} to the service manager: {e}");
        }
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let stop = Arc::new(Notify::new());
    let on_control = stop.clone();
    let handler = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            // notify_one keeps the request even if it arrives before the server listens.
            on_control.notify_one();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    });
    let handle = match handler {
        Ok(handle) => handle,
        Err(e) => {
            report_event(el::EVENTLOG_ERROR_TYPE, &format!("Nexero Showroom cannot register with the service manager: {e}"));
            return;
        }
    };
    let reporter = Reporter { handle, checkpoint: Arc::new(AtomicU32::new(0)) };
    reporter.report(ServiceState::StartPending, ServiceExitCode::NO_ERROR, Duration::from_secs(30));

    let overrides = super::pinned_data_dir(RUN_OVERRIDES.get().unwrap_or(&Overrides::default()), default_data_dir());
    let settings = Settings::load(&overrides);
    let log_dir = overrides.data_dir.unwrap_or_else(default_data_dir).join("logs");
    let filter = settings.as_ref().map(|s| s.log.clone()).unwrap_or_else(|_| "info".into());
    let file_log = init_logging(&log_dir, &filter);
    let exit_code = match settings.map_err(StartError::Config).and_then(|s| serve(s, &reporter, stop)) {
        Ok(()) => {
            tracing::info!(target: LIFECYCLE, "Nexero Showroom stopped; the database was closed cleanly");
            ServiceExitCode::NO_ERROR
        }
        Err(e) => {
            tracing::error!(target: LIFECYCLE, "Nexero Showroom could not start or stopped on an error (service exit code {}): {e}", e.exit_code());
            ServiceExitCode::ServiceSpecific(e.exit_code().into())
        }
    };
    // Flush the file log now: once Stopped is reported the process may end at any moment.
    drop(file_log);
    reporter.report(ServiceState::Stopped, exit_code, Duration::ZERO);
}

/// Runs the appliance until the SCM asks it to stop; all clean-up happens before returning.
fn serve(settings: Settings, reporter: &Reporter, stop: Arc<Notify>) -> Result<(), StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Serve)?;
    let stopping = reporter.clone();
    let shutdown = async move {
        stop.notified().await;
        tracing::info!(target: LIFECYCLE, "stop requested by the service manager; finishing in-flight uploads");
        // Keep StopPending honest: a fresh checkpoint every second while draining.
        tokio::spawn(async move {
            loop {
                stopping.report(ServiceState::StopPending, ServiceExitCode::NO_ERROR, Duration::from_secs(10));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    };
    let running = reporter.clone();
    let result = runtime.block_on(crate::serve(settings, shutdown, move |addr| {
        running.report(ServiceState::Running, ServiceExitCode::NO_ERROR, Duration::ZERO);
        tracing::info!(target: LIFECYCLE, "Nexero Showroom {} is running on {addr}", crate::web::VERSION);
    }));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Service logging: rotating daily files under `<data_dir>\logs` plus the Event Log for
/// warnings, errors and lifecycle. The returned guard flushes the files when dropped.
fn init_logging(log_dir: &Path, filter: &str) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let appender = std::fs::create_dir_all(log_dir).map_err(|e| e.to_string()).and_then(|()| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("nexero")
            .filename_suffix("log")
            .max_log_files(LOG_DAYS_KEPT)
            .build(log_dir)
            .map_err(|e| e.to_string())
    });
    let (file_layer, guard, file_error) = match appender {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer)), Some(guard), None)
        }
        Err(e) => (None, None, Some(e)),
    };
    let _ = tracing_subscriber::registry().with(filter).with(file_layer).with(EventLogLayer).try_init();
    if let Some(e) = file_error {
        tracing::warn!("cannot write log files in {}: {e}; logging to the Event Log only", log_dir.display());
    }
    guard
}

/// Forwards warnings, errors and lifecycle messages to the Event Log.
struct EventLogLayer;

impl<S: tracing::Subscriber> Layer<S> for EventLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let kind = match *meta.level() {
            tracing::Level::ERROR => el::EVENTLOG_ERROR_TYPE,
            tracing::Level::WARN => el::EVENTLOG_WARNING_TYPE,
            _ if meta.target() == LIFECYCLE => el::EVENTLOG_INFORMATION_TYPE,
            _ => return,
        };
        let mut text = String::new();
        event.record(&mut MessageText(&mut text));
        report_event(kind, &text);
    }
}

struct MessageText<'a>(&'a mut String);

impl tracing::field::Visit for MessageText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// Writes one entry to the Application log under our source; failures are ignored because the
/// Event Log is the last place left to report them.
fn report_event(kind: el::REPORT_EVENT_TYPE, text: &str) {
    let source = wide(SERVICE_NAME);
    let message = wide(text);
    let strings = [message.as_ptr()];
    // SAFETY: both strings are NUL-terminated and outlive the calls; the handle is closed here.
    unsafe {
        let log = el::RegisterEventSourceW(std::ptr::null(), source.as_ptr());
        if log.is_null() {
            return;
        }
        el::ReportEventW(log, kind, 0, kind.into(), std::ptr::null_mut(), 1, 0, strings.as_ptr(), std::ptr::null());
        el::DeregisterEventSource(log);
    }
}

/// Registers "Nexero" as an Application Event Log source, so entries are shown as written.
fn register_event_source() -> Result<(), ServiceError> {
    let key_path = wide(EVENT_SOURCE_KEY);
    let mut key: reg::HKEY = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated; `key` is only used after a successful create and
    // is closed before returning.
    let status = unsafe {
        reg::RegCreateKeyExW(
            reg::HKEY_LOCAL_MACHINE,
            key_path.as_ptr(),
            0,
            std::ptr::null(),
            reg::REG_OPTION_NON_VOLATILE,
            reg::KEY_WRITE,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(ServiceError(format!(
            "cannot register the Event Log source (Windows error {status}). Fix: run as administrator"
        )));
    }
    let message_file: Vec<u8> = wide(EVENT_MESSAGE_FILE).iter().flat_map(|c| c.to_le_bytes()).collect();
    let types: u32 = (el::EVENTLOG_ERROR_TYPE | el::EVENTLOG_WARNING_TYPE | el::EVENTLOG_INFORMATION_TYPE).into();
    let (name_file, name_types) = (wide("EventMessageFile"), wide("TypesSupported"));
    // SAFETY: as above; the data pointers and lengths describe live buffers.
    let status = unsafe {
        let a = reg::RegSetValueExW(key, name_file.as_ptr(), 0, reg::REG_EXPAND_SZ, message_file.as_ptr(), message_file.len() as u32);
        let b = reg::RegSetValueExW(key, name_types.as_ptr(), 0, reg::REG_DWORD, types.to_le_bytes().as_ptr(), 4);
        reg::RegCloseKey(key);
        if a != 0 { a } else { b }
    };
    if status != 0 {
        return Err(ServiceError(format!("cannot register the Event Log source (Windows error {status})")));
    }
    Ok(())
}

fn deregister_event_source() {
    let key_path = wide(EVENT_SOURCE_KEY);
    // SAFETY: NUL-terminated path; a missing key is fine.
    unsafe {
        reg::RegDeleteTreeW(reg::HKEY_LOCAL_MACHINE, key_path.as_ptr());
    }
}

fn allow_through_firewall(exe: &Path, port: u16) -> Result<(), ServiceError> {
    remove_firewall_rule(); // re-running install replaces the rule instead of adding a second one
    let output = std::process::Command::new("netsh")
        .args(["advfirewall", "firewall", "add", "rule"])
        .arg(format!("name={FIREWALL_RULE}"))
        .args(["dir=in", "action=allow", "protocol=TCP", "profile=private"])
        .arg(format!("localport={port}"))
        .arg(format!("program={}", exe.display()))
        .output()
        .map_err(|e| ServiceError(format!("cannot run netsh to add the firewall rule: {e}")))?;
    if !output.status.success() {
        return Err(ServiceError(format!(
            "netsh could not add the firewall rule: {}. Fix: allow TCP port {port} for private networks in \
             Windows Defender Firewall by hand",
            String::from_utf8_lossy(&output.stdout).trim()
        )));
    }
    println!("  firewall:       TCP port {port} allowed on private networks (rule \"{FIREWALL_RULE}\")");
    Ok(())
}

fn remove_firewall_rule() {
    // Nothing to remove is fine, and netsh may be missing on stripped-down systems.
    let _ = std::process::Command::new("netsh")
        .args(["advfirewall", "firewall", "delete", "rule"])
        .arg(format!("name={FIREWALL_RULE}"))
        .output();
}
