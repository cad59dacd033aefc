//! Staff accounts, their browser sessions and the API tokens: the SQL behind `auth`.
//! Secrets are looked up by their SHA-256 digest; nothing here sees a secret itself.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, StoreError};

/// Who a credential belongs to: a user's name and role, or an API token's name (role `sales`).
#[derive(Clone, Debug)]
pub struct Credential {
    pub name: String,
    pub role: String,
}

/// The user a live (unexpired) browser session belongs to.
pub fn user_by_session(conn: &Connection, token_hash: &[u8]) -> Result<Option<Credential>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT u.username, u.role FROM staff_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2",
    )?;
    Ok(statement.query_row(params![token_hash, now_ms()], |r| Ok(Credential { name: r.get(0)?, role: r.get(1)? })).optional()?)
}

/// The API token with this digest.
pub fn api_token(conn: &Connection, token_hash: &[u8]) -> Result<Option<Credential>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT name FROM api_tokens WHERE token_hash = ?1")?;
    Ok(statement.query_row(params![token_hash], |r| Ok(Credential { name: r.get(0)?, role: "sales".into() })).optional()?)
}
