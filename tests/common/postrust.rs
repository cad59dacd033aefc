//! `postrust` (crate `postrust-server`, a PostgREST-compatible server) in front of a throwaway
//! PostgreSQL database, as the HTTP sync target's cloud. tests/run-all.sh installs it once into
//! a tools cache outside the clone and exports its path as `NEXERO_POSTRUST`.
//!
//! Set-up follows Supabase's pattern: roles `anon`, `authenticated`, `service_role` (BYPASSRLS)
//! and the login role `authenticator` that switches to them; `service_role` has every grant on
//! `public`, now and for tables created later. The key is an HS256 JWT `{"role":"service_role"}`
//! signed with the server's secret. postrust reads it from `Authorization: Bearer` only (it
//! ignores `apikey`), so a key sent only as `apikey` runs as `anon` and is refused (401 42501).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Roles and grants (idempotent: safe on a database that already has them; roles are
/// cluster-wide, grants per database).
pub const ROLES_SQL: &str = r#"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
END
$$;
GRANT anon, authenticated, service_role TO authenticator;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO service_role;
"#;

/// The postrust binary: `NEXERO_POSTRUST`, else the default tools cache of tests/run-all.sh.
pub fn postrust_bin() -> PathBuf {
    if let Ok(path) = std::env::var("NEXERO_POSTRUST") {
        return PathBuf::from(path);
    }
    let tools = std::env::var("NEXERO_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/nexero-tools",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    PathBuf::from(tools).join("bin/postrust")
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// An HS256 JWT with `claims`, signed with `secret`.
pub fn hs256_jwt(secret: &str, claims: &serde_json::Value) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = b64url(&mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

pub struct Postrust {
    child: Child,
    port: u16,
    secret: String,
    db_url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postrust {
    /// Sets up roles and grants in the database at `db_url` (a superuser URL of a `PgServer`),
    /// starts postrust on a free port connected as `authenticator`, and waits for `/healthz`.
    /// Tables may be created before or after; call `reload_schema` after creating them.
    pub async fn start(db_url: &str) -> Postrust {
        super::postgres::execute(db_url, ROLES_SQL).await;
        let bin = postrust_bin();
        assert!(
            bin.exists(),
            "postrust not found at {} (tests/run-all.sh installs it: cargo install postrust-server --root <tools>)",
            bin.display()
        );
        let authenticator_url = db_url.replacen("postgres://postgres@", "postgres://authenticator@", 1);
        let secret = format!("nexero-test-secret-{:032x}", fastrand::u128(..));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("postrust.log");
        for attempt in 0..5 {
            let port = super::free_port();
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(&bin)
                .env_remove("DATABASE_URL")
                .env_remove("PORT")
                .env("PGRST_DB_URI", &authenticator_url)
                .env("PGRST_DB_SCHEMAS", "public")
                .env("PGRST_DB_ANON_ROLE", "anon")
                .env("PGRST_JWT_SECRET", &secret)
                .env("PGRST_SERVER_HOST", "127.0.0.1")
                .env("PGRST_SERVER_PORT", port.to_string())
                .env("PGRST_COMPAT_MODE", "true")
                .env("PGRST_DB_CHANNEL_ENABLED", "true")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("postrust starts");
            let mut server = Postrust {
                child,
                port,
                secret: secret.clone(),
                db_url: db_url.to_string(),
                log: log.clone(),
                _dir: tempfile::tempdir().unwrap(),
            };
            if server.wait_ready(Duration::from_secs(20)).await {
                server._dir = dir;
                return server;
            }
            if attempt == 4 {
                panic!("postrust did not answer /healthz: {}", server.log());
            }
        }
        unreachable!()
    }

    async fn wait_ready(&mut self, timeout: Duration) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{}/healthz", self.port))
                .timeout(Duration::from_secs(1))
                .send()
                .await
            {
                if r.status() == 200 && r.text().await.unwrap_or_default().trim() == "OK" {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The REST root (bare PostgREST shape: no `/rest/v1`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service_role key (a JWT; send it as `apikey` and `Authorization: Bearer`).
    pub fn key(&self) -> String {
        hs256_jwt(&self.secret, &serde_json::json!({"role": "service_role"}))
    }

    /// A key for `role` (e.g. "anon"), for tests of refused keys.
    pub fn key_for(&self, role: &str) -> String {
        hs256_jwt(&self.secret, &serde_json::json!({"role": role}))
    }

    /// Grants again (tables created after start are covered by the default privileges; this is
    /// for tables created by another owner) and makes postrust reload its schema cache, then
    /// waits until it sees `probe_table` (e.g. "vr_sessions").
    pub async fn reload_schema(&self, probe_table: &str) {
        super::postgres::execute(&self.db_url, ROLES_SQL).await;
        super::postgres::execute(&self.db_url, "NOTIFY pgrst, 'reload schema'").await;
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = client
                .get(format!("{}/{probe_table}?limit=0", self.url()))
                .bearer_auth(self.key())
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postrust does not see table {probe_table} after a schema reload: {:?}\n{}",
                r.map(|r| r.status()),
                self.log()
            );
            // The NOTIFY may have raced the listener's start: send it again.
            super::postgres::execute(&self.db_url, "NOTIFY pgrst, 'reload schema'").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postrust {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
