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
//! Two stages, so that waiting for acks and for the store's write lock does
//! not stall publishing: the drainer reads the outbox past a cursor (the last
//! `firing_seq` it handed to NATS) and publishes pass after pass — taking the
//! firings right after the cursor from the commit thread's in-memory
//! [`crate::handoff`] when they are all there, from the store otherwise; a settling
//! task awaits each pass's acks in order and marks the delivered firings of
//! every pass queued meanwhile in one store transaction, awaiting their acks
//! together. JetStream publishes carry a reply subject of the drainer's own
//! ack inbox, which the settling task reads ([`super::acks`]). At most
//! `2 × PASSES_IN_FLIGHT + 1` passes are in flight.
//!
//! Invariants: a firing is marked delivered only after its publish was
//! acknowledged (JetStream) or flushed (core NATS); after any failure the
//! drainer lets the passes in flight settle and reads the outbox from its
//! start again, so a firing that failed is published again and none is
//! published twice while its first publish is in flight. The cursor stays
//! when the drainer catches up (every firing up to it is settled, and firing
//! seqs only grow), so firings committed next come from the handoff; after
//! a whole wait without new firings it reads the outbox from its start too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::GetStreamByNameErrorKind;
use async_nats::{HeaderMap, HeaderName};
use signalbox_model::{ActionKind, Firing};
use signalbox_store::NewFiring;
use tracing::Instrument;

use super::acks;
use crate::nats::MSG_ID_HEADER;
use crate::pipeline::partition::Partition;
use crate::shared::Shared;

/// What the drainer and its settling task work with: the router's shared
/// state and the one partition whose outbox they drain (reads through to
/// `Shared`, so `ctx.metrics` is the router's).
struct Ctx {
    shared: Arc<Shared>,
    part: Arc<Partition>,
}

impl std::ops::Deref for Ctx {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// How many firings one pass reads from the outbox.
const DRAIN_BATCH: usize = 256;
/// How many passes may queue for the settling task while it settles the
/// ones it took: with those (at most as many) and the pass being published,
/// at most 17 × 256 firings are in flight, so as many acks are awaited at
/// once at most.
const PASSES_IN_FLIGHT: usize = 8;
/// How long the answer to "does a JetStream stream capture this subject?" is kept.
const ROUTE_TTL: Duration = Duration::from_secs(30);

/// Runs until `shutdown` fires, then drains once more and returns.
pub(crate) async fn run(
    shared: Arc<Shared>,
    part: Arc<Partition>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let shared = Arc::new(Ctx { shared, part });
    let failed = Arc::new(AtomicBool::new(false));
    let Some((passes, settler, inbox)) = spawn_settler(&shared, &failed, &mut shutdown).await
    else {
        return;
    };
    let mut drainer = Drainer {
        js: async_nats::jetstream::new(shared.client.clone()),
        shared,
        routes: HashMap::new(),
        cursor: None,
        passes,
        settler,
        inbox,
        failed,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        // How long to wait before the next pass, and whether new firings end
        // the wait early (not while backing off).
        let wait = if drainer.failed.load(Ordering::Acquire) {
            // Let every pass in flight settle, then read the outbox from its
            // start again: what failed is still there. Subjects are looked up
            // again too, in case a stream went away.
            drainer.settle_all().await;
            if !drainer.respawn_settler_if_dead(&mut shutdown).await {
                break;
            }
            drainer.failed.store(false, Ordering::Release);
            drainer.cursor = None;
            drainer.routes.clear();
            backoff = (backoff * 2).min(Duration::from_secs(10));
            Some((backoff, false))
        } else {
            match drainer.pass().await {
                Read::Full | Read::Failed => None,
                // More may come: read again when ingest commits firings.
                Read::Some => Some((Duration::from_secs(1), true)),
                Read::Empty => {
                    drainer.settle_all().await;
                    if drainer.failed.load(Ordering::Acquire) {
                        None
                    } else {
                        backoff = Duration::from_millis(100);
                        // Everything up to the cursor is settled: firings
                        // committed next come after it, from the handoff.
                        // Idle: make lazy delivery marks durable once they are
                        // a second old (under load, the next ingest commit does it).
                        sync_lazy(&drainer.shared, Duration::from_secs(1)).await;
                        Some((Duration::from_secs(1), true))
                    }
                }
            }
        };
        if *shutdown.borrow() {
            break;
        }
        let Some((wait, wake_early)) = wait else {
            continue;
        };
        tokio::select! {
            _ = drainer.shared.part.outbox_wake.notified(), if wake_early => {}
            _ = drainer.shared.part.handoff.pushed(), if wake_early => {}
            _ = tokio::time::sleep(wait) => {
                // A whole wait without new firings: the next pass reads the
                // outbox from its start, as after a failure.
                drainer.cursor = None;
            }
            _ = shutdown.changed() => break,
        }
    }
    // One last pass, so that work committed just before shutdown goes out
    // (what is left stays in the outbox for the next start).
    if !drainer.failed.load(Ordering::Acquire) {
        drainer.pass().await;
    }
    drainer.settle_all().await;
    let Drainer {
        shared,
        passes,
        mut settler,
        ..
    } = drainer;
    drop(passes);
    if let Err(e) = (&mut settler.0).await {
        tracing::error!(error = %e, "the outbox settling task failed");
    }
    sync_lazy(&shared, Duration::ZERO).await;
}

/// The settling task; aborted when dropped, so that it ends with the outbox
/// task even when the service aborts that at the end of its shutdown grace.
struct Settler(tokio::task::JoinHandle<()>);

impl Drop for Settler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts a settling task on a new ack inbox and returns the queue that
/// feeds it and the inbox to publish with; `None` when shutdown came first
/// (subscribing fails only while the client is closing: retried with backoff).
async fn spawn_settler(
    shared: &Arc<Ctx>,
    failed: &Arc<AtomicBool>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(tokio::sync::mpsc::Sender<Settle>, Settler, acks::AckInbox)> {
    let mut backoff = Duration::from_millis(100);
    let (inbox, replies) = loop {
        match acks::open(&shared.client).await {
            Ok(opened) => break opened,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to the outbox's ack inbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return None,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    let (passes, to_settle) = tokio::sync::mpsc::channel(PASSES_IN_FLIGHT);
    let task = tokio::spawn(settle_passes(
        shared.clone(),
        to_settle,
        replies,
        failed.clone(),
    ));
    Some((passes, Settler(task), inbox))
}

/// Makes the store's lazy delivery marks durable (see the store's docs).
async fn sync_lazy(shared: &Arc<Ctx>, min_age: Duration) {
    let store = shared.part.store.clone();
    match tokio::task::spawn_blocking(move || store.sync_lazy(min_age)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot make delivery marks durable; retried when idle")
        }
        Err(e) => tracing::error!(error = %e, "the store sync task failed"),
    }
}

/// What one read of the outbox found (its firings were handed to NATS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// A full batch: there may be more right away.
    Full,
    /// Fewer than a batch.
    Some,
    /// Nothing past the cursor.
    Empty,
    /// The read or a publish failed (the `failed` flag is set).
    Failed,
}

/// Reads the outbox and publishes, pass after pass, while earlier passes wait
/// for their acks in [`settle_passes`].
///
/// Invariant: `cursor` is the greatest `firing_seq` handed to NATS since the
/// outbox was last read from its start; every firing at or before it is
/// delivered, in flight, or failed — and a failure sets `failed`, which makes
/// the drainer wait for the passes in flight and read from the start again.
struct Drainer {
    shared: Arc<Ctx>,
    js: async_nats::jetstream::Context,
    routes: HashMap<String, (Route, Instant)>,
    cursor: Option<u64>,
    passes: tokio::sync::mpsc::Sender<Settle>,
    settler: Settler,
    /// The reply subjects of JetStream publishes, read by the settling task.
    inbox: acks::AckInbox,
    failed: Arc<AtomicBool>,
}

impl Drainer {
    /// Takes up to a batch past the cursor (from the handoff, else from the
    /// store) and publishes it.
    async fn pass(&mut self) -> Read {
        let handed = match self.cursor {
            Some(cursor) => self.shared.part.handoff.take_after(cursor, DRAIN_BATCH),
            None => Vec::new(),
        };
        if !handed.is_empty() {
            // More may be queued past a gap (a firing the store has and the
            // handoff has not): read again at once rather than wait for a wake.
            let more = handed.len() == DRAIN_BATCH || !self.shared.part.handoff.is_empty();
            return self.publish(handed, more).await;
        }
        let store = self.shared.part.store.clone();
        let after = self.cursor;
        let read =
            tokio::task::spawn_blocking(move || store.pending_after(after, DRAIN_BATCH)).await;
        let pending = match read {
            // Read back from the store, a firing's message is written again.
            Ok(Ok(p)) => p
                .into_iter()
                .map(|(seq, firing)| NewFiring {
                    seq,
                    message: firing.message_bytes(),
                    firing,
                })
                .collect::<Vec<_>>(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the outbox");
                self.failed.store(true, Ordering::Release);
                return Read::Failed;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox reader failed");
                self.failed.store(true, Ordering::Release);
                return Read::Failed;
            }
        };
        if pending.is_empty() {
            return Read::Empty;
        }
        let full = pending.len() == DRAIN_BATCH;
        self.publish(pending, full).await
    }

    /// Publishes `pending` (in `firing_seq` order, right after the cursor) and
    /// hands the pass to the settling task; `full`: more may be there at once.
    async fn publish(&mut self, pending: Vec<NewFiring>, full: bool) -> Read {
        let mut pass = Pass::default();
        // Most targets are streams: room for all, so the pass is not moved
        // as it fills.
        pass.jetstream.reserve(pending.len());
        let mut failed = false;
        for NewFiring {
            seq,
            firing,
            message,
        } in pending
        {
            self.cursor = Some(seq);
            // Each firing's `publish` span lasts until its ack (JetStream) or
            // the flush (core). When spans are exported the consumer's parent
            // is this span; otherwise the stored trace context goes on as it came.
            let span = crate::telemetry::publish_span(&firing);
            let traceparent = crate::telemetry::traceparent_of(&span);
            let sent = send(
                &self.shared,
                &self.js,
                &mut self.routes,
                &mut self.inbox,
                &firing,
                message,
                traceparent.as_deref(),
            )
            .instrument(span.clone())
            .await;
            match sent {
                Ok(Sent::JetStream(ack)) => pass.jetstream.push((seq, firing, ack, span)),
                Ok(Sent::Core) => pass.core.push((seq, firing, span)),
                Err(e) => {
                    crate::telemetry::record_error(&span, &e);
                    publish_failed(&self.shared, &firing, &e)
                        .instrument(span)
                        .await;
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.failed.store(true, Ordering::Release);
        }
        if self.passes.send(Settle::Pass(pass)).await.is_err() {
            tracing::error!("the outbox settling task is gone");
            self.failed.store(true, Ordering::Release);
            return Read::Failed;
        }
        match (failed, full) {
            (true, _) => Read::Failed,
            (false, true) => Read::Full,
            (false, false) => Read::Some,
        }
    }

    /// Starts a new settling task if the last one ended (it can only panic):
    /// the passes it held were dropped unsettled, so their firings are still
    /// in the outbox and go out again from its start. False when shutdown
    /// came first.
    async fn respawn_settler_if_dead(
        &mut self,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        if !self.settler.0.is_finished() {
            return true;
        }
        tracing::error!("the outbox settling task ended; starting a new one");
        match spawn_settler(&self.shared, &self.failed, shutdown).await {
            Some((passes, settler, inbox)) => {
                (self.passes, self.settler, self.inbox) = (passes, settler, inbox);
                true
            }
            None => false,
        }
    }

    /// Waits until every pass handed over so far is settled.
    async fn settle_all(&self) {
        let (done, settled) = tokio::sync::oneshot::channel();
        if self.passes.send(Settle::Barrier(done)).await.is_err() || settled.await.is_err() {
            tracing::error!("the outbox settling task is gone");
            self.failed.store(true, Ordering::Release);
        }
    }
}

/// Firings handed to NATS in one pass, with their `publish` spans.
#[derive(Default)]
struct Pass {
    /// JetStream publishes whose acks are still to come, each with its
    /// `firing_seq` and the number of its reply subject (ascending).
    jetstream: Vec<(u64, Firing, u64, tracing::Span)>,
    /// Core NATS publishes that a flush completes, each with its `firing_seq`.
    core: Vec<(u64, Firing, tracing::Span)>,
}

/// What the drainer hands to [`settle_passes`], in order.
enum Settle {
    /// Await its acks (or flush) and mark the firings delivered.
    Pass(Pass),
    /// Answered once everything handed over before it is settled.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Settles passes in the order they were published: awaits their acks, then
/// marks every delivered firing of the passes queued meanwhile in ONE store
/// transaction. A failure sets `failed` (the firing stays in the outbox).
async fn settle_passes(
    shared: Arc<Ctx>,
    mut queue: tokio::sync::mpsc::Receiver<Settle>,
    mut replies: acks::AckReplies,
    failed: Arc<AtomicBool>,
) {
    while let Some(first) = queue.recv().await {
        let mut queued = vec![first];
        while let Ok(more) = queue.try_recv() {
            queued.push(more);
        }
        let mut passes = Vec::new();
        let mut barriers = Vec::new();
        for item in queued {
            match item {
                Settle::Pass(pass) => passes.push(pass),
                Settle::Barrier(done) => barriers.push(done),
            }
        }
        // The acks of all queued passes at once, with one deadline: after a
        // NATS restart that lost every ack in flight this costs one timeout,
        // not one per pass.
        let wanted: Vec<u64> = passes
            .iter()
            .flat_map(|p| p.jetstream.iter().map(|(_, _, n, _)| *n))
            .collect();
        let mut answers = replies
            .collect(&wanted, ack_timeout(&shared))
            .await
            .into_iter();
        let mut delivered = Vec::new();
        for pass in passes {
            let (ids, ok) = settle_pass(&shared, pass, &mut answers).await;
            delivered.extend(ids);
            if !ok {
                failed.store(true, Ordering::Release);
            }
        }
        if !mark_delivered(&shared, delivered).await {
            failed.store(true, Ordering::Release);
        }
        for done in barriers {
            let _ = done.send(());
        }
    }
}

/// How long a round of the settling task waits for its acks: the client's
/// request timeout, as async-nats's JetStream publish waits.
fn ack_timeout(shared: &Ctx) -> Duration {
    shared.client.timeout().unwrap_or(Duration::from_secs(10))
}

/// Settles one pass with its acks (`answers` yields them in the pass's
/// order) and flushes its core publishes; returns the `(firing_seq, id)` of
/// the firings that made it, and false if any failed.
async fn settle_pass(
    shared: &Arc<Ctx>,
    pass: Pass,
    answers: &mut impl Iterator<Item = Result<(), String>>,
) -> (Vec<(u64, String)>, bool) {
    let mut ok = true;
    let mut delivered = Vec::with_capacity(pass.jetstream.len() + pass.core.len());
    let acked_at = crate::clock::now_ms();
    let mut acked = 0;
    for (seq, firing, _, span) in pass.jetstream {
        let answer = answers
            .next()
            .unwrap_or_else(|| Err("no answer was collected for it".to_string()));
        match answer {
            Ok(()) => {
                acked += 1;
                shared
                    .metrics
                    .observe_firing((acked_at - firing.created_at_ms) as f64 / 1000.0);
                delivered.push((seq, firing.firing_id));
            }
            Err(e) => {
                let e = PublishFailure::JetStream(e);
                crate::telemetry::record_error(&span, &e);
                publish_failed(shared, &firing, &e).instrument(span).await;
                ok = false;
            }
        }
    }
    if acked > 0 {
        shared.metrics.published("jetstream", acked);
    }
    if pass.core.is_empty() {
        return (delivered, ok);
    }
    if let Err(e) = shared.client.flush().await {
        tracing::warn!(error = %e, "flush failed; core NATS firings will be published again");
        for (_, _, span) in &pass.core {
            crate::telemetry::record_error(span, &e);
        }
        return (delivered, false);
    }
    shared.metrics.published("core", pass.core.len() as u64);
    let flushed = crate::clock::now_ms();
    for (seq, firing, _span) in pass.core {
        shared
            .metrics
            .observe_firing((flushed - firing.created_at_ms) as f64 / 1000.0);
        delivered.push((seq, firing.firing_id));
    }
    (delivered, ok)
}

/// Marks firings delivered in one (lazy) store transaction; false on failure,
/// after which they are published again with the same `Nats-Msg-Id`.
async fn mark_delivered(shared: &Arc<Ctx>, delivered: Vec<(u64, String)>) -> bool {
    if delivered.is_empty() {
        return true;
    }
    let store = shared.part.store.clone();
    let now = crate::clock::now_ms();
    match tokio::task::spawn_blocking(move || {
        store
            .mark_delivered_seqs(&delivered, now)
            .map(|()| delivered)
    })
    .await
    {
        Ok(Ok(delivered)) => {
            for (_, id) in &delivered {
                // Per firing: debug, like "signal stored".
                tracing::debug!(firing = %id, "firing delivered");
            }
            true
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot mark firings delivered; they will be published again (same Nats-Msg-Id)");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "outbox writer failed");
            false
        }
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

/// A firing handed to NATS: a JetStream publish whose ack is still to come
/// (to the reply subject of this number of the drainer's inbox), or a core
/// publish that the next flush completes.
enum Sent {
    JetStream(u64),
    Core,
}

/// Publishes `firing` with `message` (its JSON) as the body, to a stream
/// with a reply subject of the drainer's ack inbox, or as a core publish.
async fn send(
    shared: &Ctx,
    js: &async_nats::jetstream::Context,
    routes: &mut HashMap<String, (Route, Instant)>,
    inbox: &mut acks::AckInbox,
    firing: &Firing,
    message: Vec<u8>,
    traceparent: Option<&str>,
) -> Result<Sent, PublishFailure> {
    let headers = firing_headers(firing, traceparent.or(firing.traceparent.as_deref()));
    let body = bytes::Bytes::from(message);
    match resolve_route(js, routes, &firing.subject).await {
        Route::JetStream => {
            let (n, reply) = inbox.next_reply();
            shared
                .client
                .publish_with_reply_and_headers(firing.subject.clone(), reply, headers, body)
                .await
                .map_err(|e| PublishFailure::JetStream(e.to_string()))?;
            Ok(Sent::JetStream(n))
        }
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
async fn publish_failed(shared: &Arc<Ctx>, firing: &Firing, e: &PublishFailure) {
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
async fn give_up_if_exhausted(shared: &Arc<Ctx>, firing: &Firing, error: &str) {
    let store = shared.part.store.clone();
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
    let store = shared.part.store.clone();
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

/// Header names of a firing message, built once: a name given as `&str`
/// is checked and copied on every insert.
const MSG_ID: HeaderName = HeaderName::from_static(MSG_ID_HEADER);
const SUBSCRIPTION: HeaderName = HeaderName::from_static("Signalbox-Subscription");
const TRACEPARENT: HeaderName = HeaderName::from_static(Firing::TRACEPARENT);
const ACTION: HeaderName = HeaderName::from_static("Signalbox-Action");

/// Headers of a firing message; `traceparent` is the trace context it carries
/// (the firing's own, or its publish span's when spans are exported).
fn firing_headers(firing: &Firing, traceparent: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, firing.firing_id.as_str());
    headers.insert(SUBSCRIPTION, firing.subscription.as_str());
    if let Some(tp) = traceparent {
        headers.insert(TRACEPARENT, tp);
    }
    headers.insert(
        ACTION,
        match firing.action {
            ActionKind::Publish => "publish",
            ActionKind::Trigger => "trigger",
        },
    );
    headers
}
