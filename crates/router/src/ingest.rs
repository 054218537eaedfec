//! Ingest: from NATS messages on `<prefix>.<name>` to committed signal instances,
//! their firings in the outbox, and the acknowledgement to the producer.
//!
//! Messages are taken in batches (what is already buffered, up to `batch_size`),
//! each is decoded and validated on its own, and the good ones of a batch are
//! stored in ONE store transaction (dedup, store, match, outbox). Invariants:
//! - a bad message gets an error reply (when it is a request) and a copy on the
//!   rejected subject with the reason; it never stops the messages behind it;
//! - a reply is sent only after the transaction has committed;
//! - nothing here panics on input: every failure becomes a reply and a log line.

use std::sync::Arc;

use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use signalbox_model::{Ack, ErrorReply, FieldError, Origin, Signal};
use signalbox_store::{Incoming, IngestOutcome};
use tracing::Instrument;

use crate::shared::Shared;
use crate::telemetry::int;

/// Header carrying the JetStream message id, used as the signal id when absent.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// One message taken from NATS, and how to settle it once it was handled.
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived, one per message in a batch; boxing would add an allocation per signal"
)]
pub(crate) enum Inbound {
    /// From the core-NATS queue subscription: settled by a reply, if asked for.
    Core(Message),
    /// From the JetStream consumer: settled by an ack (or a nak to retry).
    JetStream(async_nats::jetstream::Message),
}

impl Inbound {
    fn message(&self) -> &Message {
        match self {
            Inbound::Core(m) => m,
            Inbound::JetStream(m) => &m.message,
        }
    }

    /// The id a signal gets when it names none: the `Nats-Msg-Id` header, else
    /// (JetStream) the stream position, which a redelivery keeps, else a fresh id.
    fn default_id(&self) -> String {
        let header_id = self
            .message()
            .headers
            .as_ref()
            .and_then(|h| h.get(MSG_ID_HEADER))
            .map(|v| v.as_str().to_string())
            .filter(|s| !s.is_empty());
        if let Some(id) = header_id {
            return id;
        }
        if let Inbound::JetStream(m) = self
            && let Ok(info) = m.info()
        {
            return format!("jetstream/{}/{}", info.stream, info.stream_sequence);
        }
        uuid::Uuid::now_v7().to_string()
    }

    /// The transport name for metrics: `nats` or `jetstream`.
    fn transport(&self) -> &'static str {
        match self {
            Inbound::Core(_) => "nats",
            Inbound::JetStream(_) => "jetstream",
        }
    }

    fn origin(&self) -> Origin {
        let mut details = std::collections::BTreeMap::new();
        if let Some(tp) = self
            .message()
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_string())
            .filter(|v| valid_traceparent(v))
        {
            details.insert(signalbox_model::Firing::TRACEPARENT.to_string(), tp);
        }
        let transport = match self {
            Inbound::Core(_) => "nats",
            Inbound::JetStream(m) => {
                if let Ok(info) = m.info() {
                    details.insert("stream".into(), info.stream.to_string());
                    details.insert("stream_seq".into(), info.stream_sequence.to_string());
                }
                "jetstream"
            }
        };
        Origin {
            transport: transport.into(),
            address: Some(self.message().subject.to_string()),
            adapter: None,
            details,
        }
    }

    /// Settles a message that was stored (or found to be a duplicate).
    async fn done<T: serde::Serialize>(self, shared: &Shared, ack: &T) {
        match self {
            Inbound::Core(m) => {
                if let Some(subject) = m.reply {
                    respond(shared, subject, ack).await;
                }
            }
            Inbound::JetStream(m) => {
                if let Err(e) = m.ack().await {
                    tracing::warn!(error = %e, "JetStream ack failed; the message will be redelivered and deduplicated");
                }
            }
        }
    }

    /// Settles a message that is bad and will never be good: reply or terminate.
    async fn refuse(self, shared: &Shared, reply: &ErrorReply) {
        match self {
            Inbound::Core(m) => {
                if let Some(subject) = m.reply {
                    respond(shared, subject, reply).await;
                }
            }
            Inbound::JetStream(m) => {
                if let Err(e) = m.ack_with(async_nats::jetstream::AckKind::Term).await {
                    tracing::warn!(error = %e, "JetStream term failed");
                }
            }
        }
    }

    /// Settles a message that could not be handled now: tell the producer or retry.
    async fn retry_later(self, shared: &Shared, reply: &ErrorReply) {
        match self {
            Inbound::Core(m) => {
                if let Some(subject) = m.reply {
                    respond(shared, subject, reply).await;
                }
            }
            Inbound::JetStream(m) => {
                let nak =
                    async_nats::jetstream::AckKind::Nak(Some(std::time::Duration::from_secs(1)));
                if let Err(e) = m.ack_with(nak).await {
                    tracing::warn!(error = %e, "JetStream nak failed; redelivery after ack_wait");
                }
            }
        }
    }
}

/// Processes one batch of messages end to end, in an `ingest` span.
pub(crate) async fn process_batch(shared: &Arc<Shared>, messages: Vec<Inbound>) {
    if let Some(pending) = submit_batch(shared, messages).await {
        pending.settle(shared).await;
    }
}

/// A batch whose good messages are queued for the commit thread; its messages
/// are settled (acked, answered) by [`PendingBatch::settle`] after the commit.
pub(crate) struct PendingBatch {
    inbound: Vec<Inbound>,
    spans: Vec<tracing::Span>,
    commit: PendingCommit,
    span: tracing::Span,
}

/// Decodes a batch, refuses its bad messages (each with its reason) and queues
/// the good ones for the commit thread, in order. `None` if none was good.
/// Call it in arrival order; settling may then run concurrently.
pub(crate) async fn submit_batch(
    shared: &Arc<Shared>,
    messages: Vec<Inbound>,
) -> Option<PendingBatch> {
    let transport = match messages.first() {
        Some(Inbound::JetStream(_)) => "jetstream",
        _ => "nats",
    };
    let span = crate::telemetry::ingest_span(transport, messages.len());
    let (inbound, batch) = decode_batch(shared, messages)
        .instrument(span.clone())
        .await;
    if batch.is_empty() {
        return None;
    }
    let _in_ingest = span.enter();
    let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
    let commit = enqueue(shared, batch, &spans);
    drop(_in_ingest);
    Some(PendingBatch {
        inbound,
        spans,
        commit,
        span,
    })
}

impl PendingBatch {
    /// Waits for the commit, then acks or answers every message of the batch
    /// (or asks for a retry when the transaction failed).
    pub(crate) async fn settle(self, shared: &Shared) {
        let PendingBatch {
            inbound,
            spans,
            commit,
            span,
        } = self;
        async move {
            match commit.wait(shared, &spans).await {
                Ok(acks) => {
                    for ((ack, msg), span) in acks.into_iter().zip(inbound).zip(spans) {
                        msg.done(shared, &ack).instrument(span).await;
                    }
                }
                Err(reply) => {
                    for (msg, span) in inbound.into_iter().zip(spans) {
                        crate::telemetry::record_error(&span, &reply.error.message);
                        msg.retry_later(shared, &reply).instrument(span).await;
                    }
                }
            }
        }
        .instrument(span)
        .await;
    }
}

/// How many batches a NATS ingest loop may have waiting for their commit
/// while it reads the next: enough for the commit thread to find several
/// queued batches to merge, few enough to bound unacknowledged messages.
const SETTLE_DEPTH: usize = 4;

/// The batches an ingest loop submitted and is settling in the background, in
/// their own tasks, at most [`SETTLE_DEPTH`] at a time.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    tasks: tokio::task::JoinSet<()>,
}

impl InFlight {
    /// No batch in flight yet.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        InFlight {
            shared,
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Settles `pending` in the background, first waiting for a free slot.
    pub(crate) async fn push(&mut self, pending: PendingBatch) {
        while self.tasks.len() >= SETTLE_DEPTH {
            self.join_one().await;
        }
        let shared = self.shared.clone();
        self.tasks
            .spawn(async move { pending.settle(&shared).await });
    }

    /// Waits until every batch pushed so far is settled.
    pub(crate) async fn finish(&mut self) {
        while !self.tasks.is_empty() {
            self.join_one().await;
        }
    }

    async fn join_one(&mut self) {
        if let Some(Err(e)) = self.tasks.join_next().await {
            tracing::error!(error = %e, "a batch's settling task failed");
        }
    }
}

/// Decodes every message; bad ones are refused at once. Returns the good
/// messages and their decoded signals, in the same order.
async fn decode_batch(shared: &Shared, messages: Vec<Inbound>) -> (Vec<Inbound>, Vec<Incoming>) {
    let now = crate::clock::now_ms();
    let mut inbound = Vec::with_capacity(messages.len());
    let mut batch = Vec::with_capacity(messages.len());
    for msg in messages {
        let m = &shared.metrics;
        match &msg {
            Inbound::Core(_) => m.add(&m.received_nats, 1),
            Inbound::JetStream(_) => m.add(&m.received_jetstream, 1),
        }
        match decode(shared, &msg, now) {
            Ok(incoming) => {
                inbound.push(msg);
                batch.push(incoming);
            }
            Err(err) => {
                shared.metrics.reject(msg.transport(), &err.field);
                reject(shared, msg.message(), &err).await;
                msg.refuse(shared, &ErrorReply::invalid(&err)).await;
            }
        }
    }
    (inbound, batch)
}

/// Stores a batch of decoded signals in ONE store transaction (dedup, store,
/// match, joins, waits, outbox; possibly shared with other batches queued at
/// the same time, see [`crate::committer`]) and returns one ack per signal, in
/// order. On error nothing of the batch was stored. Every transport (core
/// NATS, JetStream, webhooks, Kafka) goes through the commit thread; this entry
/// opens the batch's `ingest` span and each signal's `signal` span (NATS ingest
/// opens them in [`submit_batch`]).
pub(crate) async fn commit(
    shared: &Arc<Shared>,
    batch: Vec<Incoming>,
) -> Result<Vec<Ack>, ErrorReply> {
    let transport = batch.first().map_or("", |i| i.origin.transport.as_str());
    let span = crate::telemetry::ingest_span(transport, batch.len());
    async move {
        let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
        enqueue(shared, batch, &spans).wait(shared, &spans).await
    }
    .instrument(span)
    .await
}

/// A batch queued on the commit thread, with its `commit` span.
struct PendingCommit {
    answer: tokio::sync::oneshot::Receiver<crate::committer::CommitAnswer>,
    commit_span: tracing::Span,
    started: std::time::Instant,
}

/// Queues `batch` on the commit thread. `spans` holds the signals' spans (one
/// per signal, same order): each signal's matching runs in a `match` span under
/// its `signal` span, the store transaction in a `commit` span, and when spans
/// are exported each firing's `traceparent` names its signal's span, so that
/// its `publish` span joins it.
fn enqueue(shared: &Shared, batch: Vec<Incoming>, spans: &[tracing::Span]) -> PendingCommit {
    let commit_span = tracing::debug_span!(
        "commit",
        count = int(batch.len()),
        stored = tracing::field::Empty,
        duplicates = tracing::field::Empty,
    );
    for span in spans {
        commit_span.follows_from(span);
    }
    let traced = spans.iter().any(|s| !s.is_disabled());
    let signal_spans = if traced { spans.to_vec() } else { Vec::new() };
    let answer = shared
        .committer
        .submit(batch, signal_spans, commit_span.clone());
    PendingCommit {
        answer,
        commit_span,
        started: std::time::Instant::now(),
    }
}

impl PendingCommit {
    /// Waits for the commit and turns its outcomes into acks (metrics, logs and
    /// span fields included), or into the error reply when nothing was stored.
    async fn wait(self, shared: &Shared, spans: &[tracing::Span]) -> Result<Vec<Ack>, ErrorReply> {
        let PendingCommit {
            answer,
            commit_span,
            started,
        } = self;
        let m = &shared.metrics;
        let (outcomes, mut matched) = match answer.await {
            Ok(Ok(answer)) => {
                m.observe_commit(started.elapsed().as_secs_f64());
                answer
            }
            Ok(Err(e)) => {
                m.add(&m.commit_failures, 1);
                tracing::error!(error = %e, "store transaction failed; batch not stored");
                return Err(ErrorReply::unavailable(format!("signal not stored: {e}")));
            }
            Err(_) => {
                m.add(&m.commit_failures, 1);
                tracing::error!("the commit thread is gone; batch not stored");
                return Err(ErrorReply::unavailable("signal not stored: internal error"));
            }
        };
        let mut acks = Vec::with_capacity(outcomes.len());
        let (mut stored, mut duplicates) = (0usize, 0usize);
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let span = spans
                .get(index)
                .cloned()
                .unwrap_or_else(tracing::Span::none);
            let _in_signal = span.enter();
            acks.push(match outcome {
                IngestOutcome::Stored { instance, firings } => {
                    stored += 1;
                    let matched = matched
                        .remove(&(instance.signal.name.clone(), instance.id.clone()))
                        .unwrap_or_default();
                    m.add(&m.stored, 1);
                    m.add(&m.matches, matched.len() as u64);
                    m.add(&m.firings_created, firings.len() as u64);
                    span.record("signal.seq", int(instance.seq));
                    span.record("duplicate", false);
                    span.record("matched", int(matched.len()));
                    // Per signal: debug (lineage and metrics keep the
                    // record; at info a loaded router would log thousands
                    // of lines a second).
                    tracing::debug!(
                        signal = %instance.signal.name,
                        id = %instance.id,
                        seq = instance.seq,
                        matched = matched.len(),
                        firings = firings.len(),
                        "signal stored"
                    );
                    Ack {
                        name: instance.signal.name,
                        seq: instance.seq,
                        id: instance.id,
                        duplicate: false,
                        matched,
                    }
                }
                IngestOutcome::Duplicate { name, id, seq } => {
                    m.add(&m.duplicates, 1);
                    duplicates += 1;
                    span.record("signal.seq", int(seq));
                    span.record("duplicate", true);
                    tracing::info!(signal = %name, %id, seq, "duplicate signal acknowledged");
                    Ack {
                        name,
                        seq,
                        id,
                        duplicate: true,
                        matched: Vec::new(),
                    }
                }
            });
        }
        commit_span.record("stored", int(stored));
        commit_span.record("duplicates", int(duplicates));
        // The commit thread already woke the outbox (`handoff`).
        Ok(acks)
    }
}

/// Turns one message into a validated signal with its id resolved.
fn decode(shared: &Shared, inbound: &Inbound, now_ms: i64) -> Result<Incoming, FieldError> {
    let msg = inbound.message();
    let subject_name = msg
        .subject
        .as_str()
        .strip_prefix(shared.config.subject_prefix.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or_default();
    let mut signal = parse_with_subject_name(&msg.payload, subject_name, shared)?;
    if signal.id.is_none() {
        signal.id = Some(inbound.default_id());
    }
    Ok(Incoming {
        signal,
        origin: inbound.origin(),
        received_at_ms: now_ms,
    })
}

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>` (other versions are
/// passed on as long as they have the same shape).
pub(crate) fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() >= 4
        && [2usize, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses the body; a body without `name` takes it from the subject, and a body
/// whose `name` differs from the subject's is rejected.
fn parse_with_subject_name(
    payload: &Bytes,
    subject_name: &str,
    shared: &Shared,
) -> Result<Signal, FieldError> {
    let limits = &shared.config.limits;
    if payload.len() > limits.max_message_bytes {
        return Signal::parse(payload, limits);
    }
    let mut json: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
    if let serde_json::Value::Object(obj) = &mut json {
        match obj.get("name") {
            None if !subject_name.is_empty() => {
                obj.insert(
                    "name".into(),
                    serde_json::Value::String(subject_name.into()),
                );
            }
            Some(serde_json::Value::String(n)) if !subject_name.is_empty() && n != subject_name => {
                signalbox_model::signal::validate_name(n)
                    .map_err(|rule| FieldError::new("name", rule))?;
                return Err(FieldError::new(
                    "name",
                    format!(
                        "{n:?} does not match the subject's signal name {subject_name:?} (publish to {}.{n})",
                        shared.config.subject_prefix
                    ),
                ));
            }
            _ => {}
        }
    }
    Signal::from_json(json, limits)
}

/// Logs a bad message and records it on the rejected subject.
async fn reject(shared: &Shared, msg: &Message, err: &FieldError) {
    tracing::warn!(subject = %msg.subject, field = %err.field, rule = %err.rule, "signal rejected");
    let mut headers = HeaderMap::new();
    headers.insert("Signalbox-Subject", msg.subject.as_str());
    headers.insert("Signalbox-Error", err.to_string().as_str());
    if let Err(e) = shared
        .client
        .publish_with_headers(
            shared.config.rejected_subject.clone(),
            headers,
            msg.payload.clone(),
        )
        .await
    {
        tracing::warn!(error = %e, "could not publish the rejected message copy");
    }
}

/// Sends a JSON reply; failures are logged, never fatal.
pub(crate) async fn respond<T: serde::Serialize>(
    shared: &Shared,
    subject: async_nats::Subject,
    body: &T,
) {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a reply");
            return;
        }
    };
    if let Err(e) = shared.client.publish(subject, bytes.into()).await {
        tracing::warn!(error = %e, "could not send a reply");
    }
}
