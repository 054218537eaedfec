//! The outbox drainer: publishes committed firings and marks them delivered.
//!
//! Each firing is published with header `Nats-Msg-Id: <firing id>`. When a
//! JetStream stream captures the target subject (asked of the server with
//! `STREAM.NAMES` by subject, cached for 30 s), the publish waits for the
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
use async_nats::jetstream::context::{GetStreamByNameErrorKind, PublishErrorKind};
use signalbox_model::{ActionKind, Firing};
use tracing::Instrument;

use crate::ingest::MSG_ID_HEADER;
use crate::shared::Shared;

/// How many firings one drain pass takes from the outbox.
const DRAIN_BATCH: usize = 256;
/// How long the answer to "does a JetStream stream capture this subject?" is kept.
const ROUTE_TTL: Duration = Duration::from_secs(30);

/// Runs until `shutdown` fires, then drains once more and returns.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let js = async_nats::jetstream::new(shared.client.clone());
    let mut routes: HashMap<String, (Route, Instant)> = HashMap::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = drain_once(&shared, &js, &mut routes).await;
        let wait = match outcome {
            DrainOutcome::More => Duration::ZERO,
            DrainOutcome::Empty => {
                backoff = Duration::from_millis(100);
                // Idle: make lazy delivery marks durable once they are a
                // second old (under load, the next ingest commit does it).
                sync_lazy(&shared, Duration::from_secs(1)).await;
                Duration::from_secs(1)
            }
            DrainOutcome::Failed => {
                backoff = (backoff * 2).min(Duration::from_secs(10));
                backoff
            }
        };
        if *shutdown.borrow() {
            sync_lazy(&shared, Duration::ZERO).await;
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
                drain_once(&shared, &js, &mut routes).await;
                sync_lazy(&shared, Duration::ZERO).await;
                return;
            }
        }
    }
}

/// Makes the store's lazy delivery marks durable (see the store's docs).
async fn sync_lazy(shared: &Arc<Shared>, min_age: Duration) {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || store.sync_lazy(min_age)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot make delivery marks durable; retried when idle")
        }
        Err(e) => tracing::error!(error = %e, "the store sync task failed"),
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
    routes: &mut HashMap<String, (Route, Instant)>,
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
    // Send everything first, then wait for the JetStream acks: many in flight.
    let mut in_flight = Vec::new();
    let mut core_count = 0u64;
    // Each firing's `publish` span lasts until its ack (JetStream) or the flush (core).
    let mut core_spans = Vec::new();
    let mut core_created = Vec::new();
    for firing in &pending {
        let span = crate::telemetry::publish_span(firing);
        // When spans are exported the consumer's parent is this publish span;
        // otherwise the stored trace context goes on as it came.
        let traceparent = crate::telemetry::traceparent_of(&span);
        let sent = send(shared, js, routes, firing, traceparent.as_deref())
            .instrument(span.clone())
            .await;
        match sent {
            Ok(Sent::JetStream(ack)) => in_flight.push((firing, ack, span)),
            Ok(Sent::Core) => {
                core_used = true;
                core_count += 1;
                core_created.push(firing.created_at_ms);
                delivered.push(firing.firing_id.clone());
                core_spans.push(span);
            }
            Err(e) => {
                crate::telemetry::record_error(&span, &e);
                publish_failed(shared, firing, &e).instrument(span).await;
                failed = true;
                break;
            }
        }
    }
    // Await the acks together: a PublishAckFuture's timeout starts when it is
    // awaited, so awaiting them one by one would cost one full timeout per
    // lost ack (after a NATS restart a whole batch of acks is lost at once).
    let acked = futures::future::join_all(
        in_flight
            .into_iter()
            .map(|(firing, ack, span)| async move { (firing, ack.await, span) }),
    )
    .await;
    for (firing, ack, span) in acked {
        match ack {
            Ok(_) => {
                shared
                    .metrics
                    .add(&shared.metrics.firings_published_jetstream, 1);
                shared.metrics.observe_firing(
                    (crate::clock::now_ms() - firing.created_at_ms) as f64 / 1000.0,
                );
                delivered.push(firing.firing_id.clone());
            }
            Err(e) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    routes.remove(&firing.subject);
                }
                let e = PublishFailure::JetStream(e.to_string());
                crate::telemetry::record_error(&span, &e);
                publish_failed(shared, firing, &e).instrument(span).await;
                failed = true;
            }
        }
    }
    if core_used && let Err(e) = shared.client.flush().await {
        tracing::warn!(error = %e, "flush failed; core NATS firings will be published again");
        for span in &core_spans {
            crate::telemetry::record_error(span, &e);
        }
        return DrainOutcome::Failed;
    }
    drop(core_spans);
    shared
        .metrics
        .add(&shared.metrics.firings_published_core, core_count);
    let flushed = crate::clock::now_ms();
    for created in core_created {
        shared
            .metrics
            .observe_firing((flushed - created) as f64 / 1000.0);
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

/// How a subject's firings are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// A stream captures the subject: publish and wait for its ack.
    JetStream,
    /// No stream: publish on core NATS and flush.
    Core,
}

#[derive(Debug, thiserror::Error)]
enum PublishFailure {
    #[error("JetStream publish failed: {0}")]
    JetStream(String),
    #[error("core NATS publish failed: {0}")]
    Core(String),
}

/// A firing handed to NATS: a JetStream publish whose ack is still to come, or a
/// core publish that the next flush completes.
enum Sent {
    JetStream(async_nats::jetstream::context::PublishAckFuture),
    Core,
}

async fn send(
    shared: &Shared,
    js: &async_nats::jetstream::Context,
    routes: &mut HashMap<String, (Route, Instant)>,
    firing: &Firing,
    traceparent: Option<&str>,
) -> Result<Sent, PublishFailure> {
    let headers = firing_headers(firing, traceparent.or(firing.traceparent.as_deref()));
    let body = bytes::Bytes::from(firing.message_bytes());
    match resolve_route(js, routes, &firing.subject).await {
        Route::JetStream => js
            .publish_with_headers(firing.subject.clone(), headers, body)
            .await
            .map(Sent::JetStream)
            .map_err(|e| PublishFailure::JetStream(e.to_string())),
        Route::Core => {
            shared
                .client
                .publish_with_headers(firing.subject.clone(), headers, body)
                .await
                .map_err(|e| PublishFailure::Core(e.to_string()))?;
            Ok(Sent::Core)
        }
    }
}

/// Logs a failed publish and, unless NATS is unreachable (the outage is not the
/// firing's fault), counts it towards dead-lettering.
async fn publish_failed(shared: &Arc<Shared>, firing: &Firing, e: &PublishFailure) {
    shared.metrics.add(&shared.metrics.firing_failures, 1);
    tracing::warn!(firing = %firing.firing_id, subject = %firing.subject, error = %e, "firing not published; will retry");
    if shared.client.connection_state() == async_nats::connection::State::Connected {
        give_up_if_exhausted(shared, firing, &e.to_string()).await;
    }
}

/// Whether a JetStream stream captures `subject` (asked of the server, cached for
/// [`ROUTE_TTL`]). Without JetStream, or when the server cannot say, core NATS.
async fn resolve_route(
    js: &async_nats::jetstream::Context,
    routes: &mut HashMap<String, (Route, Instant)>,
    subject: &str,
) -> Route {
    if let Some((route, since)) = routes.get(subject)
        && since.elapsed() < ROUTE_TTL
    {
        return *route;
    }
    match js.stream_by_subject(subject).await {
        Ok(stream) => {
            tracing::debug!(%subject, %stream, "firings go to a JetStream stream");
            routes.insert(subject.to_string(), (Route::JetStream, Instant::now()));
            Route::JetStream
        }
        Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound => {
            routes.insert(subject.to_string(), (Route::Core, Instant::now()));
            Route::Core
        }
        Err(e) => {
            // JetStream disabled or not answering: core NATS this time, ask again next time.
            tracing::debug!(%subject, error = %e, "cannot look up a stream; publishing on core NATS");
            Route::Core
        }
    }
}

/// Counts a failed attempt; after `firing_max_attempts` publishes the firing to
/// the dead-letter subject with the reason and takes it out of the outbox.
async fn give_up_if_exhausted(shared: &Arc<Shared>, firing: &Firing, error: &str) {
    let store = shared.store.clone();
    let id = firing.firing_id.clone();
    let err = error.to_string();
    let record = match tokio::task::spawn_blocking(move || store.record_failure(&id, &err)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot count the failed attempt");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "failure bookkeeping task failed");
            return;
        }
    };
    if record.attempts < shared.config.firing_max_attempts {
        return;
    }
    let mut headers = firing_headers(firing, firing.traceparent.as_deref());
    headers.insert("Signalbox-Error", error);
    headers.insert("Signalbox-Target", firing.subject.as_str());
    headers.insert("Signalbox-Attempts", record.attempts.to_string().as_str());
    let published = shared
        .client
        .publish_with_headers(
            shared.config.dead_letter_subject.clone(),
            headers,
            firing.message_bytes().into(),
        )
        .await;
    if let Err(e) = published {
        tracing::warn!(error = %e, "cannot publish to the dead-letter subject; the firing stays pending");
        return;
    }
    if shared.client.flush().await.is_err() {
        return;
    }
    let store = shared.store.clone();
    let ids = vec![firing.firing_id.clone()];
    let now = crate::clock::now_ms();
    match tokio::task::spawn_blocking(move || store.mark_dead_lettered(&ids, now)).await {
        Ok(Ok(())) => {
            shared.metrics.add(&shared.metrics.firings_dead_lettered, 1);
            tracing::error!(
            firing = %firing.firing_id,
            subject = %firing.subject,
            attempts = record.attempts,
            reason = %error,
            dead_letter = %shared.config.dead_letter_subject,
            "firing given up and dead-lettered"
            )
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot mark the firing dead-lettered"),
        Err(e) => tracing::warn!(error = %e, "dead-letter bookkeeping task failed"),
    }
}

/// Headers of a firing message; `traceparent` is the trace context it carries
/// (the firing's own, or its publish span's when spans are exported).
fn firing_headers(firing: &Firing, traceparent: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID_HEADER, firing.firing_id.as_str());
    headers.insert("Signalbox-Subscription", firing.subscription.as_str());
    if let Some(tp) = traceparent {
        headers.insert(Firing::TRACEPARENT, tp);
    }
    headers.insert(
        "Signalbox-Action",
        match firing.action {
            ActionKind::Publish => "publish",
            ActionKind::Trigger => "trigger",
        },
    );
    headers
}
