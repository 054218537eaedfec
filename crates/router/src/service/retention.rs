//! The history retention task: every 10 minutes, instances, delivered firings,
//! answered waits and their lineage older than `history_retention` are
//! removed (dedup entries expire by their time alone and go with their
//! instances; history retention is at least the dedup retention).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::shared::Shared;

/// Compacts history until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(600);
    loop {
        // Dedup entries expire by their time alone and are deleted with their
        // instances (history retention, at least as long as the dedup one).
        let now = crate::clock::now_ms();
        let store = shared.store.clone();
        let keep = i64::try_from(shared.config.history_retention.as_millis()).unwrap_or(i64::MAX);
        match tokio::task::spawn_blocking(move || store.compact_history(now, keep)).await {
            Ok(Ok(c)) if c != signalbox_store::HistoryCompaction::default() => tracing::info!(
                signals = c.signals,
                firings = c.firings,
                waits = c.waits,
                offers = c.offers,
                "history past retention removed"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "history compaction failed"),
            Err(e) => tracing::warn!(error = %e, "history compaction task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
