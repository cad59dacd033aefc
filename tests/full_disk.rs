//! The data directory and the console log on one small disk that fills up, as an admin meets it:
//! uploads get 503 with Retry-After while it is full, logging failures cost log lines and nothing
//! else, nothing acknowledged is lost, and uploads are taken again within seconds of space
//! returning — by the same process, without a restart.
//!
//! Mounts its own 32 MB tmpfs, so it needs root (the test command and CI run as root).
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, serve_command, Appliance};

/// A small filesystem of the test's own, unmounted when the test ends.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "nexero-full-disk-test"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root: run the test command as root, as CI does");
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let output = Command::new("df").args(["--output=avail", "-B1"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&output.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

/// Takes every free byte of the disk.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let status = Command::new("fallocate").args(["-l", &free_bytes(dir).to_string()]).arg(&filler).status().unwrap();
    assert!(status.success());
    // Whatever fallocate left (block rounding), take it too.
    let _ = Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", dir.join("filler2").display())).arg("bs=4096").stderr(Stdio::null()).status();
    filler
}

async fn upload(client: &reqwest::Client, port: u16, view: &str) -> Result<(u16, Option<String>), reqwest::Error> {
    let answer = client
        .post(format!("http://127.0.0.1:{port}/api/v1/unreal/session"))
        .header("content-type", "application/json")
        .header("x-device-key", "disk-test-headset")
        .body(format!(r#"{{"View": "{view}", "TotalDuration": "0:03"}}"#))
        .send()
        .await?;
    let retry_after = answer.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((answer.status().as_u16(), retry_after))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_honestly_and_recovers_by_itself() {
    let disk = SmallDisk::mount(32);
    let data_dir = disk.0.join("data");
    let port = free_port();
    let log = File::create(disk.0.join("console.log")).unwrap();
    let mut appliance =
        Appliance::spawn(serve_command(&data_dir, port).args(["--log", "debug", "--min-free-disk-mb", "1"]).stdout(Stdio::null()).stderr(log));
    let pid = appliance.0.id();
    appliance.wait_until_healthy(port, Duration::from_secs(20));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let view = format!("before-{n}");
        assert_eq!(upload(&client, port, &view).await.unwrap().0, 201);
        acknowledged.push(view);
    }

    let filler = fill(&disk.0);
    // While full: every upload is answered (no dropped connection), 503 with Retry-After, and
    // the debug log lines the appliance cannot write cost nothing else.
    let full_since = Instant::now();
    let mut refused = 0;
    let mut n = 0;
    while full_since.elapsed() < Duration::from_secs(3) {
        n += 1;
        let view = format!("while-full-{n}");
        let (status, retry_after) = upload(&client, port, &view).await.expect("every upload gets an answer while the disk is full");
        match status {
            503 => {
                assert!(retry_after.is_some(), "a 503 says when to retry");
                refused += 1;
            }
            201 => acknowledged.push(view),
            other => panic!("upload answered {other} while the disk is full"),
        }
    }
    assert!(refused > 0, "a full disk refuses uploads");
    let health = client.get(format!("http://127.0.0.1:{port}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 503, "/health reports the full disk");

    std::fs::remove_file(&filler).unwrap();
    let _ = std::fs::remove_file(disk.0.join("filler2"));
    let freed = Instant::now();
    let recovered = loop {
        let view = format!("after-{}", freed.elapsed().as_millis());
        let (status, _) = upload(&client, port, &view).await.expect("answered after space returns");
        if status == 201 {
            acknowledged.push(view);
            break freed.elapsed();
        }
        assert!(freed.elapsed() < Duration::from_secs(10), "uploads still refused 10 s after space returned (last {status})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(recovered < Duration::from_secs(5), "took {recovered:?} to take uploads again");
    assert!(appliance.0.try_wait().unwrap().is_none() && appliance.0.id() == pid, "the same process recovered, no restart");
    for n in 0..20 {
        let view = format!("later-{n}");
        assert_eq!(upload(&client, port, &view).await.unwrap().0, 201);
        acknowledged.push(view);
    }

    appliance.terminate();
    let exit = tokio::task::spawn_blocking(move || appliance.exit_within(Duration::from_secs(20))).await.unwrap();
    assert!(exit.is_some_and(|e| e.success()), "a clean stop after the disk trouble, got {exit:?}");
    let db = rusqlite::Connection::open(data_dir.join("nexero.db")).unwrap();
    let stored: std::collections::HashSet<String> = common::column(&db, "SELECT name FROM events WHERE kind = 'view'").into_iter().collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|v| !stored.contains(*v)).collect();
    assert!(lost.is_empty(), "acknowledged uploads lost: {lost:?}");
}
