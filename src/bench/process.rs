//! CPU and memory of a child process, read from /proc (Linux); elsewhere the figures are absent.

use std::time::Instant;

pub struct Probe {
    pid: u32,
    cpu_ticks: Option<u64>,
    at: Instant,
}

fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory now, in MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    status_kb(pid, "VmRSS:").map(|kb| kb as f64 / 1024.0)
}

impl Probe {
    /// Starts measuring: resets the peak-RSS mark so the phase's own peak is reported.
    pub fn start(pid: u32) -> Probe {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        Probe { pid, cpu_ticks: read_cpu_ticks(pid), at: Instant::now() }
    }

    /// CPU used since `start`, in cores (1.0 = one core busy), assuming 100 clock ticks a second.
    pub fn cores(&self) -> Option<f64> {
        let used = read_cpu_ticks(self.pid)? - self.cpu_ticks?;
        Some(used as f64 / 100.0 / self.at.elapsed().as_secs_f64())
    }

    /// Peak resident memory since `start`, in MB.
    pub fn peak_mb(&self) -> Option<f64> {
        status_kb(self.pid, "VmHWM:").map(|kb| kb as f64 / 1024.0)
    }
}
