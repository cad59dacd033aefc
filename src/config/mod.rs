//! Layered configuration: built-in defaults < `nexero.toml` in the data directory <
//! `NEXERO_*` environment variables < command-line flags (the lldap model).
//!
//! The data directory itself cannot come from the file that lives inside it, so it is resolved
//! first from defaults, environment and flags, and every other setting afterwards.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE_NAME: &str = "nexero.toml";
pub const DATABASE_FILE_NAME: &str = "nexero.db";
pub const ENV_PREFIX: &str = "NEXERO_";

/// How hard SQLite works to make a commit survive power loss (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A 2xx survives power loss: every group commit is fsynced.
    Full,
    /// A 2xx survives a crash of the process, but the last commits may be lost on power loss.
    Normal,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder holding the database, configuration file and logs.
    pub data_dir: PathBuf,
    /// Address to listen on; 0.0.0.0 accepts headsets from the whole LAN.
    pub bind: IpAddr,
    pub port: u16,
    /// IANA time zone used for headset timestamps that carry no zone (e.g. "Asia/Kolkata").
    pub site_timezone: String,
    /// A tour with no event for this long is closed as timed out.
    pub session_idle_timeout_secs: u64,
    /// Largest accepted request body; must hold a whole tour's batch upload.
    pub max_body_bytes: usize,
    /// Dwell times longer than this are flagged invalid (uninitialised headset timers).
    pub max_dwell_secs: u64,
    /// Below this much free disk space uploads are refused with 503 instead of risking the file.
    pub min_free_disk_mb: u64,
    /// Uploads that may wait for the database; beyond this new ones get 503 with Retry-After.
    pub max_queued_uploads: usize,
    pub durability: Durability,
    /// Log filter, e.g. "info" or "nexero=debug".
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("nexero-data"),
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8000,
            site_timezone: "UTC".into(),
            session_idle_timeout_secs: 600,
            max_body_bytes: 8 * 1024 * 1024,
            max_dwell_secs: 4 * 3600,
            min_free_disk_mb: 200,
            max_queued_uploads: 4096,
            durability: Durability::Full,
            log: "info".into(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct Overrides {
    /// Data directory (database, nexero.toml, logs) [env: NEXERO_DATA_DIR] [default: ./nexero-data]
    #[arg(long, global = true, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [env: NEXERO_BIND] [default: 0.0.0.0]
    #[arg(long, global = true, value_name = "IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<IpAddr>,
    /// TCP port [env: NEXERO_PORT] [default: 8000]
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Time zone for zone-less headset timestamps [env: NEXERO_SITE_TIMEZONE] [default: UTC]
    #[arg(long, global = true, value_name = "IANA_ZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_timezone: Option<String>,
    /// Close a tour after this many idle seconds [env: NEXERO_SESSION_IDLE_TIMEOUT_SECS] [default: 600]
    #[arg(long, global = true, value_name = "SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_idle_timeout_secs: Option<u64>,
    /// Largest request body in bytes [env: NEXERO_MAX_BODY_BYTES] [default: 8388608]
    #[arg(long, global = true, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Dwell times above this are flagged invalid [env: NEXERO_MAX_DWELL_SECS] [default: 14400]
    #[arg(long, global = true, value_name = "SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_dwell_secs: Option<u64>,
    /// Refuse uploads below this free disk space [env: NEXERO_MIN_FREE_DISK_MB] [default: 200]
    #[arg(long, global = true, value_name = "MB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_free_disk_mb: Option<u64>,
    /// Uploads waiting for the database before new ones get 503 + Retry-After
    /// [env: NEXERO_MAX_QUEUED_UPLOADS] [default: 4096]
    #[arg(long, global = true, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queued_uploads: Option<usize>,
    /// full: fsync every commit; normal: faster, may lose the last commits on power loss
    /// [env: NEXERO_DURABILITY] [default: full]
    #[arg(long, global = true, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<DurabilityArg>,
    /// Log filter such as "info" or "nexero=debug" [env: NEXERO_LOG] [default: info]
    #[arg(long, global = true, value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityArg {
    Full,
    Normal,
}

/// A configuration problem an office admin can fix; the message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Resolves every layer. `config_file` is where the file layer was read from (it may not exist).
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        // Only known settings: other NEXERO_* variables (set by scripts and tests) are not ours.
        let known: Vec<String> = match serde_json::to_value(Settings::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let env = || Env::prefixed(ENV_PREFIX).only(&known.iter().map(String::as_str).collect::<Vec<_>>());
        let cli = Serialized::defaults(overrides);
        let data_dir: PathBuf = Figment::from(Serialized::defaults(Settings::default()))
            .merge(env().only(&["data_dir"]))
            .merge(cli.clone())
            .extract_inner("data_dir")
            .map_err(|e| ConfigError(format!("{e}. Fix: set NEXERO_DATA_DIR or --data-dir to a folder path")))?;
        let data_dir = absolute(&data_dir)?;
        let config_file = data_dir.join(CONFIG_FILE_NAME);
        let mut settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(&config_file))
            .merge(env())
            .merge(cli)
            .extract()
            .map_err(|e| {
                ConfigError(format!(
                    "{e}. Fix: correct that value in {}, the NEXERO_* environment variable or the \
                     command-line flag of the same name (see `nexero --help`)",
                    config_file.display()
                ))
            })?;
        settings.data_dir = data_dir;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.timezone()?;
        if self.session_idle_timeout_secs < 10 {
            return Err(ConfigError(format!(
                "session_idle_timeout_secs = {} is too short: tours would be cut between two headset \
                 events. Fix: use at least 10 (default 600)",
                self.session_idle_timeout_secs
            )));
        }
        if self.max_body_bytes < 64 * 1024 {
            return Err(ConfigError(format!(
                "max_body_bytes = {} cannot hold a tour's batch upload. Fix: use at least 65536 \
                 (default 8388608)",
                self.max_body_bytes
            )));
        }
        if self.max_queued_uploads == 0 {
            return Err(ConfigError(
                "max_queued_uploads = 0 would refuse every upload. Fix: use a positive number (default 4096)".into(),
            ));
        }
        if self.max_dwell_secs == 0 {
            return Err(ConfigError(
                "max_dwell_secs = 0 would flag every dwell time as invalid. Fix: use a positive \
                 number of seconds (default 14400)"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.site_timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            ConfigError(format!(
                "site_timezone = {:?} is not an IANA time zone name. Fix: use a name such as \
                 \"UTC\", \"Asia/Kolkata\" or \"Europe/London\"",
                self.site_timezone
            ))
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE_NAME)
    }
}

fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(path).map_err(|e| {
        ConfigError(format!("data_dir {:?} cannot be resolved ({e}). Fix: give an absolute folder path", path))
    })
}
