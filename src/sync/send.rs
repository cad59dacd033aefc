//! Sending one table's rows: within the current batch limit, one request at a time; a refused
//! batch is bisected down to the row the cloud refuses, which is quarantined with the cloud's
//! answer while the rest goes on.

use std::collections::HashSet;
use std::ops::Range;

use super::backoff::BatchLimit;
use super::classify::{classify, describe, Class, Failure};
use super::payload::{body, Row, Table};
use super::Target;
use crate::store::sync::Quarantined;
use crate::store::{now_ms, Store, StoreError};

/// Why sending stopped before every row was in (or quarantined).
#[derive(Debug)]
pub enum Halt {
    /// Try again after a backoff (the class says why: Retry, Slow, Duplicate).
    Retry(Failure, Class),
    /// 23503: the events' tour is missing in the cloud.
    MissingParent(Failure),
    /// The configuration is wrong: stop and alert.
    Stop(Failure),
    /// The local database could not be read or written.
    Store(StoreError),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Halt {
        Halt::Store(e)
    }
}

/// The ranges of `rows` in batches of at most `size` rows and `max_bytes` bytes, in order.
pub fn split(rows: &[Row], range: Range<usize>, size: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (range.start, 2usize);
    for i in range.clone() {
        let len = rows[i].json.len() + 1;
        if i > start && (i - start >= size.max(1) || bytes + len > max_bytes) {
            out.push(start..i);
            (start, bytes) = (i, 2);
        }
        bytes += len;
    }
    if start < range.end {
        out.push(start..range.end);
    }
    out
}

/// The same key twice in one request: PostgreSQL refuses a merge that touches a row twice
/// (21000). Rows come from primary keys, so this is a bug; checked before every send.
fn repeats_a_key(rows: &[Row]) -> bool {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter().any(|r| !seen.insert(r.key.as_str()))
}

/// Sends `rows` of `table`. Returns the rows quarantined on the way (already recorded).
pub async fn send_rows(
    target: &mut Target,
    store: &Store,
    limit: &mut BatchLimit,
    table: Table,
    rows: &[Row],
) -> Result<Vec<Row>, Halt> {
    let mut quarantined = Vec::new();
    let mut todo: Vec<Range<usize>> = split(rows, 0..rows.len(), limit.rows(), limit.max_bytes);
    todo.reverse();
    while let Some(range) = todo.pop() {
        if range.len() > limit.rows() {
            // The limit shrank since this range was cut.
            todo.extend(split(rows, range, limit.rows(), limit.max_bytes).into_iter().rev());
            continue;
        }
        let batch = &rows[range.clone()];
        if repeats_a_key(batch) {
            let message = format!("internal error: a {} batch repeats a row id; not sent", table.name());
            tracing::error!("{message}");
            return Err(Halt::Stop(Failure { message, ..Failure::default() }));
        }
        let failure = match target.upsert(table, body(batch)).await {
            Ok(()) => {
                limit.grow();
                continue;
            }
            Err(failure) => failure,
        };
        let class = classify(&failure);
        let mid = range.start + range.len() / 2;
        match class {
            Class::TooLarge | Class::Poison if range.len() > 1 => {
                if class == Class::TooLarge {
                    limit.halve(range.len());
                }
                todo.push(mid..range.end);
                todo.push(range.start..mid);
            }
            Class::TooLarge | Class::Poison => {
                let row = batch[0].clone();
                quarantine(store, table, &row, &failure, class).await?;
                quarantined.push(row);
            }
            Class::Slow => {
                limit.halve(range.len());
                return Err(Halt::Retry(failure, class));
            }
            Class::MissingParent if table != Table::Sessions => return Err(Halt::MissingParent(failure)),
            Class::Stop => return Err(Halt::Stop(failure)),
            // The batch was checked for repeated ids above: a 21000 is not ours to fix by
            // resending at once (a proxy, a trigger upstream). Retry later, with backoff.
            Class::Duplicate | Class::Retry | Class::MissingParent => return Err(Halt::Retry(failure, class)),
        }
    }
    Ok(quarantined)
}

async fn quarantine(store: &Store, table: Table, row: &Row, failure: &Failure, class: Class) -> Result<(), StoreError> {
    let entry = Quarantined {
        session_id: row.session_id,
        event_id: row.event_id,
        table: table.name().to_owned(),
        code: failure.code.clone(),
        error: describe(failure, class),
        payload: row.json.clone(),
    };
    tracing::warn!(table = table.name(), id = %row.key, error = %entry.error, "cloud sync quarantined a row the cloud refuses");
    store.write(move |c| crate::store::sync::quarantine(c, &entry, now_ms())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(sizes: &[usize]) -> Vec<Row> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Row { table: Table::Tracking, session_id: 1, event_id: Some(i as i64), key: i.to_string(), json: "x".repeat(*n) })
            .collect()
    }

    #[test]
    fn batches_respect_rows_and_bytes() {
        let r = rows(&[10; 10]);
        assert_eq!(split(&r, 0..10, 4, 1 << 20), vec![0..4, 4..8, 8..10]);
        // 2 bytes of brackets + 11 per row: 3 rows fit in 35 bytes, not 4.
        assert_eq!(split(&r, 0..10, 100, 35), vec![0..3, 3..6, 6..9, 9..10]);
        assert_eq!(split(&r, 2..5, 100, 1 << 20), vec![2..5]);
        assert!(split(&r, 3..3, 4, 100).is_empty());
        // A row larger than the byte limit still goes, alone.
        let big = rows(&[5, 100, 5]);
        assert_eq!(split(&big, 0..3, 10, 50), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn repeated_keys_are_caught() {
        let mut r = rows(&[1, 1, 1]);
        assert!(!repeats_a_key(&r));
        r[2].key = "0".into();
        assert!(repeats_a_key(&r));
    }
}
