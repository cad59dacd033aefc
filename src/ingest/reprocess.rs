//! `nexero reprocess`: reads the uploads this appliance once refused as not understood and stores
//! those the current parser recognises (e.g. after an update that learned a new headset build).

use crate::app::{open_store, StartError};
use crate::config::Settings;
use crate::ingest::parse;
use crate::ingest::payload::ParseContext;
use crate::model::UploadMeta;

const PAGE: usize = 500;

#[derive(Debug, Default)]
pub struct Report {
    pub examined: usize,
    pub recovered: usize,
    pub events: usize,
    pub still_rejected: usize,
}

pub async fn run(settings: &Settings) -> Result<Report, StartError> {
    let store = open_store(settings).await?;
    let ctx = ParseContext { tz: settings.timezone()? };
    let database_error = |source| StartError::Database { path: settings.database_path().display().to_string(), source };
    let mut report = Report::default();
    let mut after = 0;
    loop {
        let page = store.rejected_uploads(after, PAGE).await.map_err(database_error)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (inbox_id, meta) in page {
            report.examined += 1;
            let Some(Ok(action)) = parse::reparse(&meta.endpoint, &meta.body, meta.idempotency_key.as_deref(), ctx) else {
                report.still_rejected += 1;
                continue;
            };
            let meta = UploadMeta { ok_status: success_status(&meta.endpoint), ..meta };
            let applied = store.reapply(inbox_id, meta, action).await.map_err(database_error)?;
            report.recovered += 1;
            report.events += applied.stored;
        }
    }
    store.shutdown().await;
    Ok(report)
}

/// The status the endpoint answers when it stores an upload, recorded with the recovered row.
fn success_status(endpoint: &str) -> u16 {
    if endpoint.contains("/tracking/") || endpoint.ends_with("/events") || endpoint.ends_with("/batch") {
        202
    } else if endpoint.ends_with("/session/end") {
        200
    } else {
        201
    }
}
