//! Receiving an upload: the body read within its limits, and the one place where an upload is
//! stored or refused — a refused upload is kept in the inbox before its error is answered.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, FromRequest, OriginalUri, RawPathParams, Request};
use axum::http::header;
use axum::RequestPartsExt;
use http_body_util::BodyExt;

use super::IngestState;
use crate::error::{AppError, Result};
use crate::model::{Action, Endpoint, UploadMeta};
use crate::store::now_ms;

/// Headers a headset may use to identify itself; without one, its address is its identity.
const DEVICE_HEADERS: &[&str] = &["x-device-key", "x-device-id"];
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// An upload read off the wire, before parsing.
pub struct Received {
    pub meta: UploadMeta,
    /// The session id in the path of the heartbeat routes.
    pub route_id: Option<String>,
}

/// Reads the body within the configured limit; an oversized body is refused with 413 and its
/// start is kept in the inbox like any other refused upload.
impl<S: Send + Sync> FromRequest<S> for Received
where
    IngestState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let state = &IngestState::from_ref(state);
        let (mut parts, body) = request.into_parts();
        let endpoint = parts.extensions.get::<Endpoint>().copied().expect("the router tags every upload route");
        let route_id = match parts.extract::<RawPathParams>().await {
            Ok(params) => params.iter().find(|(name, _)| *name == "id").map(|(_, value)| value.to_owned()),
            Err(_) => None,
        };
        let headers = &parts.headers;
        let header_text =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let client_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let device_key = DEVICE_HEADERS
            .iter()
            .find_map(|name| header_text(name))
            .map(|key| key.chars().take(128).collect())
            .or_else(|| client_addr.map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let meta = UploadMeta {
            received_at: now_ms(),
            endpoint,
            // Inside the nested router the URI lacks the prefix; the inbox keeps the path as called.
            path: parts.extensions.get::<OriginalUri>().map_or(parts.uri.path(), |uri| uri.path()).to_owned(),
            client_addr: client_addr.map(|a| a.to_string()).unwrap_or_default(),
            device_key,
            content_type: header_text(header::CONTENT_TYPE.as_str()).map(str::to_string),
            body: Vec::new(),
            idempotency_key: header_text(IDEMPOTENCY_HEADER).map(str::to_string),
        };
        let limit = state.max_body_bytes;
        let declared = header_text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
        match read_body(body, declared, limit).await? {
            BodyRead::Within(body) => Ok(Received { meta: UploadMeta { body, ..meta }, route_id }),
            BodyRead::TooLarge { sample, size } => {
                let error = AppError::PayloadTooLarge { limit };
                let reason = format!("{error}: {size}; the first {} bytes are kept", sample.len());
                Err(refuse(state, UploadMeta { body: sample, ..meta }, error, reason).await)
            }
        }
    }
}

/// How far past the limit an oversized body is still read (and discarded) before the connection
/// is closed instead.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How much of an oversized body the inbox keeps: enough to see what sent it.
const OVERSIZED_SAMPLE: usize = 64 * 1024;

enum BodyRead {
    Within(Vec<u8>),
    /// `size` says how large it was, as far as it was read.
    TooLarge { sample: Vec<u8>, size: String },
}

/// Reads the body within `limit` bytes. An oversized body is read to its end (keeping its start),
/// so the client has finished sending when the 413 comes and reads it instead of a broken pipe.
async fn read_body(mut body: Body, declared: Option<usize>, limit: usize) -> Result<BodyRead> {
    if let Some(declared) = declared.filter(|n| *n > DRAIN_LIMIT) {
        return Ok(BodyRead::TooLarge { sample: Vec::new(), size: format!("Content-Length {declared}, not read") });
    }
    // Trust Content-Length for the first allocation only up to 1 MiB: it is the client's claim.
    let mut data = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20));
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| AppError::bad_request(format!("could not read the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        received += chunk.len();
        if received <= limit {
            data.extend_from_slice(&chunk);
        } else if received > DRAIN_LIMIT {
            data.truncate(OVERSIZED_SAMPLE);
            return Ok(BodyRead::TooLarge { sample: data, size: format!("over {DRAIN_LIMIT} bytes, not read to the end") });
        } else {
            // Past the limit: keep only the sample while draining the rest.
            let room = OVERSIZED_SAMPLE.saturating_sub(data.len());
            data.extend_from_slice(&chunk[..room.min(chunk.len())]);
            data.truncate(OVERSIZED_SAMPLE);
            data.shrink_to_fit();
        }
    }
    if received > limit {
        return Ok(BodyRead::TooLarge { sample: data, size: format!("{received} bytes sent") });
    }
    Ok(BodyRead::Within(data))
}

/// Keeps a refused upload in the inbox and gives back the error to answer (or the storage error,
/// when even the refusal could not be kept).
pub async fn refuse(state: &IngestState, meta: UploadMeta, error: AppError, reason: String) -> AppError {
    let rejected = Action::Rejected { status: error.status().as_u16(), reason };
    match state.store.apply(meta, None, rejected).await {
        Ok(_) => error,
        Err(storage) => storage.into(),
    }
}
