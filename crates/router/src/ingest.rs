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

use crate::shared::Shared;

/// Header carrying the JetStream message id, used as the signal id when absent.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// A decoded message waiting for the transaction, with where to reply.
struct Pending {
    incoming: Incoming,
    reply: Option<async_nats::Subject>,
}

/// Processes one batch of messages end to end.
pub(crate) async fn process_batch(shared: &Arc<Shared>, messages: Vec<Message>) {
    let now = crate::clock::now_ms();
    let mut pending = Vec::with_capacity(messages.len());
    for msg in messages {
        match decode(shared, &msg, now) {
            Ok(incoming) => pending.push(Pending {
                incoming,
                reply: msg.reply.clone(),
            }),
            Err(err) => reject(shared, &msg, &err).await,
        }
    }
    if pending.is_empty() {
        return;
    }
    let (replies, batch): (Vec<_>, Vec<_>) =
        pending.into_iter().map(|p| (p.reply, p.incoming)).unzip();
    let store = shared.store.clone();
    let catalog = shared.catalog.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut matched: HashMap<(String, String), Vec<String>> = HashMap::new();
        let outcomes = store.ingest(batch, &mut |instance| {
            let plan = catalog.plan(instance, crate::clock::now_ms());
            matched.insert(
                (instance.signal.name.clone(), instance.id.clone()),
                plan.matched,
            );
            plan.firings
        });
        (outcomes, matched)
    })
    .await;
    let (outcomes, mut matched) = match result {
        Ok((Ok(outcomes), matched)) => (outcomes, matched),
        Ok((Err(e), _)) => {
            tracing::error!(error = %e, "store transaction failed; batch not stored");
            let reply = ErrorReply::unavailable(format!("signal not stored: {e}"));
            for subject in replies.into_iter().flatten() {
                respond(shared, subject, &reply).await;
            }
            return;
        }
        Err(join) => {
            tracing::error!(error = %join, "ingest worker failed; batch not stored");
            let reply = ErrorReply::unavailable("signal not stored: internal error");
            for subject in replies.into_iter().flatten() {
                respond(shared, subject, &reply).await;
            }
            return;
        }
    };
    let mut fired = false;
    for (outcome, reply) in outcomes.into_iter().zip(replies) {
        let ack = match outcome {
            IngestOutcome::Stored { instance, firings } => {
                fired |= !firings.is_empty();
                let matched = matched
                    .remove(&(instance.signal.name.clone(), instance.id.clone()))
                    .unwrap_or_default();
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
                tracing::info!(signal = %name, %id, seq, "duplicate signal acknowledged");
                Ack {
                    name,
                    seq,
                    id,
                    duplicate: true,
                    matched: Vec::new(),
                }
            }
        };
        if let Some(subject) = reply {
            respond(shared, subject, &ack).await;
        }
    }
    if fired {
        shared.outbox_wake.notify_one();
    }
}

/// Turns one message into a validated signal with its id resolved.
fn decode(shared: &Shared, msg: &Message, now_ms: i64) -> Result<Incoming, FieldError> {
    let subject_name = msg
        .subject
        .as_str()
        .strip_prefix(shared.config.subject_prefix.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or_default();
    let mut signal = parse_with_subject_name(&msg.payload, subject_name, shared)?;
    if signal.id.is_none() {
        let header_id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(MSG_ID_HEADER))
            .map(|v| v.as_str().to_string())
            .filter(|s| !s.is_empty());
        signal.id = Some(header_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()));
    }
    Ok(Incoming {
        signal,
        origin: Origin {
            transport: "nats".into(),
            address: Some(msg.subject.to_string()),
            adapter: None,
            details: Default::default(),
        },
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
    let limits = &shared.config.limits;
    if payload.len() > limits.max_message_bytes {
        return Signal::parse(payload, limits);
    }
    let mut json: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
    if let serde_json::Value::Object(obj) = &mut json {
        match obj.get("name") {
            None if !subject_name.is_empty() => {
                obj.insert("name".into(), serde_json::Value::String(subject_name.into()));
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

/// Answers a bad message and records it on the rejected subject.
async fn reject(shared: &Shared, msg: &Message, err: &FieldError) {
    tracing::warn!(subject = %msg.subject, field = %err.field, rule = %err.rule, "signal rejected");
    let reply = ErrorReply::invalid(err);
    if let Some(subject) = msg.reply.clone() {
        respond(shared, subject, &reply).await;
    }
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
