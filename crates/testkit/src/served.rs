//! [`ServedRouter`]: `signalbox serve` as a real process on a temp
//! directory (its config file, subscription files, data directory and log),
//! for the cases that SIGKILL a router and start it again on the same data.
//!
//! Invariants: the directory outlives every process started on it (it goes
//! with the value); at most one process runs at a time; dropping the value
//! kills and reaps it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{KillOnDrop, router_log_tail, start_serve};

/// `signalbox serve` on a temp directory.
pub struct ServedRouter {
    bin: PathBuf,
    config: PathBuf,
    process: Option<KillOnDrop>,
    dir: tempfile::TempDir,
}

impl ServedRouter {
    /// Writes the config of a router connected to `nats_url` with its data
    /// in the temp directory, loading `subscriptions` (file name, YAML) from
    /// files there; `extra` is more TOML (top-level keys first, then tables).
    /// Nothing runs yet: see [`ServedRouter::start`]. `bin` is the
    /// `signalbox` binary (`env!("CARGO_BIN_EXE_signalbox")` in the CLI's tests).
    pub fn new(
        bin: &Path,
        nats_url: &str,
        subscriptions: &[(&str, &str)],
        extra: &str,
    ) -> Result<ServedRouter> {
        let dir = tempfile::tempdir().context("temp dir for signalbox serve")?;
        let subs = dir.path().join("subscriptions");
        std::fs::create_dir_all(&subs)?;
        for (name, yaml) in subscriptions {
            std::fs::write(subs.join(name), yaml)?;
        }
        let config = dir.path().join("signalbox.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\nsubscriptions = [{subs:?}]\n{extra}\n[nats]\nurls = [{nats_url:?}]\n",
                data = dir.path().join("data").display().to_string(),
                subs = subs.display().to_string(),
            ),
        )?;
        Ok(ServedRouter {
            bin: bin.to_path_buf(),
            config,
            process: None,
            dir,
        })
    }

    /// Starts the process (logs appended to `router.log`).
    pub fn start(&mut self) -> Result<()> {
        self.process = Some(start_serve(&self.bin, &self.config)?);
        Ok(())
    }

    /// SIGKILLs the process and reaps it (nothing flushed, nothing said).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut p) = self.process.take() {
            p.kill().context("SIGKILL signalbox serve")?;
            p.wait()?;
        }
        Ok(())
    }

    /// SIGKILL, then a new process on the same config and data.
    pub fn kill_and_restart(&mut self) -> Result<()> {
        self.kill()?;
        self.start()
    }

    /// The config file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        router_log_tail(&self.config)
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_file_name("router.log")).unwrap_or_default()
    }

    /// Opens the router's store (kill the router first: redb takes a lock).
    pub fn open_store(&self) -> Result<signalbox_store::Store> {
        signalbox_store::Store::open(
            &self.dir.path().join("data").join("signalbox.redb"),
            signalbox_store::StoreOptions::default(),
        )
        .context("opening the router's store")
    }
}
