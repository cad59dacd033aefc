//! `nexero token add|list|remove`: read-only API tokens for BI tools and CRMs, sent as
//! `Authorization: Bearer <token>`. A token is shown once, when added; only its SHA-256 is kept.
//! Like `nexero user`, these work while the appliance runs; same exit codes.

use std::process::ExitCode;

use clap::Subcommand;

use super::user::{finish, local_time, open, store_failed, Failure};
use super::SettingsArgs;
use crate::auth::{setup::check_username, token};
use crate::store::staff;

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Make a token; it is printed once on standard output (only its digest is kept)
    Add {
        /// What the token is for, e.g. crm: 1-64 letters, digits, '.', '_', '-' or '@'
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the tokens by name and when they were made
    List {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Remove a token: whatever uses it is refused from now on
    Remove {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

pub fn run(args: TokenArgs) -> ExitCode {
    finish(match args.command {
        TokenCommand::Add { name, settings } => add(&name, &settings),
        TokenCommand::List { settings } => list(&settings),
        TokenCommand::Remove { name, settings } => remove(&name, &settings),
    })
}

fn add(name: &str, args: &SettingsArgs) -> Result<(), Failure> {
    check_username(name).map_err(|reason| Failure::Usage(format!("the token name {name:?} {reason}")))?;
    let (_, db) = open(args)?;
    let secret = token::generate();
    if !staff::insert_api_token(&db, name, &token::digest(&secret)).map_err(store_failed)? {
        return Err(Failure::Other(format!(
            "a token named {name:?} exists already. Fix: choose another name, or remove it first with `nexero token \
             remove {name}`"
        )));
    }
    // The token alone on standard output, so `TOKEN=$(nexero token add crm)` works; the rest on
    // standard error.
    println!("{secret}");
    eprintln!(
        "added the API token {name:?}. It is shown only this once: keep it safe. Send it as `Authorization: Bearer \
         <token>`; it can read (GET) the dashboard API, not change anything"
    );
    Ok(())
}

fn list(args: &SettingsArgs) -> Result<(), Failure> {
    let (settings, db) = open(args)?;
    let tokens = staff::list_api_tokens(&db).map_err(store_failed)?;
    if tokens.is_empty() {
        println!("no API tokens. Make one with `nexero token add NAME`");
        return Ok(());
    }
    let width = tokens.iter().map(|t| t.name.chars().count()).max().unwrap_or(0).max(4);
    println!("{:width$}  CREATED", "NAME");
    for t in tokens {
        println!("{:width$}  {}", t.name, local_time(t.created_at, settings.timezone()));
    }
    Ok(())
}

fn remove(name: &str, args: &SettingsArgs) -> Result<(), Failure> {
    let (_, db) = open(args)?;
    if !staff::remove_api_token(&db, name).map_err(store_failed)? {
        return Err(Failure::Other(format!("there is no API token named {name:?}. See them with `nexero token list`")));
    }
    println!("removed the API token {name:?}; requests with it are refused from now on");
    Ok(())
}
