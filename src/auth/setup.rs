//! The first run: while there are no staff accounts, every start makes a new one-time setup link
//! (printed on the console and logged) that creates the first admin. Only the link token's
//! SHA-256 is kept, in `meta`, for 24 hours; creating the admin uses it up.
//!
//! - `GET /api/v1/auth/setup?token=T` → `{"valid": bool}` (the setup page asks before showing
//!   its form).
//! - `POST /api/v1/auth/setup` `{"token","username","password"}` → 201, the admin, signed in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::routes::{hash_password, invalid, new_session_secret, signed_in, Fields, SESSION_LIFETIME};
use super::{password, token, AuthState};
use crate::error::AppError;
use crate::store::{now_ms, staff, Store};

/// How long a setup link works.
pub const SETUP_LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);

const LINK_REFUSED: &str = "this setup link is not valid: it was used already, has expired (restart the appliance \
     for a new one while there are no accounts), or staff accounts exist already. Sign in instead, or ask an admin \
     to add you with `nexero user add`";

/// A user or API-token name staff can type: 1–64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_username(name: &str) -> Result<(), String> {
    let length = name.chars().count();
    if !(1..=64).contains(&length) {
        return Err(format!("must be 1 to 64 characters (got {length})"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))) {
        return Err(format!("may hold only letters, digits, '.', '_', '-' and '@' (not {bad:?})"));
    }
    Ok(())
}

/// At start: with no accounts, makes a new setup link and prints and logs it; with accounts,
/// forgets any link left over. `addr` is the listener's address.
pub async fn announce(store: &Store, addr: SocketAddr) {
    let secret = token::generate();
    let hash = token::digest(&secret);
    let expires_at = now_ms() + SETUP_LINK_LIFETIME.as_millis() as i64;
    let made = store
        .write(move |c| {
            if staff::user_count(c)? > 0 {
                staff::delete_setup_token(c)?;
                return Ok(false);
            }
            staff::set_setup_token(c, &hash, expires_at)?;
            Ok(true)
        })
        .await;
    match made {
        Ok(true) => {
            let (link, elsewhere) = setup_link(addr, &secret);
            println!(
                "No staff accounts yet. Create the first admin within 24 hours by opening {link}{elsewhere} \
                 (or run `nexero user add NAME --role admin`)."
            );
            tracing::info!(%link, "no staff accounts yet: open the one-time setup link to create the first admin");
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not make the first-run setup link; add an admin with `nexero user add`"),
    }
}

/// The setup link for a listener on `addr`, and where else it works when that is every address.
fn setup_link(addr: SocketAddr, secret: &str) -> (String, &'static str) {
    let port = addr.port();
    let path = format!("/setup?token={secret}");
    match addr.ip() {
        ip if ip.is_unspecified() => (
            format!("http://localhost:{port}{path}"),
            " on this PC (from another device, put this PC's network address in place of localhost)",
        ),
        std::net::IpAddr::V6(ip) => (format!("http://[{ip}]:{port}{path}"), ""),
        ip => (format!("http://{ip}:{port}{path}"), ""),
    }
}

/// `GET /api/v1/auth/setup?token=T`: whether the link still works.
pub(super) async fn check(
    State(auth): State<AuthState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let valid = match query.get("token").filter(|t| !t.is_empty()) {
        Some(secret) => {
            let hash = token::digest(secret);
            auth.store.read(move |c| staff::setup_token_valid(c, &hash)).await?
        }
        None => false,
    };
    Ok(Json(json!({"success": true, "data": {"valid": valid}})))
}

/// `POST /api/v1/auth/setup`: creates the first admin and signs the browser in.
pub(super) async fn create_admin(State(auth): State<AuthState>, body: Bytes) -> Result<Response, AppError> {
    let fields = Fields::parse(&body, "\"token\", \"username\" and \"password\"")?;
    let (secret, username, password) = (fields.string("token")?, fields.string("username")?, fields.string("password")?);
    let link_hash = token::digest(&secret);
    let probe = link_hash.clone();
    if !auth.store.read(move |c| staff::setup_token_valid(c, &probe)).await? {
        return Err(AppError::Forbidden(LINK_REFUSED.into()));
    }
    check_username(&username).map_err(|reason| invalid("username", &reason))?;
    password::check_strength(&password).map_err(|reason| invalid("password", &reason))?;
    let password_hash = hash_password(password).await?;
    let (session_secret, session_hash) = new_session_secret();
    let expires_at = now_ms() + SESSION_LIFETIME.as_millis() as i64;
    let name = username.clone();
    let created = auth
        .store
        .write(move |c| {
            // Checked again in the write: two browsers may race with the same link.
            if !staff::setup_token_valid(c, &link_hash)? {
                return Ok(false);
            }
            let Some(id) = staff::insert_user(c, &name, "admin", &password_hash)? else { return Ok(false) };
            staff::delete_setup_token(c)?;
            staff::insert_session(c, &session_hash, id, &password_hash, expires_at)
        })
        .await?;
    if !created {
        return Err(AppError::Forbidden(LINK_REFUSED.into()));
    }
    tracing::info!(user = %username, "first admin created through the setup link");
    Ok(signed_in(StatusCode::CREATED, &username, "admin", &session_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_and_plain() {
        assert!(check_username("ana.maria_2-x@site").is_ok());
        assert!(check_username("").unwrap_err().contains("1 to 64"));
        assert!(check_username(&"a".repeat(65)).is_err());
        assert!(check_username(&"a".repeat(64)).is_ok());
        assert!(check_username("ana maria").unwrap_err().contains("' '"));
        assert!(check_username("ana/x").is_err());
    }

    #[test]
    fn the_link_names_the_listener_or_localhost() {
        let (link, elsewhere) = setup_link("0.0.0.0:8000".parse().unwrap(), "abc");
        assert_eq!(link, "http://localhost:8000/setup?token=abc");
        assert!(elsewhere.contains("network address"));
        assert_eq!(setup_link("192.168.1.5:80".parse().unwrap(), "t").0, "http://192.168.1.5:80/setup?token=t");
        assert_eq!(setup_link("[::1]:8000".parse().unwrap(), "t").0, "http://[::1]:8000/setup?token=t");
        assert!(setup_link("[::]:8000".parse().unwrap(), "t").0.starts_with("http://localhost:8000/"));
    }
}
