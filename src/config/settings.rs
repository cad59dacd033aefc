//! Every setting of the appliance, each declared once: key, type, default, help, check.
//! `nexero.toml` keys are the names below (`[sync]` ones inside a `[sync]` section), flags are
//! `--name-with-dashes` (`--sync-url`), environment variables `NEXERO_NAME` (`NEXERO_SYNC_URL`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::declare::{settings, Layered, Shown};
use super::Secret;

/// How hard SQLite works to make a commit survive power loss (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A 2xx survives power loss: every group commit is fsynced.
    Full,
    /// A 2xx survives a crash of the process, but the last commits may be lost on power loss.
    Normal,
}

impl Shown for Durability {
    fn shown(&self) -> String {
        self.layered().into_string().unwrap_or_default()
    }
}

impl Layered for Durability {
    fn layered(&self) -> figment::value::Value {
        figment::value::Value::serialize(self).expect("an enum serializes")
    }
}

settings! {
    /// The appliance's settings, resolved from every layer.
    Settings, Overrides, section "" {
        /// Data directory: database, nexero.toml, logs, backups
        data_dir: PathBuf = PathBuf::from("nexero-data"), "DIR";
        /// Address to listen on; 0.0.0.0 accepts headsets from the whole LAN
        bind: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED), "IP";
        /// TCP port for headsets and staff
        port: u16 = 8000, "PORT";
        /// IANA time zone for headset timestamps that carry no zone, e.g. Asia/Kolkata
        site_timezone: String = "UTC".into(), "IANA_ZONE",
            check |v| v.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
                "not an IANA time zone name. Fix: use a name such as \"UTC\", \"Asia/Kolkata\" or \"Europe/London\""
            });
        /// Close a tour after this many seconds without an event
        session_idle_timeout_secs: u64 = 600, "SECS",
            check |v| at_least(*v, 10, "tours would be cut between two headset events");
        /// Largest request body in bytes; must hold a whole tour's batch upload
        max_body_bytes: usize = 8 * 1024 * 1024, "BYTES",
            check |v| at_least(*v as u64, 65_536, "cannot hold a tour's batch upload");
        /// Dwell times longer than this are flagged invalid (uninitialised headset timers)
        max_dwell_secs: u64 = 4 * 3600, "SECS",
            check |v| at_least(*v, 1, "would flag every dwell time as invalid");
        /// Below this much free disk space uploads are refused with 503 instead of risking the file
        min_free_disk_mb: u64 = 200, "MB";
        /// Uploads that may wait for the database before new ones get 503 with Retry-After
        max_queued_uploads: usize = 4096, "N",
            check |v| at_least(*v as u64, 1, "would refuse every upload");
        /// A connection must send a request's headers within this many seconds, and one left idle
        /// this long between requests is closed (slow or stalled clients cannot pile up)
        header_read_timeout_secs: u64 = 10, "SECS",
            check |v| at_least(*v, 1, "would close every connection before its first request");
        /// A request body must arrive within this many seconds, else 408 (a stalled upload
        /// holds no memory for long)
        body_read_timeout_secs: u64 = 60, "SECS",
            check |v| at_least(*v, 1, "would cut off every upload");
        /// Open connections at most; beyond it new ones get 503 with Retry-After (keeps the
        /// process clear of the system's file-descriptor limit)
        max_connections: usize = 512, "N",
            check |v| at_least(*v as u64, 16, "would lock headsets out while a few connections are open");
        /// Request bodies held in memory at once, in MB, over all uploads; beyond it uploads
        /// get 503 with Retry-After
        max_buffered_body_mb: u64 = 64, "MB",
            check |v| at_least(*v, 8, "cannot hold one large tour batch");
        /// How long a resend is recognised (its Idempotency-Key, its event id), in hours: long
        /// enough to cover a headset's retry queue after a restart
        resend_window_hours: u64 = 168, "HOURS",
            check |v| at_least(*v, 1, "would store resends twice");
        /// full: fsync every commit; normal: faster, may lose the last commits on power loss
        durability: Durability = Durability::Full, "full|normal";
        /// Log filter such as "info" or "nexero=debug"
        log: String = "info".into(), "FILTER";
    }
    nested { sync: SyncSettings / SyncOverrides }
}

settings! {
    /// `[sync]`: where completed tours are pushed upstream (docs/sync.md). An empty `url` sends
    /// nothing and fails nothing.
    SyncSettings, SyncOverrides, section "sync." {
        /// Cloud endpoint: a Supabase/PostgREST root (https://…/rest/v1) or a postgres:// URL
        url: String = String::new(), "URL",
            check |v| if v.is_empty() || ["http://", "https://", "postgres://", "postgresql://"].iter().any(|s| v.starts_with(s)) {
                Ok(())
            } else {
                Err("not an http(s):// or postgres:// URL. Fix: give the project's REST root or a postgres:// URL")
            };
        /// API key or password for the cloud endpoint (a secret: prefer nexero.toml or the environment)
        key: Secret = Secret::default(), "KEY";
        /// Send completed tours upstream (false keeps them queued locally, nothing is sent)
        enabled: bool = true, "true|false";
        /// Seconds between sync rounds (a completed tour is also sent at the next round)
        interval_secs: u64 = 60, "SECS",
            check |v| at_least(*v, 1, "would send without pause");
        /// This appliance's id in the cloud (a UUID); empty: one generated once and kept in the database
        site_id: String = String::new(), "UUID",
            check |v| if v.is_empty() || uuid::Uuid::parse_str(v).is_ok() {
                Ok(())
            } else {
                Err("not a UUID. Fix: leave it empty (one is generated and kept) or give a UUID such as 0190e2a4-…")
            };
        /// First retry delay in seconds after a failed send; doubles (with jitter) up to retry_cap_secs
        retry_base_secs: u64 = 5, "SECS",
            check |v| at_least(*v, 1, "would retry without pause");
        /// Longest wait between retries, in seconds
        retry_cap_secs: u64 = 900, "SECS",
            check |v| at_least(*v, 1, "would retry without pause");
        /// Rows per upload request at most (halved when the cloud says a request is too big or slow)
        batch_rows: usize = 500, "N",
            check |v| at_least(*v as u64, 1, "would send nothing");
        /// Request body size at most, in KiB
        batch_kib: usize = 1024, "KIB",
            check |v| at_least(*v as u64, 16, "cannot hold a tour row with its events");
    }
}

fn at_least(value: u64, minimum: u64, why: &str) -> Result<(), String> {
    if value >= minimum {
        Ok(())
    } else {
        Err(format!("{why}. Fix: use at least {minimum}"))
    }
}
