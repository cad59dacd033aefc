//! Versioned migrations from the embedded `schema.sql`.

use std::path::{Path, PathBuf};

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
    last_version(&migrations())
}

fn last_version(migrations: &[(i64, &str)]) -> i64 {
    migrations.last().map(|(v, _)| *v).unwrap_or(0)
}

/// Brings the file up to this binary's schema; refuses a file written by a newer binary. Before
/// upgrading a file that already holds data it copies it into `backup_dir`, so an admin can go
/// back to the previous version.
pub fn migrate(conn: &mut Connection, backup_dir: &Path) -> Result<(), StoreError> {
    apply(conn, &migrations(), backup_dir)
}

fn apply(conn: &mut Connection, migrations: &[(i64, &str)], backup_dir: &Path) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = last_version(migrations);
    if current > latest {
        return Err(StoreError::Incompatible(format!(
            "the database was written by a newer Nexero (schema version {current}; this binary knows up to \
             {latest}). Fix: run the newer nexero version, or restore a backup made by this version"
        )));
    }
    if current > 0 && current < latest {
        let backup = backup_before_upgrade(conn, current, backup_dir)?;
        tracing::info!(backup = %backup.display(), from = current, to = latest, "backed up the database before upgrading it");
    }
    for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
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

/// A consistent copy of the database (`VACUUM INTO`) named after its schema version and the time.
fn backup_before_upgrade(conn: &Connection, version: i64, backup_dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(backup_dir).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot create the backup folder {} before upgrading the database: {e}. Fix: make the data \
             directory writable",
            backup_dir.display()
        ))
    })?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let target = backup_dir.join(format!("nexero-schema{version}-{stamp}.db"));
    conn.execute("VACUUM INTO ?1", [target.to_string_lossy()]).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot back up the database to {} before upgrading it: {e}. Fix: free disk space, then start \
             again (the database was not changed)",
            target.display()
        ))
    })?;
    Ok(target)
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
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, dir.path()).unwrap();
        migrate(&mut conn, dir.path()).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, latest_version());
        conn.pragma_update(None, "user_version", latest_version() + 1).unwrap();
        let err = migrate(&mut conn, dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer Nexero"), "{err}");
        assert!(!dir.path().exists() || std::fs::read_dir(dir.path()).unwrap().next().is_none(), "no backup of a fresh file");
    }

    #[test]
    fn upgrading_a_file_with_data_backs_it_up_first() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        let mut conn = Connection::open(dir.path().join("nexero.db")).unwrap();
        let v1 = [(1, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); CREATE TABLE t(x);")];
        apply(&mut conn, &v1, &backups).unwrap();
        conn.execute("INSERT INTO t VALUES ('kept')", []).unwrap();
        assert!(!backups.exists(), "a new file needs no backup");

        let v2 = [v1[0], (2, "ALTER TABLE t ADD COLUMN y;")];
        apply(&mut conn, &v2, &backups).unwrap();
        let files: Vec<_> = std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].file_name().unwrap().to_string_lossy().starts_with("nexero-schema1-"));
        let copy = Connection::open(&files[0]).unwrap();
        let version: i64 = copy.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let columns: i64 = copy.query_row("SELECT count(*) FROM pragma_table_info('t')", [], |r| r.get(0)).unwrap();
        let row: String = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!((version, columns, row.as_str()), (1, 1, "kept"));
    }
}
