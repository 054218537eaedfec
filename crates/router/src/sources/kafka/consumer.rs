//! The router's side of one Kafka source: it keeps a worker process running
//! (`worker.rs` holds the librdkafka consumer; `worker_process.rs` the handle)
//! and stores what the worker reads.
//!
//! Per batch from the worker (up to `batch_size` records, or what arrived
//! within `batch_max_wait` of the first): each record becomes an envelope for
//! the adapter; rejected records are published to the dead-letter subject;
//! the signals of all the others go through one store transaction
//! ([`crate::pipeline::ingest::commit`]); only then is the worker told the batch is
//! stored, and it commits those offsets to the group (every
//! `commit_interval`, on revoke and at shutdown). Two stages overlap: while
//! one batch is stored (on a task of its own), the next is decoded, and the
//! worker reads the one after (it hands out at most `batches_in_flight`,
//! default 2, unstored batches).
//! Invariants:
//! - batches are stored one at a time, in the order the worker read them, and
//!   acknowledged in that order;
//! - an offset is committed only after every record before it is stored or
//!   dead-lettered (a crash of the router or the worker re-reads, never skips);
//! - a signal's default id is `topic/partition/offset` (plus `/index` when one
//!   record yields several), so a re-read record is a duplicate, not a repeat;
//! - nothing here panics or stops on a bad record, a missing topic, a lost
//!   broker or a crashed worker: those are logged and retried (a worker that
//!   dies is started again with backoff), and the partition keeps moving.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signalbox_plugin::{DecodeError, Envelope, Transport, WasmAdapter};
use signalbox_store::Incoming;
use tokio::sync::watch;

use super::lag::{KafkaMetrics, LagGauges};
use super::wire::{FromWorker, Level, Record, ToWorker, VERSION};
use super::worker_process::WorkerProcess;
use crate::config::KafkaSource;
use crate::shared::Shared;
use crate::sources::adapter_output::{self, DefaultId, MessageOrigin};

/// The transport name of Kafka signals (origin, metrics).
pub(crate) const TRANSPORT: &str = "kafka";

/// Longest pause between retries of a failing step.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Longest pause before a dead worker is started again.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// A worker that ran this long before it died starts again at once.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How long a stopping worker may take to commit and leave the group.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// How one worker's run ended.
enum End {
    /// The router is shutting down.
    Shutdown,
    /// The worker cannot create its consumer (bad settings): not retried.
    Fatal(String),
    /// The source's adapter is gone.
    AdapterGone,
    /// The worker died or spoke garbage: started again.
    Died(String),
}

/// The program a worker runs as: the configured one, else this executable.
fn worker_program(shared: &Shared) -> Result<PathBuf, String> {
    match &shared.config.sources.kafka_worker {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find the running executable to start Kafka workers: {e}; set sources.kafka_worker")),
    }
}

/// Runs one source until `shutdown`: starts its worker, stores its batches,
/// and starts it again when it dies. Returns early only when the consumer
/// cannot be created (bad settings) or the adapter is missing, after logging
/// why.
pub(crate) async fn run(
    shared: Arc<Shared>,
    metrics: Arc<KafkaMetrics>,
    source: KafkaSource,
    mut shutdown: watch::Receiver<bool>,
) {
    if shared.plugins.adapter(&source.adapter).is_none() {
        tracing::error!(source = %source.name, adapter = %source.adapter, "Kafka source has no adapter; not consuming");
        return;
    }
    let program = match worker_program(&shared) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(source = %source.name, error = %e, "Kafka source not consuming");
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let end = match WorkerProcess::spawn(&program, &source.name, &source.group_id) {
            Ok(mut worker) => {
                let end = drive(&shared, &metrics.lag, &source, &mut worker, &mut shutdown).await;
                match &end {
                    End::Died(_) => {}
                    _ => {
                        worker
                            .stop(STOP_GRACE, |f| forward(&metrics.lag, &source, f))
                            .await
                    }
                }
                end
            }
            Err(e) => End::Died(format!("cannot start {}: {e}", program.display())),
        };
        match end {
            End::Shutdown => break,
            End::AdapterGone => {
                tracing::error!(source = %source.name, adapter = %source.adapter, "the Kafka source's adapter is gone; not consuming");
                return;
            }
            End::Fatal(e) => {
                tracing::error!(source = %source.name, error = %e, "cannot create the Kafka consumer; not consuming");
                return;
            }
            End::Died(why) => {
                metrics.worker_restarts.inc();
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = Duration::from_secs(1);
                }
                // The dead worker stays a member of the group until its
                // session times out; its partitions move only then, whoever
                // joins earlier. A worker that joins before that (tansu's
                // coordinator, at least) can be left with no partitions, so
                // the new one waits the session out.
                let wait = backoff.max(source.session_timeout() + Duration::from_secs(1));
                tracing::error!(source = %source.name, reason = %why, "Kafka worker died; starting it again in {wait:?}, once its group session has expired (records stored but not committed are read again and taken as duplicates)");
                if sleep_or_shutdown(wait, &mut shutdown).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
            }
        }
    }
    tracing::info!(source = %source.name, "Kafka source stopped");
}

/// Offsets to commit: topic, partition, next offset.
type Offsets = Vec<(String, i32, i64)>;

/// The batch being stored, on a task of its own, while the next one is
/// decoded; aborted when the worker's run ends (its records are then read
/// again and taken as duplicates).
struct Storing(Option<tokio::task::JoinHandle<Option<Offsets>>>);

impl Storing {
    /// How the batch being stored ended: `Ok(Some(offsets))` stored, with the
    /// offsets to acknowledge; `Ok(None)` interrupted by shutdown; `Err` the
    /// task failed. Pending forever when nothing is being stored.
    async fn done(&mut self) -> Result<Option<Offsets>, String> {
        let Some(task) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        let end = task
            .await
            .map_err(|e| format!("the Kafka store task failed: {e}"));
        self.0 = None;
        end
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Tells the worker a batch is stored; the end of the run when it was not.
fn acknowledge(worker: &mut WorkerProcess, done: Result<Option<Offsets>, String>) -> Option<End> {
    match done {
        // A failed write shows as the worker's end at the next recv.
        Ok(Some(offsets)) => {
            let _ = worker.send(&ToWorker::Stored(offsets));
            None
        }
        Ok(None) => Some(End::Shutdown),
        Err(e) => Some(End::Died(e)),
    }
}

/// Talks to one worker until it ends or the router shuts down. Batches are
/// stored one at a time, in the order the worker sent them; the next one is
/// decoded meanwhile (the worker hands out at most `batches_in_flight`
/// unstored batches).
async fn drive(
    shared: &Arc<Shared>,
    lag: &LagGauges,
    source: &KafkaSource,
    worker: &mut WorkerProcess,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let start = ToWorker::Start {
        version: VERSION,
        source_json: match serde_json::to_string(source) {
            Ok(j) => j,
            Err(e) => return End::Fatal(format!("cannot serialize the source settings: {e}")),
        },
    };
    // A failed write shows as the worker's end below.
    let _ = worker.send(&start);
    let shared_source = Arc::new(source.clone());
    let mut storing = Storing(None);
    let mut ready = false;
    loop {
        let frame = tokio::select! {
            _ = shutdown.changed() => return End::Shutdown,
            done = storing.done() => {
                if let Some(end) = acknowledge(worker, done) {
                    return end;
                }
                continue;
            }
            f = worker.frames.recv() => f,
        };
        let frame = match frame {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                let why = worker.exit_reason(Duration::from_millis(100)).await;
                return End::Died(format!("{e}; {why}"));
            }
            None => {
                let why = worker.exit_reason(Duration::from_secs(5)).await;
                return End::Died(if ready {
                    why
                } else {
                    format!("{why} before it started consuming (is it a signalbox binary?)")
                });
            }
        };
        match frame {
            FromWorker::Ready => {
                ready = true;
                tracing::info!(source = %source.name, brokers = ?source.brokers, topics = ?source.topics, group = %source.group_id, "Kafka source consuming");
            }
            FromWorker::Fatal(e) => return End::Fatal(e),
            FromWorker::Records(batch) => {
                tracing::debug!(source = %source.name, records = batch.len(), "Kafka batch received");
                // Looked up per batch: a deploy or rollback takes effect at the
                // next batch; this one finishes on the version it started
                // with. Removing an adapter a source uses is refused.
                let Some(adapter) = shared.plugins.adapter(&source.adapter) else {
                    return End::AdapterGone;
                };
                // Decode while the batch before is stored; acknowledge that
                // one as soon as it is.
                let fates = {
                    let mut decode_shutdown = shutdown.clone();
                    let decode = decode_batch(source, &adapter, &batch, &mut decode_shutdown);
                    tokio::pin!(decode);
                    loop {
                        tokio::select! {
                            fates = &mut decode => break fates,
                            done = storing.done() => {
                                if let Some(end) = acknowledge(worker, done) {
                                    return end;
                                }
                            }
                        }
                    }
                };
                let Some(fates) = fates else {
                    return End::Shutdown;
                };
                // One batch stored at a time, in order.
                if storing.0.is_some() {
                    let done = tokio::select! {
                        _ = shutdown.changed() => return End::Shutdown,
                        done = storing.done() => done,
                    };
                    if let Some(end) = acknowledge(worker, done) {
                        return end;
                    }
                }
                let offsets = next_offsets(&batch);
                storing.0 = Some(tokio::spawn(store(
                    shared.clone(),
                    shared_source.clone(),
                    adapter,
                    batch,
                    fates,
                    shutdown.clone(),
                    offsets,
                )));
            }
            other => forward(lag, source, other),
        }
    }
}

/// Passes a worker's log line or lag report on.
fn forward(lag: &LagGauges, source: &KafkaSource, frame: FromWorker) {
    match frame {
        FromWorker::Log {
            level,
            facility,
            message,
        } => {
            let source = source.name.as_str();
            let fac = facility.as_str();
            match level {
                Level::Error => tracing::error!(source, fac, "{message}"),
                Level::Warn => tracing::warn!(source, fac, "{message}"),
                Level::Info => tracing::info!(source, fac, "{message}"),
                Level::Debug => tracing::debug!(source, fac, "{message}"),
            }
        }
        FromWorker::Lag(report) => lag.replace(&source.name, report),
        FromWorker::Ready | FromWorker::Fatal(_) | FromWorker::Records(_) => {
            tracing::debug!(source = %source.name, "Kafka worker frame ignored while stopping");
        }
    }
}

/// Per partition, the offset after the batch's last record.
fn next_offsets(batch: &[Record]) -> Offsets {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for r in batch {
        let e = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    next.into_iter()
        .map(|((t, p), n)| (t.to_string(), p, n))
        .collect()
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

/// Stores one decoded batch (its rejected records dead-lettered first) and
/// returns `offsets`, the ones to acknowledge; None when shutdown
/// interrupted it (nothing committed past what is stored; the rest is read
/// again after restart).
async fn store(
    shared: Arc<Shared>,
    source: Arc<KafkaSource>,
    adapter: Arc<WasmAdapter>,
    batch: Vec<Record>,
    fates: Vec<Fate>,
    mut shutdown: watch::Receiver<bool>,
    offsets: Offsets,
) -> Option<Offsets> {
    process(&shared, &source, &adapter, &batch, fates, &mut shutdown)
        .await
        .then_some(offsets)
}

/// Handles one decoded batch; false when shutdown interrupted it.
async fn process(
    shared: &Arc<Shared>,
    source: &KafkaSource,
    adapter: &Arc<WasmAdapter>,
    batch: &[Record],
    fates: Vec<Fate>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let m = &shared.metrics;
    let mut signals = Vec::new();
    for (record, fate) in batch.iter().zip(fates) {
        match fate {
            Fate::Signals(s) => signals.extend(s),
            Fate::Rejected(reason) => {
                m.reject(TRANSPORT, "adapter");
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
                None => match decode_batch(source, adapter, batch, shutdown).await {
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
            match shared.commit(attempt).await {
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
    m.received(TRANSPORT, count);
    true
}

fn envelope(source: &KafkaSource, r: &Record) -> Envelope {
    let mut env = Envelope::new(
        Transport::Kafka,
        &r.topic,
        r.payload.clone().unwrap_or_default(),
    );
    env.key = r
        .key
        .as_deref()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    for (key, value) in &r.headers {
        let value = value
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        env.headers.push((key.clone(), value.into_owned()));
    }
    env.metadata = vec![
        ("source".into(), source.name.clone()),
        ("topic".into(), r.topic.clone()),
        ("partition".into(), r.partition.to_string()),
        ("offset".into(), r.offset.to_string()),
    ];
    if let Some(ts) = r.timestamp_ms {
        env.metadata.push(("timestamp".into(), ts.to_string()));
    }
    env
}

fn coordinates(r: &Record) -> String {
    format!("{}/{}/{}", r.topic, r.partition, r.offset)
}

/// Decodes every record; None when shutdown interrupted a retry.
async fn decode_batch(
    source: &KafkaSource,
    adapter: &Arc<WasmAdapter>,
    batch: &[Record],
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
    r: &Record,
    signals: Vec<signalbox_model::Signal>,
) -> Vec<Incoming> {
    let at = coordinates(r);
    let traceparent = r.headers.iter().find_map(|(key, value)| {
        key.eq_ignore_ascii_case("traceparent")
            .then(|| value.as_deref().and_then(|v| std::str::from_utf8(v).ok()))
            .flatten()
    });
    adapter_output::incoming(
        signals,
        MessageOrigin {
            transport: TRANSPORT,
            address: r.topic.clone(),
            adapter: &source.adapter,
            details: BTreeMap::from([
                ("partition".to_string(), r.partition.to_string()),
                ("offset".to_string(), r.offset.to_string()),
                ("source".to_string(), source.name.clone()),
            ]),
            traceparent,
            default_id: DefaultId::Message(&at),
            received_at_ms: crate::clock::now_ms(),
        },
    )
}

/// Publishes a rejected record to the dead-letter subject (retrying while
/// NATS is away); false when shutdown interrupted it.
async fn dead_letter(
    shared: &Shared,
    source: &KafkaSource,
    r: &Record,
    reason: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tracing::warn!(source = %source.name, record = %coordinates(r), %reason, "Kafka record dead-lettered");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Signalbox-Error", reason);
    headers.insert("Kafka-Source", source.name.as_str());
    headers.insert("Kafka-Topic", r.topic.as_str());
    headers.insert("Kafka-Partition", r.partition.to_string().as_str());
    headers.insert("Kafka-Offset", r.offset.to_string().as_str());
    if let Some(k) = r.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) {
        headers.insert("Kafka-Key", k);
    }
    let body = bytes::Bytes::copy_from_slice(r.payload.as_deref().unwrap_or_default());
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
