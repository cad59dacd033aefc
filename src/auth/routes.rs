//! Sign-in, sign-out, who am I, and the first-run setup (its handlers are in `setup.rs`).
//!
//! - `POST /api/v1/auth/login` `{"username","password"}` → the user, and a session cookie.
//! - `POST /api/v1/auth/logout` → ends the browser's session (200 even when there was none).
//! - `GET /api/v1/auth/me` → who the cookie or API token belongs to.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{password, session_cookie, setup, token, AuthState, Staff, Via, SESSION_COOKIE};
use crate::error::{AppError, FieldError};
use crate::store::{now_ms, staff, StoreError};

/// How long a sign-in lasts: the session row's expiry and the cookie's Max-Age.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// One answer for an unknown name and a wrong password, so neither can be told apart.
const WRONG_CREDENTIALS: &str = "wrong username or password";

pub fn router<S>() -> Router<S>
where
    AuthState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/setup", get(setup::check).post(setup::create_admin))
}

async fn login(State(auth): State<AuthState>, body: Bytes) -> Result<Response, AppError> {
    let fields = Fields::parse(&body, "\"username\" and \"password\"")?;
    let (username, password) = (fields.string("username")?, fields.string("password")?);
    let user = auth.store.read(move |c| staff::user_by_name(c, &username)).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if !verify_password(password, stored).await? {
        return Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()));
    }
    let user = user.expect("a verified password belongs to a user");
    let (secret, hash) = new_session_secret();
    let (id, seen_hash) = (user.id, user.password_hash.clone());
    let expires_at = now_ms() + SESSION_LIFETIME.as_millis() as i64;
    let started = auth.store.write(move |c| staff::insert_session(c, &hash, id, &seen_hash, expires_at)).await?;
    if !started {
        // Removed, or given a new password, between the check and now.
        return Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()));
    }
    tracing::info!(user = %user.username, "staff signed in");
    Ok(signed_in(StatusCode::OK, &user.username, &user.role, &secret))
}

async fn logout(State(auth): State<AuthState>, headers: HeaderMap) -> Result<Response, AppError> {
    if auth.viewer(&headers).await?.is_some_and(|viewer| viewer.via == Via::Token) {
        return Err(AppError::Forbidden("API tokens are read-only and have no session to end".into()));
    }
    if let Some(cookie) = session_cookie(&headers) {
        let hash = token::digest(cookie);
        auth.store.write(move |c| staff::delete_session(c, &hash)).await?;
    }
    let mut response = Json(json!({"success": true, "data": null})).into_response();
    let cleared = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cleared).expect("a valid header"));
    Ok(response)
}

async fn me(Staff(viewer): Staff) -> Json<Value> {
    Json(json!({"success": true, "data": {"username": viewer.name, "role": viewer.role, "via": viewer.via}}))
}

/// A new session secret (for the cookie) and its digest (for the database).
pub(super) fn new_session_secret() -> (String, Vec<u8>) {
    let secret = token::generate();
    let hash = token::digest(&secret);
    (secret, hash)
}

/// The answer to a sign-in: the user, and the cookie that carries the session.
pub(super) fn signed_in(status: StatusCode, username: &str, role: &str, secret: &str) -> Response {
    let body = json!({"success": true, "data": {"username": username, "role": role}});
    let mut response = (status, Json(body)).into_response();
    let cookie = format!("{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_LIFETIME.as_secs());
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("hex is a valid header"));
    response
}

/// Password checks and hashes running at once at most: each takes argon2's 19 MiB and tens of
/// milliseconds of a core, so a flood of sign-ins queues here instead of exhausting memory.
static PASSWORD_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Runs argon2 work on a blocking thread, a few at a time.
async fn password_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    let _permit = PASSWORD_WORK.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Store(StoreError::Internal(format!("password work failed: {e}"))))
}

/// Whether `password` matches `stored`. With no stored hash (unknown user) it checks against a
/// dummy one, so the answer takes as long either way, and is false.
async fn verify_password(password: String, stored: Option<String>) -> Result<bool, AppError> {
    password_work(move || match stored {
        Some(stored) => password::verify(&password, &stored),
        None => {
            static DUMMY: OnceLock<String> = OnceLock::new();
            let dummy = DUMMY.get_or_init(|| password::hash("not anyone's password"));
            let _ = password::verify(&password, dummy);
            false
        }
    })
    .await
}

/// Hashes a new password (see `password_work`).
pub(super) async fn hash_password(password: String) -> Result<String, AppError> {
    password_work(move || password::hash(&password)).await
}

/// A JSON object body whose string fields are read by name; a missing or non-string one is a
/// 422 naming it.
pub(super) struct Fields(Map<String, Value>);

impl Fields {
    pub(super) fn parse(body: &[u8], expected: &str) -> Result<Fields, AppError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            _ => Err(AppError::bad_request(format!("the body must be a JSON object with {expected}"))),
        }
    }

    pub(super) fn string(&self, name: &str) -> Result<String, AppError> {
        match self.0.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(invalid(name, "must be a string")),
            None => Err(invalid(name, "field required")),
        }
    }
}

/// A 422 naming one field.
pub(super) fn invalid(field: &str, reason: &str) -> AppError {
    AppError::Validation(vec![FieldError { field: field.into(), reason: reason.into() }])
}
