//! One message from a NATS source ([`Inbound`]: core or JetStream) and how
//! it is settled — a reply, an ack, a term for bad input, a nak to retry —,
//! decoding a batch (the name from the subject, the id from `Nats-Msg-Id` or
//! the stream position), and the batches in flight while the next is read.
//!
//! Invariants:
//! - a bad message gets an error reply (when it is a request) and a copy on the
//!   rejected subject with the reason; it never stops the messages behind it;
//! - a reply or an ack is sent only after the transaction has committed;
//! - nothing here panics on input: every failure becomes a reply and a log line.

use std::sync::Arc;

use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use signalbox_model::{ErrorReply, FieldError, Origin, Signal};
use signalbox_store::Incoming;
use tracing::Instrument;

use crate::nats::MSG_ID_HEADER;
use crate::nats::reply::respond;
use crate::nats::stream_position::{StreamPosition, stream_position};
use crate::pipeline::ingest::{PendingCommit, enqueue};
use crate::shared::Shared;

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

    /// A JetStream message's place in its stream.
    fn stream_position(&self) -> Option<StreamPosition<'_>> {
        match self {
            Inbound::Core(_) => None,
            Inbound::JetStream(m) => stream_position(m.reply.as_deref()?),
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
        if let Some(at) = self.stream_position() {
            return format!("jetstream/{}/{}", at.stream, at.seq);
        }
        uuid::Uuid::now_v7().to_string()
    }

    /// The transport name for metrics and origins: `nats` or `jetstream`
    /// (one batch holds messages of one transport).
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
            .filter(|v| crate::telemetry::valid_traceparent(v))
        {
            details.insert(signalbox_model::Firing::TRACEPARENT.to_string(), tp);
        }
        let transport = match self {
            Inbound::Core(_) => "nats",
            Inbound::JetStream(_) => {
                if let Some(at) = self.stream_position() {
                    details.insert("stream".into(), at.stream.to_string());
                    details.insert("stream_seq".into(), at.seq.to_string());
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
                    respond(&shared.client, subject, ack).await;
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
                    respond(&shared.client, subject, reply).await;
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
                    respond(&shared.client, subject, reply).await;
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
    if shared.group.is_some() {
        to_group(shared, inbound, batch).instrument(span).await;
        return None;
    }
    let home = shared.home()?;
    let _in_ingest = span.enter();
    let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
    let commit = enqueue(&home.committer, batch, &spans);
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
            match commit.wait(&shared.metrics, &spans).await {
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
    if let Some(first) = messages.first() {
        shared
            .metrics
            .received(first.transport(), messages.len() as u64);
    }
    let mut inbound = Vec::with_capacity(messages.len());
    let mut batch = Vec::with_capacity(messages.len());
    for msg in messages {
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

/// Group mode: puts each signal on its partition; the partition's owner
/// answers the producer's request after its commit. A signal the group's
/// input does not take is answered `unavailable` (retry).
async fn to_group(shared: &Arc<Shared>, inbound: Vec<Inbound>, batch: Vec<Incoming>) {
    let Some(group) = &shared.group else {
        return;
    };
    for (msg, incoming) in inbound.into_iter().zip(batch) {
        let intake = format!("{}/{}", group.member, uuid::Uuid::now_v7());
        let reply = match &msg {
            Inbound::Core(m) => m.reply.as_ref().map(|r| r.to_string()),
            Inbound::JetStream(_) => None,
        };
        if let Err(e) = group.front.put(&incoming, reply.as_deref(), &intake).await {
            tracing::warn!(error = %e, "signal not taken by the group's input");
            msg.retry_later(shared, &ErrorReply::unavailable(e)).await;
        }
    }
}

/// Turns a producer's own JetStream publish, read from a group's input
/// stream under `subject` (`<prefix>.<name>`), into a validated signal:
/// its id is the producer's, else its `Nats-Msg-Id`, else the stream
/// position (`jetstream/<stream>/<seq>`), which every owner derives alike;
/// its receive time is the stream's.
pub(crate) fn decode_raw(
    shared: &Shared,
    subject: &str,
    msg: &Message,
    position: (&str, u64),
    received_at_ms: i64,
) -> Result<Incoming, FieldError> {
    let subject_name = subject
        .strip_prefix(shared.config.subject_prefix.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or_default();
    let mut signal = parse_with_subject_name(&msg.payload, subject_name, shared)?;
    let headers = msg.headers.as_ref();
    if signal.id.is_none() {
        signal.id = Some(
            headers
                .and_then(|h| h.get(MSG_ID_HEADER))
                .map(|v| v.as_str().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("jetstream/{}/{}", position.0, position.1)),
        );
    }
    let mut details = std::collections::BTreeMap::new();
    if let Some(tp) = headers
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.as_str().to_string())
        .filter(|v| crate::telemetry::valid_traceparent(v))
    {
        details.insert(signalbox_model::Firing::TRACEPARENT.to_string(), tp);
    }
    details.insert("stream".into(), position.0.to_string());
    details.insert("stream_seq".into(), position.1.to_string());
    Ok(Incoming {
        signal,
        origin: Origin {
            transport: "jetstream".into(),
            address: Some(subject.to_string()),
            adapter: None,
            details,
        },
        received_at_ms,
    })
}

/// Logs a bad message read from a group's input and copies it to the
/// rejected subject with the reason, under its producer's `subject`.
pub(crate) async fn reject_copy(shared: &Shared, subject: &str, msg: &Message, err: &FieldError) {
    tracing::warn!(%subject, field = %err.field, rule = %err.rule, "signal rejected");
    let mut headers = HeaderMap::new();
    headers.insert("Signalbox-Subject", subject);
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

/// A batch that starts with `first` and has room for `batch_size` messages
/// (up to a bound, whatever the configuration says), so that filling it
/// does not move the messages it holds again and again.
pub(crate) fn new_batch(first: Inbound, batch_size: usize) -> Vec<Inbound> {
    let mut batch = Vec::with_capacity(batch_size.clamp(1, 4096));
    batch.push(first);
    batch
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

/// Parses the body; a body without `name` takes it from the subject, and a body
/// whose `name` differs from the subject's is rejected.
fn parse_with_subject_name(
    payload: &Bytes,
    subject_name: &str,
    shared: &Shared,
) -> Result<Signal, FieldError> {
    Signal::parse_for_subject(
        payload,
        &shared.config.limits,
        subject_name,
        &shared.config.subject_prefix,
    )
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
