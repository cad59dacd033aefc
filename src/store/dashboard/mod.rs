//! The dashboard's reads: the tour list and its filters (on `tour_sessions` and its indexes),
//! tours counted per day, rankings from the daily roll-ups, and one tour's events and uploads
//! (on `events(session_id, occurred_at)` and `inbox(session_id)`). Nothing here scans raw events
//! across tours.

pub mod detail;
pub mod kpis;
pub mod rollups;
pub mod tours;

/// Calls `row` for each row of `rows` until it answers `false`; the read behind an export.
fn each<T>(
    rows: &mut rusqlite::Rows<'_>,
    read: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
    mut row: impl FnMut(T) -> Result<bool, super::StoreError>,
) -> Result<(), super::StoreError> {
    while let Some(r) = rows.next()? {
        if !row(read(r)?)? {
            break;
        }
    }
    Ok(())
}
