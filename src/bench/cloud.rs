//! The cloud side of `nexero bench --sync`, all on loopback and all thrown away afterwards: a
//! PostgreSQL cluster of its own (Debian's server binaries, `initdb` as the `postgres` user when
//! run as root, since initdb refuses root), `postrust` (a PostgREST-compatible server) in front
//! of it when installed, and the appliance (`nexero serve`) started with `[sync]` pointing at
//! one of them. PostgreSQL keeps its default settings: both sides of the comparison share them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::net;

/// Every cloud table, children first (one TRUNCATE empties them all).
pub const CLOUD_TABLES: &str = "tracking_events, view_events, poi_visits, vr_sessions, nexero_sites";

/// The newest /usr/lib/postgresql/<version>/bin with initdb (or `NEXERO_PG_BIN`).
fn pg_bin() -> Result<PathBuf, String> {
    if let Ok(bin) = std::env::var("NEXERO_PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let missing = || "PostgreSQL server binaries not found in /usr/lib/postgresql/<version>/bin (install the `postgresql` package, or set NEXERO_PG_BIN)".to_string();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(missing)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// A throwaway PostgreSQL cluster in a temporary directory, stopped and deleted when dropped.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_root: bool,
    running: bool,
    pub port: u16,
}

impl PgCluster {
    /// initdb and start on 127.0.0.1 and a free port (blocking: call it off the runtime).
    pub fn start() -> Result<PgCluster, String> {
        let bin = pg_bin()?;
        let as_root = is_root();
        let dir = tempfile::Builder::new().prefix("nexero-bench-pg-").tempdir().map_err(|e| e.to_string())?;
        if as_root {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            if !chown.is_ok_and(|s| s.success()) {
                return Err("cannot hand the PostgreSQL directory to the `postgres` user (initdb refuses root)".into());
            }
        }
        let mut cluster = PgCluster { bin, dir, as_root, running: false, port: 0 };
        let data = cluster.data_dir();
        cluster.run_ok(&["initdb", "-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])?;
        let log = cluster.dir.path().join("log").display().to_string();
        // A port taken between free_port() and the bind makes pg_ctl fail: try a few.
        for _ in 0..5 {
            cluster.port = net::free_port();
            let options = format!("-c listen_addresses=127.0.0.1 -p {} -k {}", cluster.port, cluster.dir.path().display());
            if cluster.run(&["pg_ctl", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start"])?.status.success() {
                cluster.running = true;
                return Ok(cluster);
            }
        }
        Err(format!("PostgreSQL did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()))
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        let program = self.bin.join(args[0]);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(&args[1..]).env_remove("PGDATA").stdin(Stdio::null());
        command.output().map_err(|e| format!("cannot run {}: {e}", program.display()))
    }

    fn run_ok(&self, args: &[&str]) -> Result<(), String> {
        let out = self.run(args)?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!("{} failed: {}{}", args[0], String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    /// A superuser URL of `database` (no query string: postrust takes it as is).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(&["pg_ctl", "-D", &data, "-m", "fast", "-w", "stop"]);
        }
    }
}

/// One connection; its connection task runs on the current runtime.
pub async fn connect(url: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    tokio::spawn(async move { drop(connection.await) });
    Ok(client)
}

/// Roles and grants as Supabase has them: `service_role` (BYPASSRLS) with every grant on
/// `public`, and the login role `authenticator` postrust connects as.
const ROLES_SQL: &str = r#"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator LOGIN NOINHERIT; END IF;
END
$$;
GRANT anon, service_role TO authenticator;
GRANT USAGE ON SCHEMA public TO anon, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role;
"#;

/// The postrust binary: `NEXERO_POSTRUST`, else the tools cache tests/lib/tools.sh installs into.
pub fn postrust_bin() -> Option<PathBuf> {
    let path = match std::env::var("NEXERO_POSTRUST") {
        Ok(path) => PathBuf::from(path),
        Err(_) => {
            let tools = std::env::var("NEXERO_TOOLS")
                .unwrap_or_else(|_| format!("{}/.cache/nexero-tools", std::env::var("HOME").unwrap_or_else(|_| "/root".into())));
            Path::new(&tools).join("bin/postrust")
        }
    };
    path.exists().then_some(path)
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().to_vec()
}

/// The `service_role` key: an HS256 JWT signed with `secret`.
fn service_role_key(secret: &str) -> String {
    let signing_input = format!("{}.{}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#), b64url(br#"{"role":"service_role"}"#));
    format!("{signing_input}.{}", b64url(&hmac_sha256(secret.as_bytes(), signing_input.as_bytes())))
}

/// postrust on a free port in front of a database, killed when dropped.
pub struct Postrust {
    child: Child,
    /// The REST root (bare PostgREST shape).
    pub url: String,
    pub key: String,
}

impl Drop for Postrust {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Postrust {
    /// Sets up the roles in the database at `db_url` (superuser; its tables already created),
    /// starts postrust as `authenticator` and waits until it serves `vr_sessions`.
    pub async fn start(bin: &Path, db_url: &str, log: &Path) -> Result<Postrust, String> {
        connect(db_url).await?.batch_execute(ROLES_SQL).await.map_err(|e| format!("postrust roles: {e}"))?;
        let authenticator_url = db_url.replacen("postgres://postgres@", "postgres://authenticator@", 1);
        let secret = format!("nexero-bench-secret-{:032x}", fastrand::u128(..));
        let key = service_role_key(&secret);
        let client = reqwest::Client::new();
        for _ in 0..5 {
            let port = net::free_port();
            let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
            let child = Command::new(bin)
                .env_remove("DATABASE_URL")
                .env_remove("PORT")
                .env("PGRST_DB_URI", &authenticator_url)
                .env("PGRST_DB_SCHEMAS", "public")
                .env("PGRST_DB_ANON_ROLE", "anon")
                .env("PGRST_JWT_SECRET", &secret)
                .env("PGRST_SERVER_HOST", "127.0.0.1")
                .env("PGRST_SERVER_PORT", port.to_string())
                .env("PGRST_COMPAT_MODE", "true")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(out.try_clone().map_err(|e| e.to_string())?)
                .stderr(out)
                .spawn()
                .map_err(|e| format!("cannot start postrust ({}): {e}", bin.display()))?;
            let mut server = Postrust { child, url: format!("http://127.0.0.1:{port}"), key: key.clone() };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && server.child.try_wait().ok().flatten().is_none() {
                let probe = client.get(format!("{}/vr_sessions?limit=0", server.url)).bearer_auth(&key).timeout(Duration::from_secs(2));
                if probe.send().await.is_ok_and(|r| r.status().is_success()) {
                    return Ok(server);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Err(format!("postrust did not serve vr_sessions: {}", std::fs::read_to_string(log).unwrap_or_default()))
    }
}

/// Where the appliance sends: `[sync]` url, key and site id.
pub struct SyncTo<'a> {
    pub url: &'a str,
    pub key: &'a str,
    pub site_id: &'a str,
}

/// `nexero serve` on `data_dir` (a child process on a free loopback port), killed when dropped.
pub struct Appliance {
    child: Child,
    pub port: u16,
    pub base: String,
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Appliance {
    /// Starts it with `[sync]` set by environment variables (none: sync off); returns once
    /// /health answers. Its log (warnings and worse) goes to `log`.
    pub async fn start(data_dir: &Path, sync: Option<SyncTo<'_>>, log: &Path) -> Result<Appliance, String> {
        let port = net::free_port();
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--bind", "127.0.0.1", "--log", "warn", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out);
        // Only ours: whatever [sync] the caller's environment has is not part of the bench.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("NEXERO_SYNC_")) {
            command.env_remove(name);
        }
        match sync {
            Some(to) => {
                command.env("NEXERO_SYNC_URL", to.url).env("NEXERO_SYNC_KEY", to.key).env("NEXERO_SYNC_SITE_ID", to.site_id);
                command.env("NEXERO_SYNC_INTERVAL_SECS", "5");
            }
            None => {
                command.env("NEXERO_SYNC_URL", "");
            }
        }
        let child = command.spawn().map_err(|e| format!("cannot start the appliance: {e}"))?;
        let appliance = Appliance { child, port, base: format!("http://127.0.0.1:{port}") };
        match tokio::task::spawn_blocking(move || net::wait_until_healthy(port, Duration::from_secs(60))).await {
            Ok(true) => Ok(appliance),
            _ => Err(format!("the appliance did not answer within 60 s: {}", std::fs::read_to_string(log).unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
    }
}
