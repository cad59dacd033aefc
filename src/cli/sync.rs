//! `nexero sync status|now|retry-quarantined|schema`: cloud sync from the command line. The first
//! three ask the running appliance over loopback (it is the only writer of its database), sending
//! the control token it wrote to `<data_dir>/control.token` at start; `schema` prints the cloud
//! schema to create in the cloud database. Exit codes: 0 done, 2 a bad setting, 1 anything else
//! (not running, sync not configured, …), each with a message saying what to do.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::user::{finish, Failure};
use super::SettingsArgs;
use crate::auth::control;
use crate::config::Settings;
use crate::sync::control::{describe, PATH_NOW, PATH_RETRY, PATH_STATUS};

/// The cloud schema, the same file the repository ships as packaging/cloud/schema.sql.
const CLOUD_SCHEMA: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/cloud/schema.sql"));

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
}

#[derive(Subcommand, Debug)]
enum SyncCommand {
    /// Show the running appliance's sync: state, target, queue, last success, last error
    Status {
        /// Print the status as JSON, as the appliance answers it
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Start a sync round now instead of at the next interval
    Now {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Queue the rows the cloud refused again (after fixing the cloud side), and sync them now
    RetryQuarantined {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Print the SQL that creates the cloud tables (run it once in the cloud database)
    Schema,
}

pub fn run(args: SyncArgs) -> ExitCode {
    let result = match args.command {
        SyncCommand::Status { json, settings } => status(&settings, json),
        SyncCommand::Now { settings } => now(&settings),
        SyncCommand::RetryQuarantined { settings } => retry(&settings),
        SyncCommand::Schema => {
            print!("{CLOUD_SCHEMA}");
            Ok(())
        }
    };
    finish(result)
}

fn status(args: &SettingsArgs, json: bool) -> Result<(), Failure> {
    let settings = load(args)?;
    let (_, body) = call(&settings, "GET", PATH_STATUS)?;
    let status = &body["data"];
    if json {
        println!("{}", serde_json::to_string_pretty(status).unwrap_or_default());
        return Ok(());
    }
    let now = crate::store::now_ms();
    for (label, text) in describe(status, settings.timezone(), now) {
        println!("{:17}{text}", format!("{label}:"));
    }
    Ok(())
}

fn now(args: &SettingsArgs) -> Result<(), Failure> {
    let settings = load(args)?;
    call(&settings, "POST", PATH_NOW)?;
    println!("sync round started; see its outcome with `nexero sync status`");
    Ok(())
}

fn retry(args: &SettingsArgs) -> Result<(), Failure> {
    let settings = load(args)?;
    let (_, body) = call(&settings, "POST", PATH_RETRY)?;
    match body["data"]["requeued"].as_u64() {
        Some(0) => println!("nothing was quarantined; nothing to retry"),
        Some(1) => println!("queued 1 quarantined row again; sync round started (see `nexero sync status`)"),
        Some(n) => println!("queued {n} quarantined rows again; sync round started (see `nexero sync status`)"),
        None => println!("quarantined rows queued again"),
    }
    Ok(())
}

fn load(args: &SettingsArgs) -> Result<Settings, Failure> {
    Settings::load(&args.overrides).map_err(|e| Failure::Usage(e.to_string()))
}

/// Sends `method path` with the control token to the appliance on this computer; its JSON body
/// on a 2xx, else a failure that says what to do.
fn call(settings: &Settings, method: &str, path: &str) -> Result<(u16, Value), Failure> {
    let port = settings.port;
    if !(settings.bind.is_unspecified() || settings.bind.is_loopback()) {
        return Err(Failure::Other(format!(
            "the appliance listens on {} only, and these commands reach it over loopback (127.0.0.1). Fix: set bind to \
             0.0.0.0 (or 127.0.0.1), or use the dashboard's sync panel",
            settings.bind
        )));
    }
    let not_running = || {
        Failure::Other(format!(
            "the appliance is not running on port {port}; start it (`nexero serve` or `nexero service start`) or give \
             the --port and --data-dir it runs with"
        ))
    };
    // Not running is the likelier trouble and says more than a missing token file: ask first.
    if crate::net::get_health(port).is_none() {
        return Err(not_running());
    }
    let file = control::path(&settings.data_dir);
    let token = control::read(&settings.data_dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::Other(format!(
            "there is no control token at {}: the appliance on port {port} serves another data directory (give its \
             --data-dir) or is a version without cloud sync",
            file.display()
        )),
        std::io::ErrorKind::PermissionDenied => Failure::Other(format!(
            "cannot read {}: permission denied. Fix: run this as the user the appliance runs as, or as root / \
             administrator (e.g. `sudo nexero sync …`)",
            file.display()
        )),
        _ => Failure::Other(format!("cannot read {}: {e}", file.display())),
    })?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (code, body) = crate::net::raw_http(port, &request).map_err(|_| not_running())?;
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let message = body["message"].as_str().unwrap_or("no message");
    match code {
        200..=299 => Ok((code, body)),
        401 | 403 => Err(Failure::Other(format!(
            "the appliance on port {port} did not accept the control token in {}: it serves another data directory \
             (give its --data-dir) or restarted meanwhile (try again)",
            file.display()
        ))),
        404 => Err(Failure::Other(format!(
            "the appliance on port {port} has no sync control routes: it is an older version. Fix: update it, or check \
             --port"
        ))),
        _ => Err(Failure::Other(message.to_owned())),
    }
}
