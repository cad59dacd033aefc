//! The local control token: how `nexero sync status|now|retry-quarantined` (run on the appliance's
//! own computer) may drive the running appliance without a staff account.
//!
//! At every start the appliance writes a fresh random token to `<data_dir>/control.token` (mode
//! 0600 on Unix; on Windows the data directory is admin-only already) and keeps only its digest.
//! A request counts as the control token only when it comes from a loopback address AND carries
//! that token as `Authorization: Bearer …`; and only the extractors here accept it, which only
//! the sync control routes use. Everywhere else the token is an unknown API token (401).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::{token, Admin, AuthState, Staff, Viewer};
use crate::error::AppError;

/// The token's file in the data directory.
pub const FILE_NAME: &str = "control.token";

/// The digest of this run's control token; `None` when it could not be written (the control
/// routes then take staff credentials only).
#[derive(Clone, Default)]
pub struct ControlState {
    digest: Option<Arc<[u8]>>,
}

impl ControlState {
    /// Writes a fresh token to `<data_dir>/control.token`, replacing the last run's, and keeps its
    /// digest. The file is written beside and renamed over the old one, so a reader never sees
    /// half a token, and it is created with mode 0600 (Unix) before a byte is in it.
    pub fn create(data_dir: &Path) -> std::io::Result<ControlState> {
        let secret = token::generate();
        let path = path(data_dir);
        let partial = data_dir.join(format!("{FILE_NAME}.{}.partial", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&partial).and_then(|mut file| {
            file.write_all(secret.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&partial, &path)) {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        Ok(ControlState { digest: Some(token::digest(&secret).into()) })
    }

    /// Whether a request from `peer` with `headers` carries this run's control token from a
    /// loopback address.
    pub fn admits(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
        let Some(digest) = &self.digest else { return false };
        let loopback = peer.is_some_and(|peer| peer.ip().to_canonical().is_loopback());
        let Some(bearer) = bearer(headers) else { return false };
        loopback && constant_time_eq(&token::digest(bearer), digest)
    }
}

/// `<data_dir>/control.token`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The running appliance's control token, as `nexero sync …` reads it.
pub fn read(data_dir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path(data_dir))?.trim().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who drives a control route: the local control token, or a staff member.
#[derive(Clone, Debug)]
pub enum Operator {
    /// `nexero sync …` on this computer.
    Control,
    Staff(Viewer),
}

/// The control token from loopback, or anyone [`Staff`] lets in (for reads).
pub struct ControlOrStaff(pub Operator);

/// The control token from loopback, or a signed-in admin ([`Admin`]).
pub struct ControlOrAdmin(pub Operator);

fn control_admits<S>(parts: &Parts, state: &S) -> bool
where
    ControlState: FromRef<S>,
{
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    ControlState::from_ref(state).admits(&parts.headers, peer)
}

impl<S> FromRequestParts<S> for ControlOrStaff
where
    AuthState: FromRef<S>,
    ControlState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if control_admits(parts, state) {
            return Ok(ControlOrStaff(Operator::Control));
        }
        let Staff(viewer) = Staff::from_request_parts(parts, state).await?;
        Ok(ControlOrStaff(Operator::Staff(viewer)))
    }
}

impl<S> FromRequestParts<S> for ControlOrAdmin
where
    AuthState: FromRef<S>,
    ControlState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if control_admits(parts, state) {
            return Ok(ControlOrAdmin(Operator::Control));
        }
        let Admin(viewer) = Admin::from_request_parts(parts, state).await?;
        Ok(ControlOrAdmin(Operator::Staff(viewer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn the_token_counts_only_from_loopback_and_only_this_runs() {
        let dir = tempfile::tempdir().unwrap();
        let first = ControlState::create(dir.path()).unwrap();
        let old = read(dir.path()).unwrap();
        let state = ControlState::create(dir.path()).unwrap();
        let secret = read(dir.path()).unwrap();
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, old, "every start writes a new token");
        let loopback: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:50000".parse().unwrap();
        let lan: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        assert!(state.admits(&with_bearer(&secret), Some(loopback)));
        assert!(state.admits(&with_bearer(&secret), Some(mapped)));
        assert!(state.admits(&with_bearer(&secret), Some("[::1]:1".parse().unwrap())));
        assert!(!state.admits(&with_bearer(&secret), Some(lan)), "not from another computer");
        assert!(!state.admits(&with_bearer(&secret), None), "not when the peer is unknown");
        assert!(!state.admits(&with_bearer(&old), Some(loopback)), "not the last run's token");
        assert!(!first.admits(&with_bearer(&secret), Some(loopback)));
        assert!(!state.admits(&HeaderMap::new(), Some(loopback)));
        assert!(!ControlState::default().admits(&with_bearer(&secret), Some(loopback)));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(FILE_NAME)]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "old\n").unwrap();
        std::fs::set_permissions(path(dir.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
        ControlState::create(dir.path()).unwrap();
        let mode = std::fs::metadata(path(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
