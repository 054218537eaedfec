//! The state every router task shares: configuration, store, catalog, the NATS
//! client and the outbox wake-up. Built once by [`crate::Router::start`]; the
//! tasks hold it in an `Arc` and never mutate it except through the store and the
//! catalog, which are safe for concurrent use.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::config::RouterConfig;

/// State shared by the ingest, outbox and admin tasks.
pub(crate) struct Shared {
    pub config: RouterConfig,
    pub store: Arc<signalbox_store::Store>,
    pub catalog: Arc<Catalog>,
    /// The commit thread: every ingest transaction runs there.
    pub committer: crate::committer::Committer,
    pub client: async_nats::Client,
    /// Wakes the outbox for firings written outside the commit thread (wait
    /// answers, replay); ingest commits wake it through `handoff`.
    pub outbox_wake: Notify,
    /// Firings the commit thread committed, for the drainer to take without
    /// reading the store (a shortcut; the store stays the source of truth).
    pub handoff: Arc<crate::handoff::Handoff>,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The live plugins: operators and source adapters, swapped by deploys.
    pub plugins: crate::plugins::LivePlugins,
    /// The SNS endpoints (`[[sources.sns]]`): sources, certificate cache, HTTPS client.
    pub sns: crate::sns::SnsState,
    /// Consumer lag of the Kafka sources, for `/metrics`.
    pub kafka_lag: Arc<crate::kafka::LagGauges>,
}
