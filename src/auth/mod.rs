//! Staff authentication: who is asking, for every dashboard page and dashboard API route.
//!
//! Two kinds of credential, both random 256-bit tokens of which only the SHA-256 is stored:
//! - a browser session, in an HttpOnly, SameSite=Strict cookie, created by signing in;
//! - an API token (`nexero token add NAME`), sent as `Authorization: Bearer …`, read-only.
//!
//! Handlers take [`Staff`] (anyone signed in, or an API token on a read) or [`Admin`] (a signed-in
//! admin) as an extractor; a page asks [`AuthState::viewer`] and redirects to sign-in on `None`.

pub mod control;
pub mod password;
mod routes;
pub mod setup;
pub mod token;

pub use routes::{router, SESSION_LIFETIME};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use serde::Serialize;

use crate::error::AppError;
use crate::store::staff::{self, Credential};
use crate::store::Store;

/// The cookie that carries a browser's session token.
pub const SESSION_COOKIE: &str = "nexero_session";

#[derive(Clone)]
pub struct AuthState {
    pub store: Store,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Sales,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Sales => "sales",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "sales" => Some(Role::Sales),
            _ => None,
        }
    }
}

/// How a request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Session,
    Token,
}

/// Who is asking: a staff member (by session) or an API token (by its name; role `sales`,
/// read-only).
#[derive(Clone, Debug, Serialize)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Viewer {
    fn from_credential(credential: Credential, via: Via) -> Viewer {
        // API tokens read as sales staff; an unknown stored role gets the lesser rights.
        let role = Role::parse(&credential.role).filter(|_| via == Via::Session).unwrap_or(Role::Sales);
        Viewer { name: credential.name, role, via }
    }
}

impl AuthState {
    /// The viewer a request's cookie or bearer token names, or `None` when it carries neither
    /// or one that is unknown or expired.
    pub async fn viewer(&self, headers: &HeaderMap) -> Result<Option<Viewer>, AppError> {
        if let Some(bearer) = bearer_token(headers) {
            let hash = token::digest(bearer);
            let found = self.store.read(move |c| staff::api_token(c, &hash)).await?;
            return Ok(found.map(|credential| Viewer::from_credential(credential, Via::Token)));
        }
        if let Some(cookie) = session_cookie(headers) {
            let hash = token::digest(cookie);
            let found = self.store.read(move |c| staff::user_by_session(c, &hash)).await?;
            return Ok(found.map(|credential| Viewer::from_credential(credential, Via::Session)));
        }
        Ok(None)
    }
}

/// Anyone signed in, or an API token on a read (GET or HEAD).
pub struct Staff(pub Viewer);

/// A signed-in admin.
pub struct Admin(pub Viewer);

impl<S> FromRequestParts<S> for Staff
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let viewer = signed_in(parts, state).await?;
        if viewer.via == Via::Token && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(AppError::Forbidden("API tokens are read-only; sign in to change anything".into()));
        }
        Ok(Staff(viewer))
    }
}

impl<S> FromRequestParts<S> for Admin
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let viewer = signed_in(parts, state).await?;
        if viewer.role != Role::Admin || viewer.via != Via::Session {
            return Err(AppError::Forbidden("only a signed-in admin can do this".into()));
        }
        Ok(Admin(viewer))
    }
}

async fn signed_in<S>(parts: &Parts, state: &S) -> Result<Viewer, AppError>
where
    AuthState: FromRef<S>,
{
    AuthState::from_ref(state)
        .viewer(&parts.headers)
        .await?
        .ok_or_else(|| AppError::Unauthorized("sign in, or send an API token as Authorization: Bearer <token>".into()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The session token in the `Cookie` header(s), if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|token| !token.is_empty())
}
