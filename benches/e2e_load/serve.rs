//! `signalbox serve` as a process of its own, for the load tools that report
//! a router's CPU apart from the load generator's (its `/proc` figures are
//! then its own): the relay comparison of `e2e_load` and every row of
//! `group_load`.
//!
//! The config file, the data directory and the log (`router.log`, at
//! `RUST_LOG=warn`, so no per-signal log line costs the router anything) live
//! in the directory the caller gives. Invariants: [`Serve::start`] returns a
//! running process with its HTTP listener on a port of its own; dropping the
//! value kills and reaps the process (a bench never leaves a router behind).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signalbox_testkit::{KillOnDrop, free_port, http_request};

/// Starts `<bin> serve --config <config>`, its log appended to `router.log`
/// beside the config.
fn spawn(bin: &Path, config: &Path) -> Result<KillOnDrop> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("router.log"))?;
    let child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting signalbox serve")?;
    Ok(KillOnDrop(child))
}

/// One `signalbox serve` process.
pub struct Serve {
    process: Option<KillOnDrop>,
    config: PathBuf,
    /// Its HTTP listener (`/readyz`, `/metrics`, `/v1/admin/<verb>`).
    pub http: SocketAddr,
}

impl Serve {
    /// Writes `<dir>/signalbox.toml` from `config` (TOML without an `[http]`
    /// table: one listening on a free loopback port is added) and starts
    /// `<bin> serve` on it.
    pub fn start(bin: &Path, dir: &Path, config: &str) -> Result<Serve> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let path = dir.join("signalbox.toml");
        std::fs::write(
            &path,
            format!("{config}\n[http]\nlisten = \"127.0.0.1:{port}\"\n"),
        )
        .context("writing the router's config")?;
        Ok(Serve {
            process: Some(spawn(bin, &path)?),
            config: path,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.id())
    }

    /// Whether it runs (it was not killed here and has not exited).
    pub fn running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.try_wait(), Ok(None)))
    }

    /// SIGKILL and reap: a crash.
    pub fn kill(&mut self) {
        // Dropping the guard kills and reaps.
        self.process = None;
    }

    /// Starts it again on the same config and data (after [`Serve::kill`]).
    pub fn restart(&mut self, bin: &Path) -> Result<()> {
        if self.process.is_some() {
            return Ok(());
        }
        self.process = Some(spawn(bin, &self.config).context("restarting signalbox serve")?);
        Ok(())
    }

    /// Waits (at most `within`) until `GET /readyz` answers 200.
    pub async fn ready(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if !self.running() {
                bail!(
                    "signalbox serve exited at start; its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok((200, _)) = http_request(self.http, "GET", "/readyz", &[], "").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "signalbox serve was not ready within {within:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An admin verb over HTTP (`POST /v1/admin/<verb>`), its JSON answer.
    pub async fn admin(&self, verb: &str, body: &str) -> Result<serde_json::Value> {
        let (status, text) =
            http_request(self.http, "POST", &format!("/v1/admin/{verb}"), &[], body).await?;
        serde_json::from_str(&text).with_context(|| format!("{verb}: {status} {text}"))
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> Result<String> {
        let (status, text) = http_request(self.http, "GET", "/metrics", &[], "").await?;
        if status != 200 {
            bail!("/metrics: {status} {text}");
        }
        Ok(text)
    }

    /// The last 30 lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.config.with_file_name("router.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}
