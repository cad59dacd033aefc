//! Staff accounts, their browser sessions and the API tokens: the SQL behind `auth` and the
//! `nexero user` / `nexero token` commands. Secrets are looked up by their SHA-256 digest;
//! nothing here sees a secret itself.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, StoreError};

/// The `meta` key of the first-run setup link: the SHA-256 (hex) of its token and its expiry.
const SETUP_TOKEN_KEY: &str = "setup_token";

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

/// A user as sign-in needs them: with the stored password hash.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub password_hash: String,
}

/// The user named `username` (case-insensitive).
pub fn user_by_name(conn: &Connection, username: &str) -> Result<Option<User>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT id, username, role, password_hash FROM users WHERE username = ?1")?;
    Ok(statement
        .query_row([username], |r| Ok(User { id: r.get(0)?, username: r.get(1)?, role: r.get(2)?, password_hash: r.get(3)? }))
        .optional()?)
}

pub fn user_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Adds a user; `None` when the name is taken (names are case-insensitive).
pub fn insert_user(conn: &Connection, username: &str, role: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
    let now = now_ms();
    let added = conn.execute(
        "INSERT INTO users (username, role, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (username) DO NOTHING",
        params![username, role, password_hash, now],
    )?;
    Ok((added == 1).then(|| conn.last_insert_rowid()))
}

/// Replaces a user's password and ends their sessions; false when there is no such user.
pub fn set_password(conn: &Connection, username: &str, password_hash: &str) -> Result<bool, StoreError> {
    let Some(user) = user_by_name(conn, username)? else { return Ok(false) };
    conn.execute(
        "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
        params![password_hash, now_ms(), user.id],
    )?;
    conn.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [user.id])?;
    Ok(true)
}

/// Removes a user and their sessions; false when there is no such user.
pub fn remove_user(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    let Some(user) = user_by_name(conn, username)? else { return Ok(false) };
    conn.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [user.id])?;
    conn.execute("DELETE FROM users WHERE id = ?1", [user.id])?;
    Ok(true)
}

/// One line of `nexero user list`.
#[derive(Clone, Debug)]
pub struct UserSummary {
    pub username: String,
    pub role: String,
    pub created_at: i64,
    pub active_sessions: i64,
}

pub fn list_users(conn: &Connection) -> Result<Vec<UserSummary>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT u.username, u.role, u.created_at,
                (SELECT count(*) FROM staff_sessions s WHERE s.user_id = u.id AND s.expires_at > ?1)
         FROM users u ORDER BY u.username",
    )?;
    let rows = statement.query_map([now_ms()], |r| {
        Ok(UserSummary { username: r.get(0)?, role: r.get(1)?, created_at: r.get(2)?, active_sessions: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a new browser session of `user_id`, valid until `expires_at` (unix ms), if the user
/// still has the password hash that was checked; false when they were removed or given a new
/// password in the meantime.
pub fn insert_session(
    conn: &Connection,
    token_hash: &[u8],
    user_id: i64,
    password_hash: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at, last_seen_at)
             SELECT ?1, id, ?3, ?4, ?3 FROM users WHERE id = ?2 AND password_hash = ?5",
        )?
        .execute(params![token_hash, user_id, now_ms(), expires_at, password_hash])?;
    Ok(added == 1)
}

/// Ends one browser session; false when there was none with this digest.
pub fn delete_session(conn: &Connection, token_hash: &[u8]) -> Result<bool, StoreError> {
    Ok(conn.prepare_cached("DELETE FROM staff_sessions WHERE token_hash = ?1")?.execute([token_hash])? > 0)
}

/// Forgets the sessions that have expired (and an expired setup link); returns how many rows.
pub fn delete_expired(conn: &Connection) -> Result<usize, StoreError> {
    let now = now_ms();
    let mut removed = conn.execute("DELETE FROM staff_sessions WHERE expires_at <= ?1", [now])?;
    if setup_token(conn)?.is_some_and(|(_, expires_at)| expires_at <= now) {
        removed += delete_setup_token(conn)?;
    }
    Ok(removed)
}

/// Adds an API token; false when the name is taken.
pub fn insert_api_token(conn: &Connection, name: &str, token_hash: &[u8]) -> Result<bool, StoreError> {
    let added = conn.execute(
        "INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        params![name, token_hash, now_ms()],
    )?;
    Ok(added == 1)
}

/// One line of `nexero token list`.
#[derive(Clone, Debug)]
pub struct TokenSummary {
    pub name: String,
    pub created_at: i64,
}

pub fn list_api_tokens(conn: &Connection) -> Result<Vec<TokenSummary>, StoreError> {
    let mut statement = conn.prepare("SELECT name, created_at FROM api_tokens ORDER BY name")?;
    let rows = statement.query_map([], |r| Ok(TokenSummary { name: r.get(0)?, created_at: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes an API token; false when there is none of that name.
pub fn remove_api_token(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM api_tokens WHERE name = ?1", [name])? > 0)
}

/// Keeps (replacing any earlier one) the digest of the first-run setup link's token.
pub fn set_setup_token(conn: &Connection, token_hash: &[u8], expires_at: i64) -> Result<(), StoreError> {
    let value = serde_json::json!({ "sha256": hex(token_hash), "expires_at": expires_at }).to_string();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![SETUP_TOKEN_KEY, value],
    )?;
    Ok(())
}

/// Whether `token_hash` opens the setup link: it is the stored one, not expired, and there are
/// still no users.
pub fn setup_token_valid(conn: &Connection, token_hash: &[u8]) -> Result<bool, StoreError> {
    let Some((stored, expires_at)) = setup_token(conn)? else { return Ok(false) };
    Ok(stored == hex(token_hash) && expires_at > now_ms() && user_count(conn)? == 0)
}

/// Forgets the setup link; returns how many rows (0 or 1).
pub fn delete_setup_token(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM meta WHERE key = ?1", [SETUP_TOKEN_KEY])?)
}

/// The stored setup link: its token's digest (hex) and expiry. A value this version cannot read
/// counts as none.
fn setup_token(conn: &Connection) -> Result<Option<(String, i64)>, StoreError> {
    let value: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [SETUP_TOKEN_KEY], |r| r.get(0)).optional()?;
    let parsed = value.and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok());
    Ok(parsed.and_then(|v| Some((v.get("sha256")?.as_str()?.to_owned(), v.get("expires_at")?.as_i64()?))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        super::super::migrate(&mut conn, std::path::Path::new("/nonexistent")).unwrap();
        conn
    }

    #[test]
    fn users_are_unique_ignoring_case_and_take_their_sessions_with_them() {
        let conn = db();
        let id = insert_user(&conn, "Ana", "admin", "hash").unwrap().unwrap();
        assert_eq!(insert_user(&conn, "ana", "sales", "hash").unwrap(), None);
        assert!(insert_session(&conn, b"t1", id, "hash", now_ms() + 60_000).unwrap());
        assert!(!insert_session(&conn, b"t2", id, "other", now_ms() + 60_000).unwrap());
        insert_session(&conn, b"old", id, "hash", now_ms() - 1).unwrap();
        assert_eq!(user_by_session(&conn, b"t1").unwrap().unwrap().name, "Ana");
        assert!(user_by_session(&conn, b"old").unwrap().is_none(), "expired");
        assert_eq!(list_users(&conn).unwrap()[0].active_sessions, 1);
        assert!(set_password(&conn, "ANA", "new").unwrap());
        assert!(user_by_session(&conn, b"t1").unwrap().is_none(), "a new password ends sessions");
        assert_eq!(user_by_name(&conn, "ana").unwrap().unwrap().password_hash, "new");
        assert!(remove_user(&conn, "ana").unwrap());
        assert!(!remove_user(&conn, "ana").unwrap());
        assert_eq!(user_count(&conn).unwrap(), 0);
    }

    #[test]
    fn the_setup_token_opens_only_while_there_are_no_users() {
        let conn = db();
        assert!(!setup_token_valid(&conn, b"x").unwrap());
        set_setup_token(&conn, b"x", now_ms() + 60_000).unwrap();
        assert!(setup_token_valid(&conn, b"x").unwrap());
        assert!(!setup_token_valid(&conn, b"y").unwrap());
        insert_user(&conn, "ana", "admin", "h").unwrap();
        assert!(!setup_token_valid(&conn, b"x").unwrap());
        set_setup_token(&conn, b"z", now_ms() - 1).unwrap();
        assert_eq!(delete_expired(&conn).unwrap(), 1);
        assert!(setup_token(&conn).unwrap().is_none());
    }
}
