//! `nexero reprocess`: reads the uploads this appliance once refused as not understood and stores
//! those the current parser recognises (e.g. after an update that learned a new headset build).

use super::payload::ParseContext;
use crate::store::{inbox, Store, StoreError};

const PAGE: usize = 500;

#[derive(Debug, Default)]
pub struct Report {
    pub examined: usize,
    pub recovered: usize,
    pub events: usize,
    pub still_rejected: usize,
}

pub async fn run(store: &Store, ctx: ParseContext) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut after = 0;
    loop {
        let (last, page) = store.read(move |c| inbox::rejected_uploads(c, after, PAGE)).await?;
        if last == after {
            break;
        }
        after = last;
        for (inbox_id, meta) in page {
            report.examined += 1;
            // No route id: a heartbeat's meaning depended on the moment it arrived; it is not re-read.
            let Ok(parsed) = meta.endpoint.parse(&meta.body, meta.idempotency_key.as_deref(), None, ctx) else {
                report.still_rejected += 1;
                continue;
            };
            let applied = store.apply(meta, Some(inbox_id), parsed.action).await?;
            report.recovered += 1;
            report.events += applied.stored;
        }
    }
    Ok(report)
}
