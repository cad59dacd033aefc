//! The `postgres` target: a direct connection (`postgres://…`), TLS when the URL asks for it
//! (`sslmode=require`: rustls with the webpki roots, certificate verified). One long-lived
//! connection, reopened after it breaks. Each batch is one statement, the one PostgREST runs:
//! `INSERT … SELECT … FROM jsonb_populate_recordset(NULL::t, $1::jsonb) ON CONFLICT …`, with the
//! same JSON the HTTP target sends. Statements are unnamed (`query_typed`), so transaction-mode
//! poolers (Supabase :6543, PgBouncer) work.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::classify::{Failure, Transport};
use super::payload::Table;

pub struct Postgres {
    config: Config,
    tls: Option<MakeRustlsConnect>,
    client: Option<Client>,
    timeout: Duration,
}

impl Postgres {
    pub fn new(url: &str, key: &str, timeout: Duration) -> Result<Postgres, String> {
        // tokio-postgres knows disable/prefer/require; rustls always verifies the certificate,
        // so verify-ca/verify-full are require here.
        let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let mut config = Config::from_str(&url).map_err(|e| format!("[sync] url is not a usable postgres:// URL: {e}"))?;
        if config.get_password().is_none() && !key.is_empty() {
            config.password(key);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("nexero-sync");
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => None,
            _ => Some(rustls_connector()?),
        };
        Ok(Postgres { config, tls, client: None, timeout })
    }

    async fn connect(&self) -> Result<Client, Failure> {
        let connected = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()).await.map(|(client, conn)| {
                tokio::spawn(async move { drop(conn.await) });
                client
            }),
            None => self.config.connect(NoTls).await.map(|(client, conn)| {
                tokio::spawn(async move { drop(conn.await) });
                client
            }),
        };
        connected.map_err(failure)
    }

    pub async fn upsert(&mut self, table: Table, body: String) -> Result<(), Failure> {
        let result = tokio::time::timeout(self.timeout, self.run(table, body)).await;
        let result = result.unwrap_or_else(|_| {
            Err(Failure {
                message: format!("no answer within {} s", self.timeout.as_secs()),
                transport: Some(Transport::Timeout),
                ..Failure::default()
            })
        });
        if result.as_ref().is_err_and(|f| f.transport.is_some()) || self.client.as_ref().is_some_and(Client::is_closed) {
            // A broken or abandoned connection is not reused (the statement may still run there).
            self.client = None;
        }
        result
    }

    async fn run(&mut self, table: Table, body: String) -> Result<(), Failure> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(self.connect().await?);
        }
        let client = self.client.as_ref().expect("connected above");
        client.query_typed(&statement(table), &[(&body, Type::TEXT)]).await.map_err(failure)?;
        Ok(())
    }
}

/// The statement for one batch of `table`: the same shape PostgREST generates.
pub fn statement(table: Table) -> String {
    let name = table.name();
    let columns: Vec<String> = table.columns().iter().map(|c| format!("\"{c}\"")).collect();
    let list = columns.join(", ");
    let key = table.conflict_column();
    let action = if table.merges() {
        let set: Vec<String> = table
            .columns()
            .iter()
            .filter(|c| **c != key)
            .map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\""))
            .collect();
        format!("DO UPDATE SET {}", set.join(", "))
    } else {
        "DO NOTHING".to_owned()
    };
    format!(
        "INSERT INTO \"{name}\" ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::\"{name}\", $1::jsonb) \
         ON CONFLICT (\"{key}\") {action}"
    )
}

fn rustls_connector() -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn failure(e: tokio_postgres::Error) -> Failure {
    if let Some(db) = e.as_db_error() {
        return Failure {
            code: Some(db.code().code().to_owned()),
            message: db.message().to_owned(),
            details: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            ..Failure::default()
        };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    let kind = if message.contains("timed out") || message.contains("timeout") { Transport::Timeout } else { Transport::Connection };
    Failure { message, transport: Some(kind), ..Failure::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_mirror_postgrest() {
        let s = statement(Table::Sessions);
        assert!(s.starts_with("INSERT INTO \"vr_sessions\" (\"id\", \"site_id\""), "{s}");
        assert!(s.contains("jsonb_populate_recordset(NULL::\"vr_sessions\", $1::jsonb)"), "{s}");
        assert!(s.contains("ON CONFLICT (\"id\") DO UPDATE SET \"site_id\" = EXCLUDED.\"site_id\""), "{s}");
        assert!(!s.contains("\"id\" = EXCLUDED"), "{s}");
        assert!(statement(Table::Tracking).ends_with("ON CONFLICT (\"id\") DO NOTHING"));
        assert!(statement(Table::Sites).contains("ON CONFLICT (\"site_id\") DO UPDATE SET \"last_sync_at\" = EXCLUDED.\"last_sync_at\""));
    }

    #[test]
    fn tls_follows_the_url() {
        assert!(Postgres::new("postgres://u@127.0.0.1/db?sslmode=disable", "", Duration::from_secs(1)).unwrap().tls.is_none());
        assert!(Postgres::new("postgres://u@db.example.com/db?sslmode=require", "", Duration::from_secs(1)).unwrap().tls.is_some());
        assert!(Postgres::new("postgres://u@db.example.com/db?sslmode=verify-full", "", Duration::from_secs(1)).unwrap().tls.is_some());
        let p = Postgres::new("postgres://u@h/db", "pw", Duration::from_secs(1)).unwrap();
        assert_eq!(p.config.get_password(), Some(&b"pw"[..]));
        assert!(Postgres::new("postgres://u@h:notaport/db", "", Duration::from_secs(1)).is_err());
    }
}
