//! Versioned migrations from the embedded `schema.sql`.

use rusqlite::Connection;

use super::StoreError;

const SCHEMA: &str = include_str!("../../schema.sql");
const MARKER: &str = "-- migration: ";

/// The `(version, sql)` sections of `schema.sql`, in order.
fn migrations() -> Vec<(i64, &'static str)> {
    let mut sections = Vec::new();
    let mut rest = SCHEMA;
    while let Some(start) = rest.find(MARKER) {
        let after = &rest[start + MARKER.len()..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let version: i64 = after[..line_end].trim().parse().expect("schema.sql: migration marker needs a number");
        let body_start = &after[line_end..];
        let end = body_start.find(MARKER).unwrap_or(body_start.len());
        sections.push((version, &body_start[..end]));
        rest = &body_start[end..];
    }
    sections
}

/// The schema version this binary writes.
pub fn latest_version() -> i64 {
    migrations().last().map(|(v, _)| *v).unwrap_or(0)
}

/// Brings the file up to this binary's schema; refuses a file written by a newer binary.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Incompatible(format!(
            "the database was written by a newer Nexero (schema version {current}; this binary knows up to \
             {latest}). Fix: run the newer nexero version, or restore a backup made by this version"
        )));
    }
    for (version, sql) in migrations().into_iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_applied_by', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [format!("nexero {} (schema {version})", env!("CARGO_PKG_VERSION"))],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_numbered_in_order() {
        let versions: Vec<i64> = migrations().iter().map(|(v, _)| *v).collect();
        assert!(!versions.is_empty());
        assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "{versions:?}");
        assert_eq!(versions[0], 1);
    }

    #[test]
    fn migrates_once_and_refuses_newer_files() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, latest_version());
        conn.pragma_update(None, "user_version", latest_version() + 1).unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer Nexero"), "{err}");
    }
}
