//! Working a partition's input: read `sbx.<group>.in.<p>.>` from just after
//! the store's `input_seq`, in stream order, and store each batch with the
//! position of its last message (`input_seq`) in the same transaction — the
//! same transaction whose changes go to the changelog. So the position a new
//! owner resumes from is exactly what the state holds: nothing is skipped and
//! nothing is applied twice (a message at or before the position is passed
//! over, whatever the consumer redelivers).
//!
//! Messages, by kind: `_sig` (a signal a router took in, already validated;
//! the owner answers `Signalbox-Reply` after the commit), and in JetStream
//! ingest `<prefix>.<name>` (a producer's own publish, mapped onto this
//! partition by the stream: decoded and validated here, its default id
//! `jetstream/<stream>/<seq>`). A bad message is rejected as in single mode
//! (copied to the rejected subject with the reason) and passed over.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::StreamExt;
use signalbox_model::ErrorReply;
use signalbox_store::Incoming;
use tokio::sync::watch;

use crate::group::Group;
use crate::group::front::REPLY_HEADER;
use crate::group::names::{KIND_SIGNAL, parse_in_subject};
use crate::pipeline::partition::Partition;
use crate::shared::Shared;

/// One input message turned into a signal, with where to answer.
struct Taken {
    incoming: Incoming,
    reply: Option<String>,
}

/// Reads and stores partition `p`'s input until `stop` or until its
/// changelog writer gives up (then the owner drops the partition).
pub(crate) async fn run(
    shared: Arc<Shared>,
    group: Arc<Group>,
    partition: Arc<Partition>,
    stopped: impl Fn() -> bool + Send + 'static,
    mut stop: watch::Receiver<bool>,
) {
    let p = partition.id;
    let batch_size = shared.config.batch_size;
    let mut position = match partition.store.input_seq() {
        Ok(at) => at.unwrap_or(0),
        Err(e) => {
            tracing::error!(partition = p, error = %e, "cannot read the partition's input position");
            return;
        }
    };
    let prefix = group.names.in_prefix();
    'consumer: loop {
        if *stop.borrow() || stopped() {
            return;
        }
        let consumer = group
            .joined
            .input
            .create_consumer(consumer::pull::Config {
                filter_subject: group.names.in_filter(p),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: position + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await;
        let mut messages = match consumer {
            Ok(c) => match c
                .stream()
                .max_messages_per_batch(batch_size)
                .expires(Duration::from_secs(2))
                .heartbeat(Duration::from_secs(1))
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "cannot read the partition's input; retrying");
                    if pause_or_stop(&mut stop).await {
                        return;
                    }
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "cannot read the partition's input; retrying");
                if pause_or_stop(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let first = tokio::select! {
                m = messages.next() => m,
                _ = stop.changed() => return,
            };
            let first = match first {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(partition = p, error = %e, "input read interrupted; resuming");
                    continue 'consumer;
                }
                None => continue 'consumer,
            };
            let mut batch = vec![first];
            while batch.len() < batch_size {
                match futures::FutureExt::now_or_never(messages.next()) {
                    Some(Some(Ok(m))) => batch.push(m),
                    _ => break,
                }
            }
            let mut taken = Vec::with_capacity(batch.len());
            let mut last = position;
            for msg in batch {
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
                if seq <= position {
                    continue;
                }
                last = last.max(seq);
                if let Some(t) = take(&shared, &group, &prefix, &msg, seq).await {
                    taken.push(t);
                }
            }
            if last == position {
                continue;
            }
            match commit(&shared, &partition, taken, last).await {
                Ok(()) => position = last,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e.error.message, "partition batch not stored");
                    if stopped() {
                        return;
                    }
                    // Read again from the position: nothing was stored.
                    if pause_or_stop(&mut stop).await {
                        return;
                    }
                    continue 'consumer;
                }
            }
        }
    }
}

async fn pause_or_stop(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(500)) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Decodes one input message; `None` for a message that is refused (and
/// reported) or not a signal.
async fn take(
    shared: &Arc<Shared>,
    group: &Group,
    prefix: &str,
    msg: &async_nats::jetstream::Message,
    seq: u64,
) -> Option<Taken> {
    let subject = msg.message.subject.as_str();
    let (_, kind) = parse_in_subject(prefix, subject)?;
    let reply = msg
        .message
        .headers
        .as_ref()
        .and_then(|h| h.get(REPLY_HEADER))
        .map(|v| v.as_str().to_string());
    if kind == KIND_SIGNAL {
        return match serde_json::from_slice::<Incoming>(&msg.message.payload) {
            Ok(incoming) => Some(Taken { incoming, reply }),
            Err(e) => {
                tracing::error!(subject, error = %e, "input message is not a signal; passed over");
                None
            }
        };
    }
    // A producer's own publish, mapped onto this partition by the stream:
    // its receive time is the stream's, so every owner derives the same.
    let name_subject = kind;
    let stream = group.names.in_stream();
    let received_at_ms = msg
        .info()
        .map(|i| (i.published.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or_else(|_| crate::clock::now_ms());
    match crate::sources::nats::message::decode_raw(
        shared,
        name_subject,
        &msg.message,
        (stream.as_str(), seq),
        received_at_ms,
    ) {
        Ok(incoming) => Some(Taken {
            incoming,
            reply: None,
        }),
        Err(err) => {
            shared.metrics.reject("jetstream", &err.field);
            crate::sources::nats::message::reject_copy(shared, name_subject, &msg.message, &err)
                .await;
            None
        }
    }
}

/// Stores `taken` with input position `last` in one transaction and answers
/// the signals that asked.
async fn commit(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    let (batch, replies): (Vec<Incoming>, Vec<Option<String>>) =
        taken.into_iter().map(|t| (t.incoming, t.reply)).unzip();
    let acks = crate::pipeline::ingest::commit_at(
        &partition.committer,
        &shared.metrics,
        batch,
        Some(last),
    )
    .await?;
    for (ack, reply) in acks.iter().zip(replies) {
        if let Some(subject) = reply {
            crate::nats::reply::respond(&shared.client, subject.into(), ack).await;
        }
    }
    Ok(())
}
