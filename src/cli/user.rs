//! `nexero user add|list|passwd|remove`: the staff accounts that sign in to the dashboard. They
//! work while the appliance runs (a plain connection beside its writer, see `store::admin`).
//! Exit codes: 0 done, 2 a bad argument or setting, 1 anything else (name taken, no such user,
//! database trouble), each with a message saying what to do.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::SettingsArgs;
use crate::auth::{password, setup::check_username};
use crate::config::Settings;
use crate::store::admin::{self, AdminDb};
use crate::store::staff;

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a staff account. The password is read from standard input when that is not a
    /// terminal (one line), else asked for twice without echo
    Add {
        /// Sign-in name: 1-64 letters, digits, '.', '_', '-' or '@' (case-insensitive)
        name: String,
        /// admin: everything, including headsets and settings; sales: the dashboard
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the staff accounts: name, role, when created, sessions signed in now
    List {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Set a new password (read like `add` does); signs the user out everywhere
    Passwd {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Remove a staff account; signs the user out everywhere
    Remove {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Admin,
    Sales,
}

pub fn run(args: UserArgs) -> ExitCode {
    let result = match args.command {
        UserCommand::Add { name, role, settings } => add(&name, role, &settings),
        UserCommand::List { settings } => list(&settings),
        UserCommand::Passwd { name, settings } => passwd(&name, &settings),
        UserCommand::Remove { name, settings } => remove(&name, &settings),
    };
    finish(result)
}

/// Why a command failed: a bad argument (exit 2) or anything else (exit 1), and what to do.
pub(super) enum Failure {
    Usage(String),
    Other(String),
}

pub(super) fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("nexero: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            eprintln!("nexero: {message}");
            ExitCode::from(1)
        }
    }
}

/// The settings and the database, opened beside a running appliance.
pub(super) fn open(args: &SettingsArgs) -> Result<(Settings, AdminDb), Failure> {
    let settings = Settings::load(&args.overrides).map_err(|e| Failure::Usage(e.to_string()))?;
    let db = admin::open(&settings.database_path(), settings.durability).map_err(|e| Failure::Other(e.to_string()))?;
    Ok((settings, db))
}

pub(super) fn store_failed(e: crate::store::StoreError) -> Failure {
    Failure::Other(e.to_string())
}

fn add(name: &str, role: RoleArg, args: &SettingsArgs) -> Result<(), Failure> {
    check_username(name).map_err(|reason| Failure::Usage(format!("the user name {name:?} {reason}")))?;
    let (_, db) = open(args)?;
    if let Some(existing) = staff::user_by_name(&db, name).map_err(store_failed)? {
        return Err(taken(&existing.username));
    }
    let hash = password::hash(&new_password(name)?);
    let role = match role {
        RoleArg::Admin => "admin",
        RoleArg::Sales => "sales",
    };
    match staff::insert_user(&db, name, role, &hash).map_err(store_failed)? {
        Some(_) => {
            println!("added {role} {name}; they can sign in now");
            Ok(())
        }
        None => Err(taken(name)),
    }
}

fn taken(name: &str) -> Failure {
    Failure::Other(format!(
        "a user named {name:?} exists already (names ignore letter case). Fix: choose another name, or change \
         their password with `nexero user passwd {name}`"
    ))
}

fn list(args: &SettingsArgs) -> Result<(), Failure> {
    let (settings, db) = open(args)?;
    let users = staff::list_users(&db).map_err(store_failed)?;
    if users.is_empty() {
        println!("no staff accounts yet. Add one with `nexero user add NAME --role admin`");
        return Ok(());
    }
    let tz = settings.timezone();
    let rows: Vec<_> = users.iter().map(|u| (u, local_time(u.created_at, tz))).collect();
    let width = rows.iter().map(|(u, _)| u.username.chars().count()).max().unwrap_or(0).max(4);
    let when = rows.iter().map(|(_, created)| created.chars().count()).max().unwrap_or(0).max(7);
    println!("{:width$}  {:5}  {:when$}  ACTIVE SESSIONS", "NAME", "ROLE", "CREATED");
    for (user, created) in rows {
        println!("{:width$}  {:5}  {:when$}  {}", user.username, user.role, created, user.active_sessions);
    }
    Ok(())
}

/// `2026-01-02 10:11 IST`: a moment in the site's time zone.
pub(super) fn local_time(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn passwd(name: &str, args: &SettingsArgs) -> Result<(), Failure> {
    let (_, db) = open(args)?;
    let Some(user) = staff::user_by_name(&db, name).map_err(store_failed)? else { return Err(no_such_user(name)) };
    let hash = password::hash(&new_password(&user.username)?);
    if !staff::set_password(&db, &user.username, &hash).map_err(store_failed)? {
        return Err(no_such_user(name));
    }
    println!("changed the password of {}; their sessions have ended", user.username);
    Ok(())
}

fn remove(name: &str, args: &SettingsArgs) -> Result<(), Failure> {
    let (_, db) = open(args)?;
    let Some(user) = staff::user_by_name(&db, name).map_err(store_failed)? else { return Err(no_such_user(name)) };
    if !staff::remove_user(&db, &user.username).map_err(store_failed)? {
        return Err(no_such_user(name));
    }
    println!("removed {} {}; their sessions have ended", user.role, user.username);
    if staff::user_count(&db).map_err(store_failed)? == 0 {
        println!("there are no staff accounts left: the next start prints a setup link, or add one with `nexero user add`");
    }
    Ok(())
}

fn no_such_user(name: &str) -> Failure {
    Failure::Other(format!("there is no user named {name:?}. See them with `nexero user list`"))
}

/// A new password: one line of standard input when that is not a terminal, else asked for twice
/// without echo.
fn new_password(name: &str) -> Result<String, Failure> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {name}: ")).map_err(unreadable)?;
        password::check_strength(&first).map_err(|reason| Failure::Usage(format!("the password {reason}")))?;
        let again = rpassword::prompt_password("The same password again: ").map_err(unreadable)?;
        if again != first {
            return Err(Failure::Usage("the two passwords differ; nothing was changed".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(unreadable)?;
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        if line.is_empty() {
            return Err(Failure::Usage(
                "no password on standard input. Fix: pipe one line, e.g. `echo \"$PASSWORD\" | nexero user add …`, or \
                 run it at a terminal to be asked"
                    .into(),
            ));
        }
        line
    };
    password::check_strength(&password).map_err(|reason| Failure::Usage(format!("the password {reason}")))?;
    Ok(password)
}

fn unreadable(e: std::io::Error) -> Failure {
    Failure::Other(format!("cannot read the password: {e}"))
}
