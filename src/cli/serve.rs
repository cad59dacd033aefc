//! `nexero serve` (the default): the appliance in this console; Ctrl-C (and SIGTERM on Unix,
//! systemd's stop) shut it down gracefully.

use std::process::ExitCode;

use crate::config::Overrides;

pub fn run(overrides: &Overrides) -> ExitCode {
    let settings = match super::load(overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let _logging = crate::logging::init_console(&settings.log);
    match super::runtime().block_on(crate::serve(settings, shutdown_signal(), |_| {})) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logged once, to stderr like every other line.
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}
