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

use std::collections::HashMap;
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
    let transport = match messages.first() {
        Some(Inbound::JetStream(_)) => "jetstream",
        _ => "nats",
    };
    let span = crate::telemetry::ingest_span(transport, messages.len());
    process_batch_in_span(shared, messages)
        .instrument(span)
        .await
}

async fn process_batch_in_span(shared: &Arc<Shared>, messages: Vec<Inbound>) {
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
    if batch.is_empty() {
        return;
    }
    let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
    match commit_in_spans(shared, batch, &spans).await {
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

/// Stores a batch of decoded signals in ONE store transaction (dedup, store,
/// match, joins, waits, outbox) and returns one ack per signal, in order. On
/// error nothing of the batch was stored. Every transport (core NATS,
/// JetStream, webhooks) goes through here; this entry opens the batch's
/// `ingest` span and each signal's `signal` span (NATS ingest opens them itself).
pub(crate) async fn commit(
    shared: &Arc<Shared>,
    batch: Vec<Incoming>,
) -> Result<Vec<Ack>, ErrorReply> {
    let transport = batch.first().map_or("", |i| i.origin.transport.as_str());
    let span = crate::telemetry::ingest_span(transport, batch.len());
    async move {
        let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
        commit_in_spans(shared, batch, &spans).await
    }
    .instrument(span)
    .await
}

/// [`commit`] with the signals' spans (one per signal, same order): each
/// signal's matching runs in a `match` span under its `signal` span, the store
/// transaction in a `commit` span, and when spans are exported each firing's
/// `traceparent` names its signal's span, so that its `publish` span joins it.
async fn commit_in_spans(
    shared: &Arc<Shared>,
    batch: Vec<Incoming>,
    spans: &[tracing::Span],
) -> Result<Vec<Ack>, ErrorReply> {
    let store = shared.store.clone();
    let catalog = shared.catalog.clone();
    let started = std::time::Instant::now();
    let commit_span = tracing::debug_span!(
        "commit",
        count = int(batch.len()),
        stored = tracing::field::Empty,
        duplicates = tracing::field::Empty,
    );
    // Which span belongs to which instance: worked out only when spans are on
    // and the batch has more than one signal.
    let traced = spans.iter().any(|s| !s.is_disabled());
    for span in spans {
        commit_span.follows_from(span);
    }
    let keys: Vec<(String, String)> = if traced && spans.len() > 1 {
        batch
            .iter()
            .map(|i| {
                let id = i.signal.id.clone().unwrap_or_default();
                (i.signal.name.clone(), id)
            })
            .collect()
    } else {
        Vec::new()
    };
    let signal_spans = if traced { spans.to_vec() } else { Vec::new() };
    let txn_span = commit_span.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _entered = txn_span.enter();
        let mut matched: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut settled_waits: Vec<String> = Vec::new();
        let mut cursor = 0usize;
        let outcomes = store.ingest(batch, &mut |instance, joins| {
            // The store calls back in batch order (duplicates skipped): the
            // instance's span is the next one with its (name, id).
            let signal_span = if !traced {
                None
            } else if keys.is_empty() {
                signal_spans.first().cloned()
            } else {
                while cursor < keys.len()
                    && (keys[cursor].0 != instance.signal.name || keys[cursor].1 != instance.id)
                {
                    cursor += 1;
                }
                signal_spans.get(cursor).cloned()
            };
            let match_span = match &signal_span {
                Some(parent) => tracing::debug_span!(
                    parent: parent,
                    "match",
                    matched = tracing::field::Empty,
                    firings = tracing::field::Empty,
                ),
                None => tracing::Span::none(),
            };
            let mut plan = {
                let _in_match = match_span.enter();
                catalog.plan(instance, joins, crate::clock::now_ms())
            };
            match_span.record("matched", int(plan.matched.len()));
            match_span.record("firings", int(plan.firings.len()));
            if !plan.firings.is_empty()
                && let Some(tp) = signal_span
                    .as_ref()
                    .and_then(crate::telemetry::traceparent_of)
            {
                for firing in &mut plan.firings {
                    firing.traceparent = Some(tp.clone());
                }
            }
            settled_waits.extend(plan.settled_waits);
            matched.insert(
                (instance.signal.name.clone(), instance.id.clone()),
                plan.matched,
            );
            plan.firings
        });
        if outcomes.is_ok() {
            for id in &settled_waits {
                tracing::info!(wait = %id, "wait satisfied");
                catalog.remove_wait(id);
            }
        }
        (outcomes, matched)
    })
    .await;
    let m = &shared.metrics;
    let (outcomes, mut matched) = match result {
        Ok((Ok(outcomes), matched)) => {
            m.observe_commit(started.elapsed().as_secs_f64());
            (outcomes, matched)
        }
        Ok((Err(e), _)) => {
            m.add(&m.commit_failures, 1);
            tracing::error!(error = %e, "store transaction failed; batch not stored");
            return Err(ErrorReply::unavailable(format!("signal not stored: {e}")));
        }
        Err(join) => {
            m.add(&m.commit_failures, 1);
            tracing::error!(error = %join, "ingest worker failed; batch not stored");
            return Err(ErrorReply::unavailable("signal not stored: internal error"));
        }
    };
    let mut fired = false;
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
                fired |= !firings.is_empty();
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
                tracing::info!(
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
    if fired {
        shared.outbox_wake.notify_one();
    }
    Ok(acks)
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
