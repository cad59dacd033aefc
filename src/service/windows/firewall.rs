//! `service install --firewall`: one inbound rule for this program's port on private networks
//! (never public ones), added and removed with netsh.

use std::path::Path;

use crate::service::ServiceError;

const FIREWALL_RULE: &str = "Nexero Showroom";

pub(super) fn allow(exe: &Path, port: u16) -> Result<(), ServiceError> {
    remove(); // re-running install replaces the rule instead of adding a second one
    let output = std::process::Command::new("netsh")
        .args(["advfirewall", "firewall", "add", "rule"])
        .arg(format!("name={FIREWALL_RULE}"))
        .args(["dir=in", "action=allow", "protocol=TCP", "profile=private"])
        .arg(format!("localport={port}"))
        .arg(format!("program={}", exe.display()))
        .output()
        .map_err(|e| ServiceError(format!("cannot run netsh to add the firewall rule: {e}")))?;
    if !output.status.success() {
        return Err(ServiceError(format!(
            "netsh could not add the firewall rule: {}. Fix: allow TCP port {port} for private networks in \
             Windows Defender Firewall by hand",
            String::from_utf8_lossy(&output.stdout).trim()
        )));
    }
    println!("  firewall:       TCP port {port} allowed on private networks (rule \"{FIREWALL_RULE}\")");
    Ok(())
}

pub(super) fn remove() {
    // Nothing to remove is fine, and netsh may be missing on stripped-down systems.
    let _ = std::process::Command::new("netsh")
        .args(["advfirewall", "firewall", "delete", "rule"])
        .arg(format!("name={FIREWALL_RULE}"))
        .output();
}
