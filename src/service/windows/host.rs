//! The process the SCM starts (`nexero.exe service run <flags>`): it reports honest states —
//! StartPending, Running, StopPending with progress, Stopped with a service-specific exit code —
//! and logs to rotating files under the data directory plus the Event Log.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::Win32::System::EventLog::EVENTLOG_ERROR_TYPE;

use super::eventlog::{self, EventLogLayer};
use super::{default_data_dir, LIFECYCLE};
use crate::app::StartError;
use crate::config::{Overrides, Settings};
use crate::service::{pinned_data_dir, SERVICE_NAME};

/// Rotated daily; this many days of file logs are kept.
const LOG_DAYS_KEPT: usize = 14;

/// The settings from the command line, for `service_main`, which the SCM calls without them.
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
            eventlog::report_event(EVENTLOG_ERROR_TYPE, &format!("Nexero Showroom cannot register with the service manager: {e}"));
            return;
        }
    };
    let reporter = Reporter { handle, checkpoint: Arc::new(AtomicU32::new(0)) };
    reporter.report(ServiceState::StartPending, ServiceExitCode::NO_ERROR, Duration::from_secs(30));

    let overrides = pinned_data_dir(RUN_OVERRIDES.get().unwrap_or(&Overrides::default()), default_data_dir());
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
    let result = runtime.block_on(crate::app::serve(settings, shutdown, move |addr| {
        running.report(ServiceState::Running, ServiceExitCode::NO_ERROR, Duration::ZERO);
        tracing::info!(target: LIFECYCLE, "Nexero Showroom {} is running on {addr}", crate::http::system::VERSION);
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
