//! Core-NATS ingest: a queue subscription on `<subject_prefix>.>` (group
//! `queue_group`, so several routers of one group share the load). A request
//! gets signalbox's acknowledgement after the commit; a plain publish is
//! stored all the same, but is lost if no router is subscribed (core NATS
//! keeps nothing). Batches are what the client has buffered, up to
//! `batch_size`; at shutdown the subscription is dropped first and what was
//! already buffered is still stored.

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::message::{InFlight, Inbound, new_batch, process_batch, submit_batch};
use crate::shared::Shared;

/// Takes batches from `sub` until shutdown, then finishes what was buffered.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch_size = shared.config.batch_size;
    let mut in_flight = InFlight::new(shared.clone());
    loop {
        let first = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else {
            break;
        };
        let mut batch = new_batch(Inbound::Core(first), batch_size);
        while batch.len() < batch_size {
            match sub.next().now_or_never() {
                Some(Some(m)) => batch.push(Inbound::Core(m)),
                _ => break,
            }
        }
        if let Some(pending) = submit_batch(&shared, batch).await {
            in_flight.push(pending).await;
        }
    }
    in_flight.finish().await;
    // Stop new deliveries, then finish what the client already buffered.
    if let Err(e) = sub.unsubscribe().await {
        tracing::warn!(error = %e, "unsubscribe failed during shutdown");
    }
    let mut rest = Vec::new();
    while let Some(Some(m)) = sub.next().now_or_never() {
        rest.push(Inbound::Core(m));
    }
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(batch_size));
        process_batch(&shared, rest).await;
        rest = tail;
    }
}
