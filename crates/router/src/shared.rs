//! The state every router task shares: configuration, the router's store,
//! the catalog, the NATS client, metrics, the live plugins, the partitions
//! this router works, and, in group mode, its group. Built once by
//! [`crate::Router::start`]; the tasks hold it in an `Arc` and never mutate
//! it except through the store, the catalog, the plugin set and the partition
//! set, which are safe for concurrent use.
//!
//! It sits above the pipeline and the group protocol (it holds the catalog,
//! the partitions and the group) and below every task that uses it (sources,
//! delivery, ownership, api, service). It names no particular source: a
//! source's own state (SNS certificates, Kafka lag) lives with that source's
//! task or routes.

use std::sync::Arc;

use signalbox_model::{Ack, ErrorReply};
use signalbox_store::Incoming;

use crate::config::RouterConfig;
use crate::group::Group;
use crate::pipeline::catalog::Catalog;
use crate::pipeline::partition::{Partition, Partitions};

/// State shared by the ingest, outbox and admin tasks.
pub(crate) struct Shared {
    pub config: RouterConfig,
    /// The router's own store. Alone, it holds everything (it is partition
    /// 0's store); in a group it holds this router's plugin deploys only, and
    /// the signals' state lives in the partition stores.
    pub store: Arc<signalbox_store::Store>,
    pub catalog: Arc<Catalog>,
    pub client: async_nats::Client,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The live plugins: operators and source adapters, swapped by deploys.
    pub plugins: crate::plugins::LivePlugins,
    /// The partitions worked here: partition 0 alone, the owned ones in a group.
    pub partitions: Arc<Partitions>,
    /// The group, in group mode.
    pub group: Option<Arc<Group>>,
}

impl Shared {
    /// The router's one partition when it runs alone; `None` in a group.
    pub(crate) fn home(&self) -> Option<Arc<Partition>> {
        match self.group {
            None => self.partitions.get(0),
            Some(_) => None,
        }
    }

    /// Stores a batch of decoded signals and returns one acknowledgement per
    /// signal: alone, in one transaction of its partition
    /// (`crate::pipeline::ingest::commit`); in a group, through the front
    /// door, answered by each signal's partition owner after its commit.
    pub(crate) async fn commit(&self, batch: Vec<Incoming>) -> Result<Vec<Ack>, ErrorReply> {
        if let Some(group) = &self.group {
            return group.front.put_and_wait(&batch).await;
        }
        match self.partitions.get(0) {
            Some(home) => {
                crate::pipeline::ingest::commit(&home.committer, &self.metrics, batch).await
            }
            None => Err(ErrorReply::unavailable("the router is not ready")),
        }
    }
}
