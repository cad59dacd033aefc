//! The minimal client of `nexero bench --sync`: what the engine is compared with. The backlog's
//! rows read from SQLite and built exactly as the engine builds them (`sync::payload`), batched
//! per table within the same limits, and inserted with the statement PostgREST (and the engine's
//! postgres target) runs, prepared once, one at a time over one tokio-postgres connection, tours
//! first. Reading and building run on another thread meanwhile, so this is a ceiling.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::Type;

use super::cloud;
use crate::store::StoreError;
use crate::sync::payload::{self, Row, Table};

/// The INSERT the minimal client prepares for `table`: PostgREST's (and the engine's) shape.
fn insert_sql(table: Table) -> String {
    let (name, key) = (table.name(), table.conflict_column());
    let list = table.columns().iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let action = if table.merges() {
        let set: Vec<String> = table.columns().iter().filter(|c| **c != key).map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\"")).collect();
        format!("DO UPDATE SET {}", set.join(", "))
    } else {
        "DO NOTHING".into()
    };
    format!("INSERT INTO \"{name}\" ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::\"{name}\", $1::jsonb) ON CONFLICT (\"{key}\") {action}")
}

/// One JSON array ready to insert, and its row count.
type Batch = (Table, String, usize);

/// Where the minimal client writes: PostgreSQL directly (the ceiling), or postrust over HTTP
/// (a diagnostic: the HTTP target's own ceiling, root URL and service key).
pub enum Sink<'a> {
    Postgres(&'a str),
    Postrust(&'a str, &'a str),
}

/// The minimal client: the backlog's rows from SQLite as the engine builds them, batched per
/// table, written one statement (or request) at a time, tours first. Returns rows and time.
pub async fn run(db: PathBuf, sink: Sink<'_>, site_id: &str, batch_rows: usize, batch_bytes: usize) -> Result<(i64, Duration), String> {
    let tables = [Table::Sessions, Table::Tracking, Table::Views, Table::Pois];
    let (mut pg, mut statements, http) = (None, Vec::new(), reqwest::Client::new());
    if let Sink::Postgres(db_url) = sink {
        let client = cloud::connect(db_url).await?;
        for table in tables {
            statements.push(client.prepare_typed(&insert_sql(table), &[Type::TEXT]).await.map_err(|e| e.to_string())?);
        }
        pg = Some(client);
    }
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Batch>(8);
    let site_id = site_id.to_owned();
    let started = Instant::now();
    let producer = tokio::task::spawn_blocking(move || produce(&db, &site_id, batch_rows, batch_bytes, &sender));
    let mut rows = 0i64;
    while let Some((table, body, n)) = batches.recv().await {
        let failed = |e: String| format!("minimal client, {}: {e}", table.name());
        match (&pg, &sink) {
            (Some(client), _) => {
                let statement = &statements[tables.iter().position(|t| *t == table).unwrap_or(0)];
                client.execute(statement, &[&body]).await.map_err(|e| failed(e.to_string()))?;
            }
            (None, Sink::Postrust(root, key)) => {
                let prefer = if table.merges() { "resolution=merge-duplicates,return=minimal" } else { "resolution=ignore-duplicates,return=minimal" };
                let response = http
                    .post(format!("{root}/{}?on_conflict={}", table.name(), table.conflict_column()))
                    .bearer_auth(key)
                    .header("apikey", *key)
                    .header("content-type", "application/json")
                    .header("prefer", prefer)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                if !response.status().is_success() {
                    return Err(failed(format!("HTTP {}: {}", response.status(), response.text().await.unwrap_or_default())));
                }
            }
            (None, Sink::Postgres(_)) => unreachable!("connected above"),
        }
        rows += n as i64;
    }
    producer.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    Ok((rows, started.elapsed()))
}

/// Reads every queued tour and its events (in the engine's order) and sends them as batches.
fn produce(db: &Path, site_id: &str, max_rows: usize, max_bytes: usize, sender: &tokio::sync::mpsc::Sender<Batch>) -> Result<(), StoreError> {
    use crate::store::sync as outbox;
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let pending = outbox::pending(&conn, i64::MAX, 1 << 40)?;
    let mut open: Vec<(Table, Vec<Row>, usize)> = Vec::new();
    let push = |row: Row, open: &mut Vec<(Table, Vec<Row>, usize)>| {
        let i = match open.iter().position(|(t, _, _)| *t == row.table) {
            Some(i) => i,
            None => {
                open.push((row.table, Vec::new(), 2));
                open.len() - 1
            }
        };
        let (table, rows, bytes) = &mut open[i];
        if !rows.is_empty() && (rows.len() >= max_rows || *bytes + row.json.len() + 1 > max_bytes) {
            let _ = sender.blocking_send((*table, payload::body(rows), rows.len()));
            rows.clear();
            *bytes = 2;
        }
        *bytes += row.json.len() + 1;
        rows.push(row);
    };
    let flush = |open: &mut Vec<(Table, Vec<Row>, usize)>| {
        for (table, rows, _) in open.drain(..) {
            if !rows.is_empty() {
                let _ = sender.blocking_send((table, payload::body(&rows), rows.len()));
            }
        }
    };
    let mut uuids = Vec::with_capacity(pending.len());
    for p in &pending {
        let tour = outbox::tour(&conn, p.session_id)?;
        push(payload::session_row(&tour, site_id), &mut open);
        uuids.push(tour.uuid);
    }
    flush(&mut open);
    for (p, uuid) in pending.iter().zip(&uuids) {
        for event in outbox::events_after(&conn, p.session_id, 0, 1 << 40)? {
            push(payload::event_row(&event, uuid, site_id), &mut open);
        }
    }
    flush(&mut open);
    Ok(())
}
