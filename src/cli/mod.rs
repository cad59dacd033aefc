//! The `nexero` command line: one binary, a few maintenance subcommands (the GoatCounter model).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};

const AFTER_HELP: &str = "\
Configuration is layered: built-in defaults < nexero.toml in the data directory < NEXERO_*
environment variables < command-line flags. Every flag has a matching NEXERO_<NAME> variable and
nexero.toml key (e.g. --site-timezone, NEXERO_SITE_TIMEZONE, site_timezone = \"Asia/Kolkata\").

With no subcommand, nexero serves: ./nexero-data/nexero.db, headsets and staff on port 8000.";

#[derive(Parser, Debug)]
#[command(name = "nexero", version, about = "Nexero Showroom: VR tour analytics appliance for real-estate sales offices", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the appliance: headset API, health, docs (the default)
    Serve,
    /// Re-read uploads that were refused as not understood and store those this version recognises
    Reprocess,
    /// Measure this machine's ceilings and the appliance against them (temporary data, loopback)
    Bench(crate::bench::BenchArgs),
    /// Drive realistic simulated headsets against a running appliance
    Simulate(crate::bench::simulate::SimulateArgs),
    /// Install, remove, start, stop or inspect the Windows service / systemd unit
    Service(crate::service::ServiceArgs),
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve_console(&cli.overrides),
        Command::Reprocess => reprocess(&cli.overrides),
        Command::Bench(args) => crate::bench::run(args),
        Command::Simulate(args) => crate::bench::simulate::run(args),
        Command::Service(args) => crate::service::run(args, &cli.overrides),
    }
}

fn load(overrides: &Overrides) -> Result<Settings, ExitCode> {
    Settings::load(overrides).map_err(|e| {
        eprintln!("nexero: {e}");
        ExitCode::from(crate::StartError::Config(e).exit_code())
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the async runtime starts")
}

/// Console mode: Ctrl-C (and SIGTERM on Unix) shut down gracefully.
fn serve_console(overrides: &Overrides) -> ExitCode {
    let settings = match load(overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    init_logging(&settings.log);
    match runtime().block_on(crate::serve(settings, shutdown_signal(), |_| {})) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("nexero: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn reprocess(overrides: &Overrides) -> ExitCode {
    let settings = match load(overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    init_logging(&settings.log);
    match runtime().block_on(crate::reprocess::run(&settings)) {
        Ok(report) => {
            println!(
                "examined {} unrecognised uploads: {} now stored ({} events), {} still not understood",
                report.examined, report.recovered, report.events, report.still_rejected
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nexero: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (systemd's stop).
pub async fn shutdown_signal() {
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
