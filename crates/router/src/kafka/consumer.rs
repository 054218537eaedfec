//! The consume loop of one Kafka source.
//!
//! Per batch (up to `batch_size` records, or what arrived within
//! `batch_max_wait` of the first): each record becomes an envelope for the
//! adapter; rejected records are published to the dead-letter subject; the
//! signals of all the others go through one store transaction
//! ([`crate::ingest::commit`]); only then are the batch's offsets noted as
//! pending, and pending offsets are committed to the group every
//! `commit_interval`, on revoke and at shutdown. Invariants:
//! - an offset is committed only after every record before it is stored or
//!   dead-lettered (a crash re-reads, never skips);
//! - a signal's default id is `topic/partition/offset` (plus `/index` when one
//!   record yields several), so a re-read record is a duplicate, not a repeat;
//! - nothing here panics or stops on a bad record, a missing topic or a lost
//!   broker: those are logged and retried, and the partition keeps moving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use signalbox_plugin::{DecodeError, Envelope, Transport, WasmAdapter};
use signalbox_store::Incoming;
use tokio::sync::watch;

use super::config::KafkaSource;
use super::context::SourceContext;
use crate::shared::Shared;

type SourceConsumer = StreamConsumer<SourceContext>;

/// Longest pause between retries of a failing step.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs one source until `shutdown`; returns early only if the consumer
/// cannot be created (bad settings), after logging why.
pub(crate) async fn run(
    shared: Arc<Shared>,
    source: KafkaSource,
    mut shutdown: watch::Receiver<bool>,
) {
    if shared.plugins.adapter(&source.adapter).is_none() {
        tracing::error!(source = %source.name, adapter = %source.adapter, "Kafka source has no adapter; not consuming");
        return;
    }
    let consumer = match create(&shared, &source) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(source = %source.name, error = %e, "cannot create the Kafka consumer; not consuming");
            return;
        }
    };
    tracing::info!(source = %source.name, brokers = ?source.brokers, topics = ?source.topics, group = %source.group_id, "Kafka source consuming");
    let mut missing_topic_logged: Option<std::time::Instant> = None;
    let mut last_commit = std::time::Instant::now();
    loop {
        // While idle, pending offsets are still committed on time.
        let idle_commit = tokio::time::sleep(source.commit_interval.max(Duration::from_millis(10)));
        let first = tokio::select! {
            _ = shutdown.changed() => break,
            r = consumer.recv() => r.map(|m| m.detach()),
            _ = idle_commit => {
                commit_pending(&source, &consumer, CommitMode::Async);
                last_commit = std::time::Instant::now();
                continue;
            }
        };
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                log_recv_error(&source, &e, &mut missing_topic_logged);
                if sleep_or_shutdown(Duration::from_millis(500), &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + source.batch_max_wait;
        while batch.len() < source.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                Ok(Err(e)) => {
                    log_recv_error(&source, &e, &mut missing_topic_logged);
                    break;
                }
                Err(_) => break,
            }
        }
        tracing::debug!(source = %source.name, records = batch.len(), "Kafka batch received");
        // Looked up per batch: a deploy or rollback takes effect at the next
        // batch; this one finishes on the version it started with. Removing
        // an adapter a source uses is refused, so it is always there.
        let Some(adapter) = shared.plugins.adapter(&source.adapter) else {
            tracing::error!(source = %source.name, adapter = %source.adapter, "the Kafka source's adapter is gone; not consuming");
            break;
        };
        if !process(&shared, &source, &adapter, &consumer, batch, &mut shutdown).await {
            break;
        }
        if last_commit.elapsed() >= source.commit_interval {
            commit_pending(&source, &consumer, CommitMode::Async);
            last_commit = std::time::Instant::now();
        }
    }
    commit_pending(&source, &consumer, CommitMode::Sync);
    // Leave the group now so the partitions move to the other members at once.
    consumer.unsubscribe();
    tracing::info!(source = %source.name, "Kafka source stopped");
}

fn create(shared: &Shared, source: &KafkaSource) -> Result<SourceConsumer, String> {
    let config = source.client_config().map_err(|e| e.to_string())?;
    let context = SourceContext {
        source: source.name.clone(),
        lag: shared.kafka_lag.clone(),
        pending: Default::default(),
    };
    let consumer: SourceConsumer = config
        .create_with_context(context)
        .map_err(|e| e.to_string())?;
    let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| e.to_string())?;
    Ok(consumer)
}

fn log_recv_error(
    source: &KafkaSource,
    e: &KafkaError,
    missing_logged: &mut Option<std::time::Instant>,
) {
    let missing = matches!(
        e,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
        )
    );
    if missing {
        // Said once a minute: the topic may simply not exist yet.
        if missing_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            tracing::warn!(source = %source.name, topics = ?source.topics, error = %e, "Kafka topic does not exist (yet); waiting for it");
            *missing_logged = Some(std::time::Instant::now());
        }
    } else {
        tracing::warn!(source = %source.name, error = %e, "Kafka receive failed; retrying");
    }
}

/// Sleeps, or returns true early when shutdown is asked for.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

/// What became of one record.
enum Fate {
    /// Its signals (possibly none, e.g. a tombstone).
    Signals(Vec<Incoming>),
    /// Rejected: dead-letter it with this reason.
    Rejected(String),
}

/// Handles one batch; false when shutdown interrupted it (nothing committed
/// past what is stored; the rest is read again after restart).
async fn process(
    shared: &Arc<Shared>,
    source: &KafkaSource,
    adapter: &Arc<WasmAdapter>,
    consumer: &SourceConsumer,
    batch: Vec<OwnedMessage>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let Some(fates) = decode_batch(source, adapter, &batch, shutdown).await else {
        return false;
    };
    let m = &shared.metrics;
    let mut signals = Vec::new();
    for (record, fate) in batch.iter().zip(fates) {
        match fate {
            Fate::Signals(s) => signals.extend(s),
            Fate::Rejected(reason) => {
                m.reject("kafka", "adapter");
                if !dead_letter(shared, source, record, &reason, shutdown).await {
                    return false;
                }
            }
        }
    }
    let count = signals.len() as u64;
    if !signals.is_empty() {
        let mut backoff = Duration::from_millis(100);
        let mut first = Some(signals);
        loop {
            let attempt = match first.take() {
                Some(signals) => signals,
                // The first attempt consumed the batch; only after a store
                // failure is it decoded again, so the usual path copies nothing.
                None => match decode_batch(source, adapter, &batch, shutdown).await {
                    Some(fates) => fates
                        .into_iter()
                        .flat_map(|fate| match fate {
                            Fate::Signals(s) => s,
                            Fate::Rejected(_) => Vec::new(),
                        })
                        .collect(),
                    None => return false,
                },
            };
            match crate::ingest::commit(shared, attempt).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(source = %source.name, error = %e.error.message, "Kafka batch not stored; retrying");
                    if sleep_or_shutdown(backoff, shutdown).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    m.add(&m.received_kafka, count);
    note_offsets(consumer, &batch);
    true
}

/// Notes, per partition, the offset after the batch's last record as
/// pending: it is committed by the next [`commit_pending`].
fn note_offsets(consumer: &SourceConsumer, batch: &[OwnedMessage]) {
    let Ok(mut pending) = consumer.context().pending.lock() else {
        return;
    };
    for r in batch {
        let e = pending
            .entry((r.topic().to_string(), r.partition()))
            .or_insert(0);
        *e = (*e).max(r.offset() + 1);
    }
}

/// Commits the pending offsets of stored records.
fn commit_pending(source: &KafkaSource, consumer: &SourceConsumer, mode: CommitMode) {
    let list = consumer.context().take_pending(|_, _| true);
    if list.count() == 0 {
        return;
    }
    // A lost commit only means a re-read, which dedup absorbs.
    if let Err(e) = consumer.commit(&list, mode) {
        tracing::info!(source = %source.name, error = %e, "Kafka offset commit not sent");
    }
}

fn envelope(source: &KafkaSource, r: &OwnedMessage) -> Envelope {
    let mut env = Envelope::new(
        Transport::Kafka,
        r.topic(),
        r.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    );
    env.key = r.key().map(|k| String::from_utf8_lossy(k).into_owned());
    if let Some(headers) = r.headers() {
        for h in headers.iter() {
            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
            env.headers.push((h.key.to_string(), value.into_owned()));
        }
    }
    env.metadata = vec![
        ("source".into(), source.name.clone()),
        ("topic".into(), r.topic().to_string()),
        ("partition".into(), r.partition().to_string()),
        ("offset".into(), r.offset().to_string()),
    ];
    if let Some(ts) = r.timestamp().to_millis() {
        env.metadata.push(("timestamp".into(), ts.to_string()));
    }
    env
}

fn coordinates(r: &OwnedMessage) -> String {
    format!("{}/{}/{}", r.topic(), r.partition(), r.offset())
}

/// Decodes every record; None when shutdown interrupted a retry.
async fn decode_batch(
    source: &KafkaSource,
    adapter: &Arc<WasmAdapter>,
    batch: &[OwnedMessage],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Vec<Fate>> {
    let envelopes: Vec<Envelope> = batch.iter().map(|r| envelope(source, r)).collect();
    let a = adapter.clone();
    let first = tokio::task::spawn_blocking(move || {
        let results: Vec<_> = envelopes.iter().map(|e| a.decode(e)).collect();
        (envelopes, results)
    })
    .await;
    let (envelopes, results) = match first {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(source = %source.name, error = %e, "Kafka decode worker failed; decoding one by one");
            let envelopes: Vec<Envelope> = batch.iter().map(|r| envelope(source, r)).collect();
            let results = envelopes
                .iter()
                .map(|_| Err(DecodeError::Retry("the decode worker failed".to_string())))
                .collect();
            (envelopes, results)
        }
    };
    let mut fates = Vec::with_capacity(batch.len());
    for ((record, env), result) in batch.iter().zip(envelopes).zip(results) {
        let mut result = result;
        let mut failed_calls = 0u32;
        let mut backoff = Duration::from_millis(100);
        let env = Arc::new(env);
        loop {
            match result {
                Ok(signals) => {
                    fates.push(Fate::Signals(incoming(source, record, signals)));
                    break;
                }
                Err(DecodeError::Reject(reason)) => {
                    fates.push(Fate::Rejected(format!("the adapter rejected it: {reason}")));
                    break;
                }
                Err(
                    e @ (DecodeError::InvalidSignal { .. } | DecodeError::TooManySignals { .. }),
                ) => {
                    fates.push(Fate::Rejected(e.to_string()));
                    break;
                }
                Err(e) => {
                    let poison = matches!(&e, DecodeError::Call(c) if c.kind() != "quarantined");
                    if poison {
                        failed_calls += 1;
                        if failed_calls >= source.max_decode_attempts {
                            fates.push(Fate::Rejected(format!(
                                "the adapter failed {failed_calls} times on it: {e}"
                            )));
                            break;
                        }
                    }
                    tracing::warn!(source = %source.name, record = %coordinates(record), error = %e, "Kafka record not decoded; retrying");
                    if sleep_or_shutdown(backoff, shutdown).await {
                        return None;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    let a = adapter.clone();
                    let env2 = env.clone();
                    result = tokio::task::spawn_blocking(move || a.decode(&env2))
                        .await
                        .unwrap_or_else(|e| {
                            Err(DecodeError::Retry(format!("decode worker failed: {e}")))
                        });
                }
            }
        }
    }
    Some(fates)
}

/// The adapter's signals of one record, ids defaulted to its coordinates.
fn incoming(
    source: &KafkaSource,
    r: &OwnedMessage,
    signals: Vec<signalbox_model::Signal>,
) -> Vec<Incoming> {
    let several = signals.len() > 1;
    let at = coordinates(r);
    let now = crate::clock::now_ms();
    let traceparent = r.headers().and_then(|hs| {
        hs.iter().find_map(|h| {
            (h.key.eq_ignore_ascii_case("traceparent"))
                .then(|| h.value.and_then(|v| std::str::from_utf8(v).ok()))
                .flatten()
                .filter(|v| crate::ingest::valid_traceparent(v))
                .map(str::to_string)
        })
    });
    signals
        .into_iter()
        .enumerate()
        .map(|(i, mut signal)| {
            if signal.id.is_none() {
                signal.id = Some(if several {
                    format!("{at}/{i}")
                } else {
                    at.clone()
                });
            }
            let mut details = BTreeMap::new();
            details.insert("partition".to_string(), r.partition().to_string());
            details.insert("offset".to_string(), r.offset().to_string());
            details.insert("source".to_string(), source.name.clone());
            if let Some(tp) = &traceparent {
                details.insert(signalbox_model::Firing::TRACEPARENT.to_string(), tp.clone());
            }
            Incoming {
                signal,
                origin: signalbox_model::Origin {
                    transport: "kafka".into(),
                    address: Some(r.topic().to_string()),
                    adapter: Some(source.adapter.clone()),
                    details,
                },
                received_at_ms: now,
            }
        })
        .collect()
}

/// Publishes a rejected record to the dead-letter subject (retrying while
/// NATS is away); false when shutdown interrupted it.
async fn dead_letter(
    shared: &Shared,
    source: &KafkaSource,
    r: &OwnedMessage,
    reason: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tracing::warn!(source = %source.name, record = %coordinates(r), %reason, "Kafka record dead-lettered");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Signalbox-Error", reason);
    headers.insert("Kafka-Source", source.name.as_str());
    headers.insert("Kafka-Topic", r.topic());
    headers.insert("Kafka-Partition", r.partition().to_string().as_str());
    headers.insert("Kafka-Offset", r.offset().to_string().as_str());
    if let Some(k) = r.key().and_then(|k| std::str::from_utf8(k).ok()) {
        headers.insert("Kafka-Key", k);
    }
    let body = bytes::Bytes::copy_from_slice(r.payload().unwrap_or_default());
    let mut backoff = Duration::from_millis(100);
    loop {
        let sent = async {
            shared
                .client
                .publish_with_headers(
                    source.dead_letter_subject.clone(),
                    headers.clone(),
                    body.clone(),
                )
                .await
                .map_err(|e| e.to_string())?;
            shared.client.flush().await.map_err(|e| e.to_string())
        }
        .await;
        match sent {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(source = %source.name, error = %e, "dead-letter publish failed; retrying");
                if sleep_or_shutdown(backoff, shutdown).await {
                    return false;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
