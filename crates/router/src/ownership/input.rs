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
use signalbox_store::{Incoming, PlanContext};
use tokio::sync::watch;

use crate::group::Group;
use crate::group::front::REPLY_HEADER;
use crate::group::names::{
    KIND_OFFER, KIND_SIGNAL, KIND_UNWATCH, KIND_WAIT, KIND_WAIT_OFFER, KIND_WATCH, parse_in_subject,
};
use crate::nats::stream_position::stream_seq;
use crate::pipeline::catalog::remote::{RemoteOffer, read_offer, read_unwatch, read_watch};
use crate::pipeline::partition::Partition;
use crate::shared::Shared;

/// One input message, decoded.
enum Taken {
    /// A signal, with where to answer.
    Signal {
        incoming: Incoming,
        reply: Option<String>,
    },
    /// A join side for this (the join's) partition.
    Offer(RemoteOffer),
    /// A wait registration for this (the wait's) partition, or a watch of
    /// another partition's wait (no reply).
    Wait {
        wait: Box<signalbox_model::Wait>,
        reply: Option<String>,
    },
    /// A match of a watched side, for its wait in this partition.
    WaitOffer(RemoteOffer),
    /// The end of a watch in this partition: its wait was answered.
    Unwatch(String),
}

impl Taken {
    /// How its run is stored: 0 signals, 1 join offers, 2 waits and
    /// watches, 3 wait offers, 4 ends of watches.
    fn kind(&self) -> u8 {
        match self {
            Taken::Signal { .. } => 0,
            Taken::Offer(_) => 1,
            Taken::Wait { .. } => 2,
            Taken::WaitOffer(_) => 3,
            Taken::Unwatch(_) => 4,
        }
    }
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
            if let Some(info) = batch.last().and_then(|m| m.info().ok()) {
                partition
                    .input_pending
                    .store(info.pending, std::sync::atomic::Ordering::Relaxed);
            }
            // Runs of one kind, each stored with the position of its last
            // message, in input order.
            let mut runs: Vec<(u8, Vec<Taken>, u64)> = Vec::new();
            for msg in batch {
                let seq = stream_seq(&msg);
                if seq <= position {
                    continue;
                }
                let taken = take(&shared, &group, &prefix, &msg, seq).await;
                let kind = taken.as_ref().map_or(0, Taken::kind);
                match runs.last_mut() {
                    Some((k, items, last)) if *k == kind => {
                        items.extend(taken);
                        *last = seq;
                    }
                    _ => runs.push((kind, taken.into_iter().collect(), seq)),
                }
            }
            for (kind, items, last) in runs {
                let stored = match kind {
                    1 => offers(&shared, &partition, items, last).await,
                    2 => waits(&shared, &partition, items, last).await,
                    3 => wait_offers(&shared, &partition, items, last).await,
                    4 => unwatch(&shared, &partition, items, last).await,
                    _ => commit(&shared, &partition, items, last).await,
                };
                match stored {
                    Ok(()) => position = last,
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e.error.message, "partition batch not stored");
                        if stopped() {
                            return;
                        }
                        // Read again from the position: nothing after it was stored.
                        if pause_or_stop(&mut stop).await {
                            return;
                        }
                        continue 'consumer;
                    }
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
            Ok(incoming) => Some(Taken::Signal { incoming, reply }),
            Err(e) => {
                tracing::error!(subject, error = %e, "input message is not a signal; passed over");
                None
            }
        };
    }
    if kind == KIND_OFFER {
        return match serde_json::from_slice::<signalbox_model::Firing>(&msg.message.payload)
            .ok()
            .as_ref()
            .and_then(read_offer)
        {
            Some(offer) => Some(Taken::Offer(offer)),
            None => {
                tracing::error!(subject, "input message is not a join offer; passed over");
                None
            }
        };
    }
    if kind == KIND_WAIT {
        return match serde_json::from_slice::<signalbox_model::Wait>(&msg.message.payload) {
            Ok(wait) => Some(Taken::Wait {
                wait: Box::new(wait),
                reply,
            }),
            Err(e) => {
                tracing::error!(subject, error = %e, "input message is not a wait; passed over");
                None
            }
        };
    }
    if kind == KIND_WATCH || kind == KIND_WAIT_OFFER || kind == KIND_UNWATCH {
        return take_watch(subject, kind, &msg.message.payload);
    }
    if kind.starts_with('_') {
        tracing::debug!(
            subject,
            "input message of a kind this version does not take; passed over"
        );
        return None;
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
        Ok(incoming) => Some(Taken::Signal {
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

/// Decodes a watch, a wait offer or the end of a watch (internal firings
/// one partition's outbox sent to another; `catalog/remote.rs`).
fn take_watch(subject: &str, kind: &str, payload: &[u8]) -> Option<Taken> {
    let firing = serde_json::from_slice::<signalbox_model::Firing>(payload).ok();
    let taken = firing.as_ref().and_then(|f| match kind {
        KIND_WATCH => read_watch(f).map(|wait| Taken::Wait {
            wait: Box::new(wait),
            reply: None,
        }),
        KIND_WAIT_OFFER => read_offer(f).map(Taken::WaitOffer),
        _ => read_unwatch(f).map(Taken::Unwatch),
    });
    if taken.is_none() {
        tracing::error!(subject, "input message is not a {kind} firing; passed over");
    }
    taken
}

/// Stores `taken` with input position `last` in one transaction and answers
/// the signals that asked.
async fn commit(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    let (batch, replies): (Vec<Incoming>, Vec<Option<String>>) = taken
        .into_iter()
        .filter_map(|t| match t {
            Taken::Signal { incoming, reply } => Some((incoming, reply)),
            _ => None,
        })
        .unzip();
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

/// Takes join offers (this is their join's partition) with input position
/// `last` in one transaction, and wakes the outbox for the joins they
/// completed.
async fn offers(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    let offers = remote_offers(taken, false);
    let catalog = shared.catalog.clone();
    let now = crate::clock::now_ms();
    let written = plan_at(partition, last, "join offers", move |ctx| {
        catalog.plan_offers(&offers, ctx, now)
    })
    .await?;
    shared
        .metrics
        .add(&shared.metrics.firings_created, written as u64);
    Ok(())
}

/// Registers waits (this is their partition) and answers each registration;
/// then records input position `last`. A registration is idempotent by wait
/// id, so one taken again after a crash answers with the stored wait.
async fn waits(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    for t in taken {
        let Taken::Wait { wait, reply } = t else {
            continue;
        };
        let (store, catalog) = (partition.store.clone(), shared.catalog.clone());
        let done = tokio::task::spawn_blocking(move || {
            crate::pipeline::waits::register(&store, &catalog, *wait, crate::clock::now_ms())
        })
        .await
        .map_err(|e| ErrorReply::unavailable(e.to_string()))?;
        let answer = match done {
            Ok(done) => {
                if done.answered_now {
                    partition.outbox_wake.notify_one();
                }
                serde_json::json!({ "wait": done.record })
            }
            Err(e) if e.error.code == "invalid" => serde_json::to_value(&e).unwrap_or_default(),
            Err(e) => return Err(e),
        };
        if let Some(subject) = reply {
            crate::nats::reply::respond(&shared.client, subject.into(), &answer).await;
        }
    }
    plan_at(partition, last, "input position", |_| Vec::new()).await?;
    Ok(())
}

/// Takes wait offers (this is their wait's partition) with input position
/// `last` in one transaction: answers the waits they complete, ends those
/// waits' watches, and wakes the outbox.
async fn wait_offers(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    let offers = remote_offers(taken, true);
    let (catalog, w) = (shared.catalog.clone(), partition.id);
    let settled = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = settled.clone();
    let now = crate::clock::now_ms();
    plan_at(partition, last, "wait offers", move |ctx| {
        let (firings, answered) =
            crate::pipeline::waits::take_wait_offers(&catalog, w, &offers, ctx, now);
        *done.lock().unwrap_or_else(|e| e.into_inner()) = answered;
        firings
    })
    .await?;
    let settled = std::mem::take(&mut *settled.lock().unwrap_or_else(|e| e.into_inner()));
    for id in &settled {
        tracing::info!(wait = %id, "wait satisfied");
        shared.catalog.remove_wait(id);
    }
    Ok(())
}

/// Ends watches (their waits were answered in their own partitions), then
/// records input position `last`. Ending a watch that has ended is a no-op.
async fn unwatch(
    shared: &Arc<Shared>,
    partition: &Partition,
    taken: Vec<Taken>,
    last: u64,
) -> Result<(), ErrorReply> {
    for t in taken {
        let Taken::Unwatch(id) = t else {
            continue;
        };
        let (store, catalog) = (partition.store.clone(), shared.catalog.clone());
        let now = crate::clock::now_ms();
        let state = signalbox_model::WaitState::Cancelled { at_ms: now };
        tokio::task::spawn_blocking(move || {
            crate::pipeline::waits::settle(&store, &catalog, &id, state, now)
        })
        .await
        .map_err(|e| ErrorReply::unavailable(e.to_string()))?
        .map_err(|e| ErrorReply::unavailable(format!("watch not ended: {e}")))?;
    }
    partition.outbox_wake.notify_one();
    plan_at(partition, last, "input position", |_| Vec::new()).await?;
    Ok(())
}

/// Runs `plan` in one transaction of `partition`'s store that also records
/// input position `last`, off the async threads; `what` names the work in an
/// error. Wakes the outbox when it wrote firings; returns how many.
async fn plan_at(
    partition: &Partition,
    last: u64,
    what: &'static str,
    mut plan: impl FnMut(&mut PlanContext<'_, '_>) -> Vec<signalbox_model::Firing> + Send + 'static,
) -> Result<usize, ErrorReply> {
    let store = partition.store.clone();
    let written = tokio::task::spawn_blocking(move || store.run_plan_at(Some(last), &mut plan))
        .await
        .map_err(|e| ErrorReply::unavailable(e.to_string()))?
        .map_err(|e| ErrorReply::unavailable(format!("{what} not stored: {e}")))?;
    if !written.is_empty() {
        partition.outbox_wake.notify_one();
    }
    Ok(written.len())
}

/// The join offers (`of_waits` false) or wait offers (true) among `taken`.
fn remote_offers(taken: Vec<Taken>, of_waits: bool) -> Vec<RemoteOffer> {
    taken
        .into_iter()
        .filter_map(|t| match t {
            Taken::Offer(o) if !of_waits => Some(o),
            Taken::WaitOffer(o) if of_waits => Some(o),
            _ => None,
        })
        .collect()
}
