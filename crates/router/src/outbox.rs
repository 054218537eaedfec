//! The outbox drainer: publishes committed firings and marks them delivered.
//!
//! Each firing is published with header `Nats-Msg-Id: <firing id>`. When a
//! JetStream stream captures the target subject, the publish waits for the
//! stream's ack and JetStream's duplicate window turns a re-publish after a crash
//! into a no-op: exactly once at the target. When no stream captures it, the
//! firing is published on core NATS and flushed: at least once, and a receiver
//! can deduplicate by the header. A firing stays in the outbox until it was
//! published; after a failure the drainer backs off and tries again, so a NATS
//! outage delays firings but never loses them.
//!
//! Invariant: a firing is marked delivered only after its publish was
//! acknowledged (JetStream) or flushed (core NATS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use signalbox_model::{ActionKind, Firing};

use crate::ingest::MSG_ID_HEADER;
use crate::shared::Shared;

/// How many firings one drain pass takes from the outbox.
const DRAIN_BATCH: usize = 256;
/// How long a subject found to have no JetStream stream is published on core NATS
/// before JetStream is tried again.
const CORE_SUBJECT_TTL: Duration = Duration::from_secs(30);

/// Runs until `shutdown` fires, then drains once more and returns.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let js = async_nats::jetstream::new(shared.client.clone());
    let mut core_subjects: HashMap<String, Instant> = HashMap::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = drain_once(&shared, &js, &mut core_subjects).await;
        let wait = match outcome {
            DrainOutcome::More => Duration::ZERO,
            DrainOutcome::Empty => {
                backoff = Duration::from_millis(100);
                Duration::from_secs(1)
            }
            DrainOutcome::Failed => {
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        if *shutdown.borrow() {
            return;
        }
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shared.outbox_wake.notified(), if matches!(outcome, DrainOutcome::Empty) => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {
                // One last pass so that work committed before shutdown goes out.
                drain_once(&shared, &js, &mut core_subjects).await;
                return;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrainOutcome {
    /// A full batch went out; there may be more.
    More,
    /// The outbox is empty (or was, once this pass finished).
    Empty,
    /// Something failed; back off.
    Failed,
}

async fn drain_once(
    shared: &Arc<Shared>,
    js: &async_nats::jetstream::Context,
    core_subjects: &mut HashMap<String, Instant>,
) -> DrainOutcome {
    let store = shared.store.clone();
    let pending = match tokio::task::spawn_blocking(move || store.pending(DRAIN_BATCH)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the outbox");
            return DrainOutcome::Failed;
        }
        Err(e) => {
            tracing::error!(error = %e, "outbox reader failed");
            return DrainOutcome::Failed;
        }
    };
    if pending.is_empty() {
        return DrainOutcome::Empty;
    }
    let full = pending.len() == DRAIN_BATCH;
    let mut delivered = Vec::with_capacity(pending.len());
    let mut failed = false;
    let mut core_used = false;
    for firing in &pending {
        match publish(shared, js, core_subjects, firing).await {
            Ok(Route::JetStream) => delivered.push(firing.firing_id.clone()),
            Ok(Route::Core) => {
                core_used = true;
                delivered.push(firing.firing_id.clone());
            }
            Err(e) => {
                tracing::warn!(firing = %firing.firing_id, subject = %firing.subject, error = %e, "firing not published; will retry");
                failed = true;
                break;
            }
        }
    }
    if core_used && let Err(e) = shared.client.flush().await {
        tracing::warn!(error = %e, "flush failed; core NATS firings will be published again");
        return DrainOutcome::Failed;
    }
    if !delivered.is_empty() {
        let store = shared.store.clone();
        let now = crate::clock::now_ms();
        let ids = delivered.clone();
        match tokio::task::spawn_blocking(move || store.mark_delivered(&ids, now)).await {
            Ok(Ok(())) => {
                for id in &delivered {
                    tracing::info!(firing = %id, "firing delivered");
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot mark firings delivered; they will be published again (same Nats-Msg-Id)");
                return DrainOutcome::Failed;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox writer failed");
                return DrainOutcome::Failed;
            }
        }
    }
    if failed {
        DrainOutcome::Failed
    } else if full {
        DrainOutcome::More
    } else {
        DrainOutcome::Empty
    }
}

enum Route {
    JetStream,
    Core,
}

#[derive(Debug, thiserror::Error)]
enum PublishFailure {
    #[error("JetStream publish failed: {0}")]
    JetStream(String),
    #[error("core NATS publish failed: {0}")]
    Core(String),
}

async fn publish(
    shared: &Shared,
    js: &async_nats::jetstream::Context,
    core_subjects: &mut HashMap<String, Instant>,
    firing: &Firing,
) -> Result<Route, PublishFailure> {
    let headers = firing_headers(firing);
    let body = bytes::Bytes::from(firing.message_bytes());
    let use_core = core_subjects
        .get(&firing.subject)
        .is_some_and(|since| since.elapsed() < CORE_SUBJECT_TTL);
    if !use_core {
        let ack = js
            .publish_with_headers(firing.subject.clone(), headers.clone(), body.clone())
            .await;
        let result = match ack {
            Ok(future) => future.await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => return Ok(Route::JetStream),
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                core_subjects.insert(firing.subject.clone(), Instant::now());
            }
            Err(e) => return Err(PublishFailure::JetStream(e.to_string())),
        }
    }
    shared
        .client
        .publish_with_headers(firing.subject.clone(), headers, body)
        .await
        .map_err(|e| PublishFailure::Core(e.to_string()))?;
    Ok(Route::Core)
}

/// Headers of a firing message.
fn firing_headers(firing: &Firing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, firing.firing_id.as_str());
    headers.insert("Signalbox-Subscription", firing.subscription.as_str());
    headers.insert(
        "Signalbox-Action",
        match firing.action {
            ActionKind::Publish => "publish",
            ActionKind::Trigger => "trigger",
        },
    );
    headers
}
