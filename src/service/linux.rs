//! The systemd service: `nexero service install` writes packaging/linux/nexero.service (with this
//! program's path and the settings given) and enables it; the other actions wrap systemctl.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ServiceError, DISPLAY_NAME};
use crate::config::{Overrides, Settings};

const UNIT_NAME: &str = "nexero.service";
const UNIT_PATH: &str = "/etc/systemd/system/nexero.service";
const UNIT_TEMPLATE: &str = include_str!("../../packaging/linux/nexero.service");
const TEMPLATE_PROGRAM: &str = "/usr/local/bin/nexero";
/// systemd's StateDirectory=nexero; DynamicUser can write nowhere else.
const DATA_DIR: &str = "/var/lib/nexero";

fn systemctl(args: &[&str]) -> Result<String, ServiceError> {
    let output = Command::new("systemctl").args(args).output().map_err(|e| {
        ServiceError(format!("cannot run systemctl ({e}). Fix: this needs a Linux system running systemd"))
    })?;
    if !output.status.success() {
        return Err(ServiceError(format!(
            "`systemctl {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `_firewall` is Windows Firewall's: the command line offers it on Windows only.
pub fn install(overrides: &Overrides, _firewall: bool) -> Result<(), ServiceError> {
    let overrides = super::pinned_data_dir(overrides, PathBuf::from(DATA_DIR));
    if overrides.data_dir.as_deref() != Some(Path::new(DATA_DIR)) {
        return Err(ServiceError(format!(
            "the systemd service keeps its data in {DATA_DIR} (StateDirectory). Fix: leave out --data-dir and \
             NEXERO_DATA_DIR, and mount or link the disk you want at {DATA_DIR}"
        )));
    }
    // A bad setting fails here, in front of the admin, rather than at the next boot.
    let settings = Settings::load(&overrides)?;
    let exe = std::env::current_exe().map_err(|e| ServiceError(format!("cannot find this program's own path: {e}")))?;
    let unit = render_unit(&exe, &Overrides { data_dir: None, ..overrides.clone() })?;
    // Before the unit starts, so that its first start already reads them.
    let secrets = super::secrets::store(Path::new(DATA_DIR), &overrides.secrets())?;
    std::fs::write(UNIT_PATH, unit).map_err(|e| ServiceError(format!("cannot write {UNIT_PATH}: {e}. Fix: run with sudo")))?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])?;
    println!("installed and started {DISPLAY_NAME} ({UNIT_PATH}); it starts with the computer and restarts after failures");
    println!("  program:        {}", exe.display());
    println!("  data directory: {DATA_DIR}");
    println!("  port:           {}", settings.port);
    if let Some(secrets) = secrets {
        println!("  secrets:        {secrets}");
    }
    Ok(())
}

/// The packaged unit with this program's path and the given settings as NEXERO_* variables;
/// secrets are left out (`Overrides::to_flags`), since `systemctl show` prints them to anyone.
fn render_unit(exe: &Path, overrides: &Overrides) -> Result<String, ServiceError> {
    let exe = exe.to_str().filter(|p| !p.contains(char::is_whitespace)).ok_or_else(|| {
        ServiceError(format!("the program path {} has spaces or is not UTF-8. Fix: copy nexero to /usr/local/bin", exe.display()))
    })?;
    let mut unit = String::new();
    for line in UNIT_TEMPLATE.lines() {
        unit.push_str(&line.replace(TEMPLATE_PROGRAM, exe));
        unit.push('\n');
        if line.starts_with("Environment=") {
            for pair in overrides.to_flags().chunks(2) {
                let name = pair[0].trim_start_matches("--").replace('-', "_").to_uppercase();
                unit.push_str(&format!("Environment=\"NEXERO_{name}={}\"\n", pair[1]));
            }
        }
    }
    Ok(unit)
}

pub fn uninstall(overrides: &Overrides, delete_data: bool) -> Result<(), ServiceError> {
    if Path::new(UNIT_PATH).exists() {
        // `disable --now` stops the service and waits for it to finish stopping.
        systemctl(&["disable", "--now", UNIT_NAME])?;
        std::fs::remove_file(UNIT_PATH).map_err(|e| ServiceError(format!("cannot remove {UNIT_PATH}: {e}. Fix: run with sudo")))?;
        systemctl(&["daemon-reload"])?;
        println!("removed {UNIT_PATH}");
    } else {
        println!("{UNIT_PATH} is not installed");
    }
    let data_dir = super::pinned_data_dir(overrides, PathBuf::from(DATA_DIR)).data_dir.unwrap_or_else(|| DATA_DIR.into());
    if delete_data {
        // With DynamicUser, /var/lib/nexero is a link to /var/lib/private/nexero: delete both.
        let target = std::fs::canonicalize(&data_dir).unwrap_or_else(|_| data_dir.clone());
        match std::fs::remove_dir_all(&target).and_then(|()| match std::fs::remove_file(&data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }) {
            Ok(()) => println!("deleted the data directory {}", target.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ServiceError(format!("cannot delete {}: {e}. Fix: run with sudo", data_dir.display()))),
        }
    } else {
        println!("kept the data directory {}", data_dir.display());
    }
    Ok(())
}

pub fn start() -> Result<(), ServiceError> {
    systemctl(&["start", UNIT_NAME]).map_err(|e| ServiceError(format!("{e}. The reason is in `journalctl -u nexero`")))?;
    println!("{UNIT_NAME} is running");
    Ok(())
}

pub fn stop() -> Result<(), ServiceError> {
    systemctl(&["stop", UNIT_NAME])?;
    println!("{UNIT_NAME} is stopped");
    Ok(())
}

pub fn status() -> Result<(), ServiceError> {
    let show = systemctl(&["show", UNIT_NAME, "--property=LoadState,ActiveState,SubState,MainPID,Environment"])?;
    let property = |name: &str| {
        show.lines().find_map(|l| l.strip_prefix(name).and_then(|l| l.strip_prefix('='))).unwrap_or("").to_owned()
    };
    if property("LoadState") == "not-found" {
        return Err(ServiceError(format!("{UNIT_NAME} is not installed. Fix: run `sudo nexero service install`")));
    }
    println!("service:        {UNIT_NAME} ({DISPLAY_NAME})");
    println!("state:          {} ({}, process {})", property("ActiveState"), property("SubState"), property("MainPID"));
    let overrides = unit_overrides(&property("Environment"));
    super::print_facts(&Settings::load(&super::pinned_data_dir(&overrides, PathBuf::from(DATA_DIR)))?);
    Ok(())
}

/// The settings a unit runs with: its NEXERO_* variables (`systemctl show`'s `NAME=value ...`),
/// turned back into the flags `render_unit` made them from.
fn unit_overrides(environment: &str) -> Overrides {
    let mut flags = Vec::new();
    for assignment in environment.split_whitespace() {
        if let Some((name, value)) = assignment.split_once('=').and_then(|(n, v)| Some((n.strip_prefix("NEXERO_")?, v))) {
            flags.push(format!("--{}", name.to_lowercase().replace('_', "-")));
            flags.push(value.to_owned());
        }
    }
    Overrides::from_flags(flags).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SyncOverrides};

    #[test]
    fn the_unit_carries_settings_but_never_a_secret() {
        let overrides = Overrides {
            port: Some(8001),
            site_timezone: Some("Asia/Kolkata".into()),
            sync: SyncOverrides { url: Some("https://example.supabase.co/rest/v1".into()), key: Some(Secret::new("sb_secret_abc123")), ..SyncOverrides::default() },
            ..Overrides::default()
        };
        let unit = render_unit(Path::new("/opt/nexero/nexero"), &overrides).unwrap();
        assert!(unit.contains("ExecStart=/opt/nexero/nexero serve\n"), "{unit}");
        assert!(unit.contains("Environment=\"NEXERO_PORT=8001\"\n"), "{unit}");
        assert!(unit.contains("Environment=\"NEXERO_SYNC_URL=https://example.supabase.co/rest/v1\"\n"), "{unit}");
        assert!(!unit.contains("sb_secret") && !unit.contains("SYNC_KEY"), "{unit}");

        // What `service status` reads back from `systemctl show -p Environment`.
        let environment: Vec<&str> =
            unit.lines().filter_map(|l| l.strip_prefix("Environment=")).map(|l| l.trim_matches('"')).collect();
        let back = unit_overrides(&environment.join(" "));
        assert_eq!(back.port, Some(8001));
        assert_eq!(back.site_timezone.as_deref(), Some("Asia/Kolkata"));
        assert_eq!(back.sync.url.as_deref(), Some("https://example.supabase.co/rest/v1"));
        assert_eq!(back.data_dir.as_deref(), Some(Path::new(DATA_DIR)));
    }
}
