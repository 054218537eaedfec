//! Starting and stopping the router: [`Router::start`] runs the start-up
//! steps of [`start`] in order, spawns the tasks, and [`Router::shutdown`]
//! stops them.
//!
//! Start order: store → plugins → catalog (from the store) → NATS (retrying
//! in the background if the server is down) → shared state and metrics →
//! waits and subscription files → ingest, admin and wait subscriptions →
//! tasks. Shutdown order: stop taking new messages (unsubscribe), finish the
//! batches already received, drain the outbox once, flush the client.
//! Nothing that was acknowledged is lost by a shutdown; firings still in the
//! outbox at exit go out on the next start.

mod error;
mod retention;
mod start;
mod subscription_files;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use signalbox_matcher::OperatorRegistry;
use signalbox_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::RouterConfig;
use crate::shared::Shared;

pub use error::StartError;
pub use subscription_files::read_subscription_files;

/// How long a graceful shutdown may take before the remaining tasks are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running router.
pub struct Router {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    http_addr: Option<std::net::SocketAddr>,
}

impl Router {
    /// Starts a router with this configuration and no custom operators.
    pub async fn start(config: RouterConfig) -> Result<Router, StartError> {
        Router::start_with(config, OperatorRegistry::default()).await
    }

    /// Starts a router with custom operators (see the module docs for the order).
    pub async fn start_with(
        config: RouterConfig,
        operators: OperatorRegistry,
    ) -> Result<Router, StartError> {
        config.validate()?;
        let store = start::open_store(&config)?;
        let mut operators = operators;
        let plugins = crate::plugins::load(&config, &store, &mut operators).await?;
        let catalog = start::load_catalog(&store, operators, &config)?;
        let file_subs = read_subscription_files(&config.subscriptions)?;
        let http = start::bind_http(&config).await?;
        let (client, nats_events) = start::connect_nats(&config).await?;
        // Peers first: a router that must not serve here writes nothing.
        start::check_peers(&config, &client).await?;
        let group = start::join_group(&config, &client).await?;
        let shared = start::shared_state(config, store, catalog, client, plugins, group)?;
        start::register_metrics(&shared, nats_events);
        let waiting = start::load_waits_and_files(&shared, file_subs).await?;
        let started = start::subscribe(&shared).await?;
        let (shutdown, rx) = watch::channel(false);
        let (tasks, http_addr) = start::spawn_tasks(&shared, started, http, rx).await?;
        tracing::info!(
            signals = %format!("{}.>", shared.config.subject_prefix),
            ingest = ?shared.config.ingest,
            group = ?shared.group.as_ref().map(|g| g.config.group.as_str()),
            admin = %format!("{}.>", shared.config.admin_prefix),
            store = %shared.config.store_path().display(),
            subscriptions = shared.catalog.len(),
            waiting,
            "signalbox router started"
        );
        Ok(Router {
            shared,
            shutdown,
            tasks,
            http_addr,
        })
    }

    /// The router's NATS client (for tests and embedding).
    pub fn client(&self) -> async_nats::Client {
        self.shared.client.clone()
    }

    /// The store (for tests and embedding).
    pub fn store(&self) -> Arc<Store> {
        self.shared.store.clone()
    }

    /// Where the HTTP admin API listens, when it is on.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    /// The live configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.shared.config
    }

    /// Stops taking messages, finishes in-flight work, drains the outbox, flushes.
    pub async fn shutdown(mut self) {
        tracing::info!("signalbox router shutting down");
        let _ = self.shutdown.send(true);
        // Bounded: with NATS gone, a last publish or flush could wait forever.
        // Work not finished by then is safe in the store and resumes on restart.
        let drain = async {
            while let Some(res) = self.tasks.join_next().await {
                if let Err(e) = res {
                    tracing::error!(error = %e, "router task failed");
                }
            }
            if let Err(e) = self.shared.client.flush().await {
                tracing::warn!(error = %e, "final flush failed");
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "shutdown grace period over; stopping with work left in the outbox (it resumes on restart)"
            );
            self.tasks.abort_all();
        }
        tracing::info!("signalbox router stopped");
    }
}
