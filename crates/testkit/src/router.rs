//! [`TestRouter`]: an in-process router on a temp data directory (a real redb
//! file) connected to a [`TestNats`]; [`TestRouter::restart`] stops it
//! gracefully and starts a new one on the same data directory.
//!
//! Invariant: between calls the router runs (only [`TestRouter::shutdown`],
//! which consumes the value, leaves it stopped); the temp directory lives as
//! long as the value.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use signalbox_router::{Router, RouterConfig};

use crate::{TestNats, admin, signalbox_binary};

/// A router on a temp data directory, connected to a test server.
pub struct TestRouter {
    router: Option<Router>,
    config: RouterConfig,
    _dir: Option<tempfile::TempDir>,
}

impl TestRouter {
    /// The configuration a test router uses: the server's URL, a data directory,
    /// everything else default.
    pub fn config(nats_url: &str, data_dir: &Path) -> RouterConfig {
        let mut cfg = RouterConfig::default();
        cfg.nats.urls = vec![nats_url.to_string()];
        cfg.data_dir = data_dir.to_path_buf();
        cfg
    }

    /// Starts a router with default settings on a fresh temp data directory.
    pub async fn start(nats: &TestNats) -> Result<TestRouter> {
        TestRouter::start_configured(nats, |_| {}).await
    }

    /// Starts a router on a fresh temp data directory with the default test
    /// configuration changed by `tweak` (HTTP on, a token, limits …).
    pub async fn start_configured(
        nats: &TestNats,
        tweak: impl FnOnce(&mut RouterConfig),
    ) -> Result<TestRouter> {
        let dir = tempfile::tempdir().context("temp data dir")?;
        let mut config = TestRouter::config(&nats.url(), dir.path());
        tweak(&mut config);
        let mut r = TestRouter::start_with(config).await?;
        r._dir = Some(dir);
        Ok(r)
    }

    /// Starts a router with the given configuration. Kafka sources run in
    /// worker processes of the `signalbox` binary ([`signalbox_binary`]),
    /// as they do in production, unless `sources.kafka_worker` is set.
    pub async fn start_with(mut config: RouterConfig) -> Result<TestRouter> {
        if !config.sources.kafka.is_empty() && config.sources.kafka_worker.is_none() {
            config.sources.kafka_worker = Some(signalbox_binary()?);
        }
        let router = Router::start(config.clone())
            .await
            .context("starting the router")?;
        Ok(TestRouter {
            router: Some(router),
            config,
            _dir: None,
        })
    }

    /// The router's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The running router.
    pub fn router(&self) -> &Router {
        self.router
            .as_ref()
            .unwrap_or_else(|| unreachable!("the router is always running between calls"))
    }

    /// The address of the router's HTTP listener (configured with
    /// `http.listen`), or an error saying it has none.
    pub fn http_addr(&self) -> Result<std::net::SocketAddr> {
        self.router()
            .http_addr()
            .context("the test router has no HTTP listener")
    }

    /// Stops the router gracefully and starts a new one on the same data directory.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(r) = self.router.take() {
            r.shutdown().await;
        }
        self.router = Some(
            Router::start(self.config.clone())
                .await
                .context("restarting the router")?,
        );
        Ok(())
    }

    /// Stops the router gracefully.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.router.take() {
            r.shutdown().await;
        }
    }

    /// Adds a subscription (YAML or JSON) through the admin API; returns the reply.
    pub async fn add_subscription(
        &self,
        client: &async_nats::Client,
        doc: &str,
    ) -> Result<serde_json::Value> {
        let reply = admin(client, &self.config.admin_prefix, "sub.add", doc).await?;
        if reply.get("error").is_some() {
            bail!("sub.add failed: {reply}");
        }
        Ok(reply)
    }

    /// Adds the subscription `doc`, whose firings go to `subject`, and
    /// subscribes to them (flushed: no firing can be missed after this).
    pub async fn watch(
        &self,
        client: &async_nats::Client,
        doc: &str,
        subject: &str,
    ) -> Result<async_nats::Subscriber> {
        self.add_subscription(client, doc).await?;
        let sub = client.subscribe(subject.to_string()).await?;
        client.flush().await?;
        Ok(sub)
    }

    /// `GET path` on the router's HTTP listener: the status and the body.
    pub async fn http_get(&self, path: &str) -> Result<(u16, String)> {
        crate::http_request(self.http_addr()?, "GET", path, &[], "").await
    }

    /// The router's `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (status, body) = self.http_get("/metrics").await?;
        anyhow::ensure!(status == 200, "GET /metrics: {status} {body}");
        Ok(body)
    }

    /// The subject prefix signals are published under.
    pub fn subject_prefix(&self) -> &str {
        &self.config.subject_prefix
    }

    /// The admin subject prefix.
    pub fn admin_prefix(&self) -> &str {
        &self.config.admin_prefix
    }
}
