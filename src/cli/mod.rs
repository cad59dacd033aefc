//! The `nexero` command line: one binary, a few maintenance subcommands (the GoatCounter model),
//! one file per subcommand, each with only the flags that apply to it.

mod bench;
mod reprocess;
mod serve;
mod service;
mod simulate;
mod sync;
mod token;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};

const AFTER_HELP: &str = "\
Configuration is layered: built-in defaults < nexero.toml in the data directory < NEXERO_*
environment variables < command-line flags. Every setting flag has a matching NEXERO_<NAME>
variable and nexero.toml key (e.g. --site-timezone, NEXERO_SITE_TIMEZONE, site_timezone =
\"Asia/Kolkata\"; --sync-url, NEXERO_SYNC_URL, url in a [sync] section).

With no subcommand, nexero serves: ./nexero-data/nexero.db, headsets and staff on port 8000.";

#[derive(Parser, Debug)]
#[command(
    name = "nexero",
    version,
    about = "Nexero Showroom: VR tour analytics appliance for real-estate sales offices",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The settings of the default command (serve)
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the appliance: headset API, health, docs (the default)
    Serve(SettingsArgs),
    /// Re-read uploads that were refused as not understood and store those this version recognises
    Reprocess(SettingsArgs),
    /// Measure this machine's ceilings and the appliance against them (temporary data, loopback)
    Bench(crate::bench::BenchArgs),
    /// Drive realistic simulated headsets against a running appliance
    Simulate(crate::bench::simulate::SimulateArgs),
    /// Install, remove, start, stop or inspect the Windows service / systemd unit
    Service(service::ServiceArgs),
    /// Add, list, re-password or remove the staff accounts that sign in to the dashboard (works
    /// while the appliance runs)
    User(user::UserArgs),
    /// Add, list or remove read-only API tokens for BI tools and CRMs (works while the appliance runs)
    Token(token::TokenArgs),
    /// Cloud sync: the running appliance's sync status, sync now, retry quarantined rows, and the
    /// cloud schema to create
    Sync(sync::SyncArgs),
}

/// The appliance's settings as flags, for the commands that open its data.
#[derive(clap::Args, Debug)]
struct SettingsArgs {
    #[command(flatten)]
    overrides: Overrides,
}

/// Parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve::run(&cli.overrides),
        Some(Command::Serve(args)) => serve::run(&args.overrides),
        Some(Command::Reprocess(args)) => reprocess::run(&args.overrides),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Simulate(args)) => simulate::run(args),
        Some(Command::Service(args)) => service::run(args),
        Some(Command::User(args)) => user::run(args),
        Some(Command::Token(args)) => token::run(args),
        Some(Command::Sync(args)) => sync::run(args),
    }
}

/// The settings, or the exit code of a configuration error (printed here, once).
fn load(overrides: &Overrides) -> Result<Settings, ExitCode> {
    Settings::load(overrides).map_err(|e| {
        eprintln!("nexero: {e}");
        ExitCode::from(crate::StartError::Config(e).exit_code())
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the async runtime starts")
}
