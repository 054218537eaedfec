//! Child processes of a test: `signalbox serve` started from a config file
//! (with its log beside it), a guard that kills and reaps any child on drop,
//! and signals sent to processes by pid (through the `kill` command: the
//! workspace forbids `unsafe`, and so `libc::kill`).

use std::path::Path;

use anyhow::{Context, Result};

/// Starts `<bin> serve --config <config>` (the CLI tests pass
/// `env!("CARGO_BIN_EXE_signalbox")`) with router logs at info, appended to
/// `router.log` beside the config file; see [`router_log_tail`].
pub fn start_serve(bin: &Path, config: &Path) -> Result<KillOnDrop> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("router.log"))?;
    std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn,signalbox_router=info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .context("starting signalbox serve")
}

/// The last 40 lines of the `router.log` that [`start_serve`] writes beside
/// `config`, for failure messages; the one-per-firing `firing delivered`
/// lines are left out (they would fill the tail).
pub fn router_log_tail(config: &Path) -> String {
    let text = std::fs::read_to_string(config.with_file_name("router.log")).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("firing delivered"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A child process that is killed and reaped when dropped, so a failing test
/// never leaves a `signalbox serve` (or any other child) behind.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pids of this process's children whose command line contains
/// `needle` (e.g. `kafka-worker`: the Kafka worker processes of in-process
/// test routers), read from `/proc`.
pub fn child_pids(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let parent = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if parent == Some(me) && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Sends `signal` (a name for `kill -s`, e.g. `SEGV`) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -s {signal} {pid} failed");
    Ok(())
}
