//! Secrets given to `service install` (`--sync-key`) go into the service's own nexero.toml, never
//! onto its command line or into its unit: every local user can read those (`sc qc`, the
//! registry, `ps`, `systemctl show`).
//!
//! What protects the file: on Unix, mode 0600 and an owner that is the service's user (below).
//! On Windows the file would inherit %ProgramData%'s ACL, which lets every local user read it, so
//! install replaces its ACL with SYSTEM (the service's account) and Administrators only
//! (`icacls`); where that fails, install says so and how to do it by hand.

use std::io::Write;
use std::path::Path;

use toml_edit::{DocumentMut, TableLike};

use super::ServiceError;
use crate::config::CONFIG_FILE_NAME;

/// Writes each `(nexero.toml key, value)` into `<data_dir>/nexero.toml`, creating the directory
/// and the file when missing and keeping everything else in the file, comments included.
/// Returns what to tell the admin, or `None` when there was nothing to store.
pub(super) fn store(data_dir: &Path, secrets: &[(&str, String)]) -> Result<Option<String>, ServiceError> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let file = data_dir.join(CONFIG_FILE_NAME);
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        ServiceError(format!("cannot {what} {}: {e}. Fix: run this as administrator / root", file.display()))
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(cannot("read", &e)),
    };
    let mut doc: DocumentMut = text.parse().map_err(|e| {
        ServiceError(format!("{} is not valid TOML: {e}. Fix: correct the file, then run the install again", file.display()))
    })?;
    for (key, value) in secrets {
        set(&mut doc, key, value).map_err(|why| {
            ServiceError(format!("cannot store {key} in {}: {why}. Fix: correct the file, then run the install again", file.display()))
        })?;
    }
    std::fs::create_dir_all(data_dir).map_err(|e| cannot("create the folder of", &e))?;
    write_restricted(data_dir, &file, &doc.to_string()).map_err(|e| cannot("write", &e))?;
    let keys: Vec<&str> = secrets.iter().map(|(key, _)| *key).collect();
    let told = format!("{} kept in {}, not on the command line", keys.join(", "), file.display());
    #[cfg(windows)]
    let told = match restrict_to_system_and_administrators(&file) {
        Ok(()) => told,
        Err(why) => format!(
            "{told}\n  WARNING: other local users may read it ({why}). Fix: icacls \"{}\" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F",
            file.display()
        ),
    };
    Ok(Some(told))
}

/// Sets `sync.key` as `key` inside a `[sync]` section, which is created when missing.
fn set(doc: &mut DocumentMut, key: &str, value: &str) -> Result<(), String> {
    let mut path: Vec<&str> = key.split('.').collect();
    let name = path.pop().unwrap_or(key);
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    for section in path {
        table = table
            .entry(section)
            .or_insert(toml_edit::table())
            .as_table_like_mut()
            .ok_or_else(|| format!("`{section}` is a value, not a [{section}] section"))?;
    }
    table.insert(name, toml_edit::value(value));
    Ok(())
}

/// Replaces the file through a temporary one, so a failure never leaves half a file, and the
/// secret is never on disk with looser rights than the final file.
fn write_restricted(dir: &Path, file: &Path, text: &str) -> std::io::Result<()> {
    let mut temporary = tempfile::Builder::new().prefix(".nexero.toml.").tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
        // Owned like its folder: systemd hands /var/lib/nexero to the service's DynamicUser, but
        // skips files inside once the folder already belongs to it, and 0600 root would lock
        // the service out.
        let owner = std::fs::metadata(dir)?;
        std::os::unix::fs::fchown(temporary.as_file(), Some(owner.uid()), Some(owner.gid()))?;
    }
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    temporary.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Only SYSTEM (S-1-5-18, the service's LocalSystem account) and Administrators (S-1-5-32-544)
/// keep access; the inherited ProgramData entries (Users: read) go.
#[cfg(windows)]
fn restrict_to_system_and_administrators(file: &Path) -> Result<(), String> {
    let output = std::process::Command::new("icacls")
        .arg(file)
        .args(["/inheritance:r", "/grant:r", "*S-1-5-18:F", "*S-1-5-32-544:F"])
        .output()
        .map_err(|e| format!("cannot run icacls: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("icacls failed: {}", String::from_utf8_lossy(&output.stdout).trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};

    #[test]
    fn keeps_the_file_and_adds_the_secret_under_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&file, "# the showroom's own port\nport = 8001\n").unwrap();

        let told = store(dir.path(), &[("sync.key", "sb_secret_abc123".into())]).unwrap();
        assert!(told.is_some_and(|t| t.starts_with("sync.key kept in") && !t.contains("sb_secret")));

        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("# the showroom's own port"), "the comment is kept:\n{text}");
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["port"].as_integer(), Some(8001));
        assert_eq!(doc["sync"]["key"].as_str(), Some("sb_secret_abc123"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }

        // The appliance reads it back from the same place.
        let overrides = Overrides { data_dir: Some(dir.path().to_owned()), ..Overrides::default() };
        let settings = Settings::load(&overrides).unwrap();
        assert_eq!(settings.port, 8001);
        assert_eq!(settings.sync.key.expose(), "sb_secret_abc123");
    }

    #[test]
    fn creates_a_missing_file_and_replaces_an_old_secret() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nexero");
        store(&data_dir, &[("sync.key", "old".into())]).unwrap();
        store(&data_dir, &[("sync.key", "new".into())]).unwrap();
        let doc: DocumentMut = std::fs::read_to_string(data_dir.join(CONFIG_FILE_NAME)).unwrap().parse().unwrap();
        assert_eq!(doc["sync"]["key"].as_str(), Some("new"));
        assert_eq!(doc.to_string().matches("key").count(), 1);
    }

    #[test]
    fn nothing_given_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(store(dir.path(), &[]).unwrap().is_none());
        assert!(!dir.path().join(CONFIG_FILE_NAME).exists());
    }
}
