//! Layered configuration: built-in defaults < `nexero.toml` in the data directory <
//! `NEXERO_*` environment variables < command-line flags (the lldap model).
//!
//! The data directory itself cannot come from the file that lives inside it, so it is resolved
//! first from defaults, environment and flags, and every other setting afterwards. Every error
//! names the setting, where its value came from, and the fix.

pub(crate) mod declare;
mod secret;
mod settings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;

pub use secret::Secret;
pub use settings::{Durability, Overrides, Settings, SyncOverrides, SyncSettings};

pub const CONFIG_FILE_NAME: &str = "nexero.toml";
pub const DATABASE_FILE_NAME: &str = "nexero.db";
pub const ENV_PREFIX: &str = "NEXERO_";

/// A configuration problem an office admin can fix; the message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Overrides {
    /// Reads flags back from a stored command line (a service definition), e.g.
    /// `["--port", "8001", "--data-dir", "C:\\ProgramData\\Nexero"]`.
    pub fn from_flags<I: IntoIterator<Item = String>>(flags: I) -> Result<Overrides, ConfigError> {
        use clap::{Args, FromArgMatches};
        let command = Overrides::augment_args(clap::Command::new("nexero").no_binary_name(true).args_override_self(true));
        command
            .try_get_matches_from(flags)
            .and_then(|matches| Overrides::from_arg_matches(&matches))
            .map_err(|e| ConfigError(format!("the stored command line is not understood: {}", e.kind())))
    }

    /// The flags given, as they would be typed again; secrets are left out (see `secrets`).
    pub fn to_flags(&self) -> Vec<String> {
        self.given().into_iter().filter(|g| !g.spec.secret).flat_map(|g| [g.spec.flag(), g.text]).collect()
    }

    /// The secrets given, as `(nexero.toml key, value)`: they belong in the protected file.
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        self.given().into_iter().filter(|g| g.spec.secret).map(|g| (g.spec.key, g.text)).collect()
    }

    /// The values given, nested as in `nexero.toml`.
    fn nested(&self) -> Dict {
        let mut dict = Dict::new();
        for given in self.given() {
            if let Value::Dict(_, nested) = figment::util::nest(given.spec.key, given.value) {
                for (key, value) in nested {
                    merge_into(&mut dict, key, value);
                }
            }
        }
        dict
    }
}

fn merge_into(dict: &mut Dict, key: String, value: Value) {
    match (dict.get_mut(&key), value) {
        (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => {
            for (k, v) in new {
                merge_into(existing, k, v);
            }
        }
        (_, value) => {
            dict.insert(key, value);
        }
    }
}

/// The command-line layer, named so that errors can say a value came from a flag.
struct CommandLine(Dict);

impl figment::Provider for CommandLine {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("command line")
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, Dict>, figment::Error> {
        Ok(figment::Profile::Default.collect(self.0.clone()))
    }
}

/// Where a value came from, in the words an admin uses.
fn origin(metadata: Option<&figment::Metadata>, key: &str, config_file: &Path) -> String {
    match metadata.map(|m| m.name.as_ref()) {
        Some(name) if name.contains("environment") => format!("the environment variable {}", declare::env_name(key)),
        Some(name) if name.contains("TOML") => format!("`{key}` in {}", config_file.display()),
        Some("command line") => format!("the flag --{}", declare::flag_name(key)),
        _ => "the built-in default".into(),
    }
}

/// A type the settings expect, in plain words.
fn plain(expected: &str) -> String {
    match expected {
        "u16" => "a whole number from 0 to 65535".into(),
        "u64" | "usize" => "a whole number".into(),
        "bool" => "true or false".into(),
        "a string" => "text in quotes".into(),
        other => other.trim_matches('`').to_owned(),
    }
}

/// What to tell the admin about a value the layers could not read.
fn explain(error: figment::Error, config_file: &Path) -> ConfigError {
    use figment::error::Kind;
    let key = error.path.iter().filter(|p| p.as_str() != "default").cloned().collect::<Vec<_>>().join(".");
    let from = origin(error.metadata.as_ref(), &key, config_file);
    let default = Settings::defaults().into_iter().find(|(k, _)| *k == key).map(|(_, shown)| shown).unwrap_or_default();
    let secret = Settings::specs().iter().any(|spec| spec.key == key && spec.secret);
    // A secret's value is never repeated, not even a wrong one.
    let actual = |actual: &dyn std::fmt::Display| if secret { "a value".to_owned() } else { actual.to_string() };
    ConfigError(match &error.kind {
        Kind::UnknownField(field, _) => {
            let key = if key.ends_with(field.as_str()) { key.clone() } else { format!("{key}.{field}").trim_start_matches('.').to_owned() };
            let known: Vec<&str> = Settings::specs().iter().map(|s| s.key).collect();
            format!(
                "{} has an unknown setting `{key}`. Fix: check its spelling; the settings are: {}",
                config_file.display(),
                known.join(", ")
            )
        }
        Kind::InvalidType(actual_value, expected) | Kind::InvalidValue(actual_value, expected) => {
            let expected = plain(expected);
            format!("{from} is {}, not {expected}. Fix: set it to {expected}, or remove it to use the default ({default})", actual(actual_value))
        }
        Kind::UnknownVariant(value, choices) => {
            format!("{from} is \"{}\". Fix: use one of {}, or remove it to use the default ({default})", actual(value), choices.join(", "))
        }
        Kind::Message(message) if key.is_empty() && error.metadata.as_ref().is_some_and(|m| m.name.contains("TOML")) => {
            // The parser's message quotes the offending line, which may hold a secret: keep
            // only where (its first line) and why (its last).
            let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let (at, why) = (lines.first().copied().unwrap_or_default(), lines.last().copied().unwrap_or_default());
            let at = at.trim_start_matches("TOML parse error ");
            format!("{} is not valid TOML {at}: {why}. Fix: correct the file (one `key = value` per line)", config_file.display())
        }
        _ if secret => format!("{from} cannot be read. Fix: correct it (see `nexero --help`)"),
        _ => format!("{from}: {}. Fix: correct it, or remove it to use the default ({default})", error.kind),
    })
}

impl Settings {
    /// Resolves every layer.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let flags = CommandLine(overrides.nested());
        let data_dir: PathBuf = Figment::from(environment())
            .merge(&flags)
            .extract_inner("data_dir")
            .or_else(|e| if e.missing() { Ok(Settings::default().data_dir) } else { Err(e) })
            .map_err(|e| explain(e, Path::new(CONFIG_FILE_NAME)))?;
        let data_dir = std::path::absolute(&data_dir).map_err(|e| {
            ConfigError(format!("data_dir {:?} cannot be resolved ({e}). Fix: give an absolute folder path", data_dir))
        })?;
        let config_file = data_dir.join(CONFIG_FILE_NAME);
        let figment = Figment::from(Toml::file(&config_file)).merge(environment()).merge(&flags);
        let mut settings: Settings = figment.extract().map_err(|e| explain(e, &config_file))?;
        settings.data_dir = data_dir;
        settings.check().map_err(|(key, message)| {
            let from = origin(figment.find_metadata(key), key, &config_file);
            ConfigError(format!("{message}; the value came from {from}"))
        })?;
        Ok(settings)
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        // Checked when the settings were loaded.
        self.site_timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE_NAME)
    }

    pub fn config_file(&self) -> PathBuf {
        self.data_dir.join(CONFIG_FILE_NAME)
    }

    pub fn max_dwell_ms(&self) -> i64 {
        self.max_dwell_secs as i64 * 1000
    }

    pub fn idle_timeout_ms(&self) -> i64 {
        self.session_idle_timeout_secs as i64 * 1000
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_disk_mb * 1_000_000
    }

    pub fn max_buffered_body_bytes(&self) -> usize {
        (self.max_buffered_body_mb * 1024 * 1024) as usize
    }

    pub fn resend_window_ms(&self) -> i64 {
        self.resend_window_hours as i64 * 3_600_000
    }
}

/// `NEXERO_*` variables that name a setting (`NEXERO_SYNC_URL` is `sync.url`); other `NEXERO_*`
/// variables (scripts, tests) are not ours.
fn environment() -> Env {
    Env::prefixed(ENV_PREFIX).filter_map(|name| {
        let name = name.as_str().to_lowercase();
        Settings::specs().iter().find(|spec| spec.key.replace('.', "_") == name).map(|spec| spec.key.into())
    })
}
