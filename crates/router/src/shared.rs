//! The state every router task shares: configuration, store, catalog, the
//! commit thread, the NATS client, metrics, the live plugins and the outbox
//! wake-ups. Built once by [`crate::Router::start`]; the tasks hold it in an
//! `Arc` and never mutate it except through the store, the catalog and the
//! plugin set, which are safe for concurrent use.
//!
//! It sits above the pipeline (it holds the catalog and the commit thread)
//! and below every task that uses it (sources, delivery, api, service). It
//! names no particular source: a source's own state (SNS certificates, Kafka
//! lag) lives with that source's task or routes.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::RouterConfig;
use crate::pipeline::catalog::Catalog;

/// State shared by the ingest, outbox and admin tasks.
pub(crate) struct Shared {
    pub config: RouterConfig,
    pub store: Arc<signalbox_store::Store>,
    pub catalog: Arc<Catalog>,
    /// The commit thread: every ingest transaction runs there.
    pub committer: crate::pipeline::committer::Committer,
    pub client: async_nats::Client,
    /// Wakes the outbox for firings written outside the commit thread (wait
    /// answers, replay); ingest commits wake it through `handoff`.
    pub outbox_wake: Notify,
    /// Firings the commit thread committed, for the drainer to take without
    /// reading the store (a shortcut; the store stays the source of truth).
    pub handoff: Arc<crate::pipeline::handoff::Handoff>,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The live plugins: operators and source adapters, swapped by deploys.
    pub plugins: crate::plugins::LivePlugins,
}

impl Shared {
    /// Stores a batch of decoded signals in one store transaction and returns
    /// one acknowledgement per signal (`crate::pipeline::ingest::commit`).
    pub(crate) async fn commit(
        &self,
        batch: Vec<signalbox_store::Incoming>,
    ) -> Result<Vec<signalbox_model::Ack>, signalbox_model::ErrorReply> {
        crate::pipeline::ingest::commit(&self.committer, &self.metrics, batch).await
    }
}
