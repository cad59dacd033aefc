//! `nexero service ...`: the words and flags of the service commands. The work is in
//! crate::service, which gets the parsed settings and never reads the command line itself.

use std::process::ExitCode;

use crate::config::Overrides;
use crate::service;

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: ServiceAction,
}

#[derive(clap::Subcommand, Debug)]
enum ServiceAction {
    /// Install the service, or update it when it exists: starts with the computer and restarts
    /// after failures. Settings given here (--port, --data-dir, ...) are kept for every start;
    /// secrets (--sync-key) go into nexero.toml in the data directory, not on a command line.
    Install {
        #[command(flatten)]
        overrides: Overrides,
        /// Allow the port through Windows Firewall on private networks only (not public ones)
        #[cfg(windows)]
        #[arg(long)]
        firewall: bool,
    },
    /// Stop the service, wait until it is gone and remove it. The data directory is kept.
    Uninstall {
        /// Also delete the data directory (database, nexero.toml, logs, backups)
        #[arg(long)]
        delete_data: bool,
        #[command(flatten)]
        overrides: Overrides,
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
    Run {
        #[command(flatten)]
        overrides: Overrides,
    },
}

pub fn run(args: ServiceArgs) -> ExitCode {
    let result = match args.action {
        ServiceAction::Install {
            overrides,
            #[cfg(windows)]
            firewall,
        } => {
            #[cfg(not(windows))]
            let firewall = false;
            service::install(&overrides, firewall)
        }
        ServiceAction::Uninstall { delete_data, overrides } => service::uninstall(&overrides, delete_data),
        ServiceAction::Start => service::start(),
        ServiceAction::Stop => service::stop(),
        ServiceAction::Status => service::status(),
        #[cfg(windows)]
        ServiceAction::Run { overrides } => return service::run(&overrides),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexero service: {e}");
            ExitCode::FAILURE
        }
    }
}
