//! The `postgrest` target: Supabase's Data API (`https://<ref>.supabase.co/rest/v1`) or a bare
//! PostgREST root. `POST {root}/{table}?on_conflict=<key>` with the JSON array body; `apikey`
//! always, `Authorization: Bearer` only for a JWT key.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};

use super::classify::{is_jwt, Failure, Transport};
use super::payload::Table;

pub struct Postgrest {
    client: reqwest::Client,
    root: String,
    headers: HeaderMap,
}

/// The PostgREST error body; Supabase's gateway sends only `message` (and `hint`).
#[derive(serde::Deserialize, Default)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    details: Option<String>,
    hint: Option<String>,
}

impl Postgrest {
    pub fn new(url: &str, key: &str, timeout: Duration) -> Result<Postgrest, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("nexero-appliance/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !key.is_empty() {
            let value = |v: String| {
                let mut v = HeaderValue::from_str(&v).map_err(|_| "[sync] key holds characters a header cannot carry".to_owned())?;
                v.set_sensitive(true);
                Ok::<_, String>(v)
            };
            headers.insert("apikey", value(key.to_owned())?);
            if is_jwt(key) {
                headers.insert(reqwest::header::AUTHORIZATION, value(format!("Bearer {key}"))?);
            }
        }
        Ok(Postgrest { client, root: url.trim_end_matches('/').to_owned(), headers })
    }

    pub async fn upsert(&self, table: Table, body: String) -> Result<(), Failure> {
        let prefer = if table.merges() {
            "resolution=merge-duplicates,return=minimal"
        } else {
            "resolution=ignore-duplicates,return=minimal"
        };
        let url = format!("{}/{}?on_conflict={}", self.root, table.name(), table.conflict_column());
        let response = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .header("Prefer", prefer)
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            // Read the (empty) body to its end so the connection goes back to the pool: one
            // connection for the whole drain instead of a new one per batch.
            response.bytes().await.map_err(transport)?;
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(transport)?;
        let parsed: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
        let message = parsed.message.unwrap_or_else(|| {
            let text = text.trim();
            if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { truncate(text) }
        });
        Err(Failure {
            status: Some(status.as_u16()),
            code: parsed.code,
            message,
            details: parsed.details,
            hint: parsed.hint,
            retry_after,
            transport: None,
        })
    }
}

fn transport(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() { Transport::Timeout } else { Transport::Connection };
    // reqwest's Display hides the cause ("error sending request"); the chain says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Failure { message, transport: Some(kind), ..Failure::default() }
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
