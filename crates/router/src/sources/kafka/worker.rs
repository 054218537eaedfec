//! The Kafka worker: the process that holds one source's librdkafka consumer
//! (`signalbox kafka-worker`, started by the router with pipes on its stdin
//! and stdout; frames in `wire.rs`).
//!
//! Why a process: librdkafka is C, and a crash inside it (one is known in
//! 2.12.1 when a broker comes back empty; see docs/DECISIONS.md) must not
//! take the router, its store and its other sources down. The router
//! restarts a worker that dies; the new one resumes from the group's
//! committed offsets, and dedup absorbs what is read again.
//!
//! Invariants:
//! - lock step: after sending a batch the worker reads no more records (and
//!   so runs no rebalance callback) until the router says the batch is
//!   `Stored`; so when partitions are revoked, every record handed out is
//!   stored and its offset is committed before the partitions move;
//! - an offset is committed only after the router said it is stored;
//! - the worker exits when the router says `Stop` or closes the pipe (the
//!   router died): it commits what is stored, leaves the group, and a
//!   watchdog ends it after [`EXIT_GRACE`] if the broker does not answer;
//! - nothing but frames is written to stdout.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Statistics, TopicPartitionList};
use tokio::sync::mpsc;

use super::wire::{self, FromWorker, Level, Record, ToWorker};
use crate::config::KafkaSource;

/// How long an exiting worker may spend committing and leaving the group.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Runs a worker on this process's stdin and stdout; the `signalbox
/// kafka-worker` subcommand calls this and nothing else.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("signalbox kafka-worker: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run());
    // The consumer is dropped inside `run`; librdkafka's threads may still be
    // closing: the watchdog (if armed) bounds that.
    code
}

/// Writes frames to stdout; a write that fails means the router is gone, and
/// then the worker exits at once (nothing to commit for a router that died
/// before hearing about the records).
fn send(frame: &FromWorker) {
    let bytes = frame.encode();
    let mut out = std::io::stdout().lock();
    if wire::write_frame(&mut out, &bytes).is_err() {
        std::process::exit(0);
    }
}

fn log(level: Level, facility: &str, message: String) {
    send(&FromWorker::Log {
        level,
        facility: facility.to_string(),
        message,
    });
}

/// Reads frames from stdin on a thread of its own; the channel closes when
/// the router closes the pipe (or writes something that is not a frame).
fn read_stdin() -> mpsc::UnboundedReceiver<ToWorker> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match wire::read_to_worker(&mut stdin) {
                Ok(Some(frame)) => {
                    if tx.send(frame).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    log(Level::Error, "", format!("bad frame from the router: {e}"));
                    return;
                }
            }
        }
    });
    rx
}

async fn run() -> ExitCode {
    let mut commands = read_stdin();
    let source = match commands.recv().await {
        Some(ToWorker::Start {
            version,
            source_json,
        }) if version == wire::VERSION => match serde_json::from_str::<KafkaSource>(&source_json) {
            Ok(s) => s,
            Err(e) => {
                send(&FromWorker::Fatal(
                    wire::WireError::Settings(e.to_string()).to_string(),
                ));
                return ExitCode::from(2);
            }
        },
        Some(ToWorker::Start { version, .. }) => {
            send(&FromWorker::Fatal(format!(
                "the router speaks worker protocol {version}, this worker {}: use the same signalbox binary",
                wire::VERSION
            )));
            return ExitCode::from(2);
        }
        _ => {
            eprintln!(
                "signalbox kafka-worker: this command is started by the router (signalbox serve), not by hand"
            );
            return ExitCode::from(2);
        }
    };
    let consumer = match create(&source) {
        Ok(c) => c,
        Err(e) => {
            send(&FromWorker::Fatal(e));
            return ExitCode::from(1);
        }
    };
    send(&FromWorker::Ready);
    consume(&source, &consumer, &mut commands).await;
    // From here on the worker only tidies up; the watchdog bounds it.
    std::thread::spawn(|| {
        std::thread::sleep(EXIT_GRACE);
        let _ = std::io::stderr().write_all(
            b"signalbox kafka-worker: the broker did not answer the last commit in time; exiting\n",
        );
        std::process::exit(0);
    });
    commit_pending(&consumer, CommitMode::Sync);
    // Leave the group now so the partitions move to the other members at once.
    consumer.unsubscribe();
    drop(consumer);
    ExitCode::SUCCESS
}

type WorkerConsumer = StreamConsumer<WorkerContext>;

fn create(source: &KafkaSource) -> Result<WorkerConsumer, String> {
    let config = source.client_config().map_err(|e| e.to_string())?;
    let consumer: WorkerConsumer = config
        .create_with_context(WorkerContext::default())
        .map_err(|e| e.to_string())?;
    let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| e.to_string())?;
    Ok(consumer)
}

/// The consume loop: batches out, `Stored` back, until `Stop` or the pipe
/// closes.
async fn consume(
    source: &KafkaSource,
    consumer: &WorkerConsumer,
    commands: &mut mpsc::UnboundedReceiver<ToWorker>,
) {
    let mut missing_topic_logged: Option<Instant> = None;
    let mut last_commit = Instant::now();
    loop {
        // While idle, pending offsets are still committed on time.
        let idle_commit = tokio::time::sleep(source.commit_interval.max(Duration::from_millis(10)));
        let first = tokio::select! {
            c = commands.recv() => match c {
                Some(ToWorker::Stop) | None => return,
                Some(_) => continue,
            },
            r = consumer.recv() => r.map(|m| m.detach()),
            _ = idle_commit => {
                commit_pending(consumer, CommitMode::Async);
                last_commit = Instant::now();
                continue;
            }
        };
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                log_recv_error(source, &e, &mut missing_topic_logged);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    c = commands.recv() => if matches!(c, Some(ToWorker::Stop) | None) { return },
                }
                continue;
            }
        };
        let mut batch = vec![record(&first)];
        let deadline = tokio::time::Instant::now() + source.batch_max_wait;
        while batch.len() < source.batch_size {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(record(&m.detach())),
                Ok(Err(e)) => {
                    log_recv_error(source, &e, &mut missing_topic_logged);
                    break;
                }
                Err(_) => break,
            }
        }
        send(&FromWorker::Records(batch));
        // Lock step: nothing is read (no rebalance runs) until it is stored.
        match commands.recv().await {
            Some(ToWorker::Stored(offsets)) => note_stored(consumer, offsets),
            Some(ToWorker::Stop) | None => return,
            Some(ToWorker::Start { .. }) => return,
        }
        if last_commit.elapsed() >= source.commit_interval {
            commit_pending(consumer, CommitMode::Async);
            last_commit = Instant::now();
        }
    }
}

fn record(m: &OwnedMessage) -> Record {
    Record {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers: m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
        timestamp_ms: m.timestamp().to_millis(),
    }
}

fn log_recv_error(source: &KafkaSource, e: &KafkaError, missing_logged: &mut Option<Instant>) {
    let missing = matches!(
        e,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
        )
    );
    if missing {
        // Said once a minute: the topic may simply not exist yet.
        if missing_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            log(
                Level::Warn,
                "",
                format!(
                    "Kafka topic does not exist (yet); waiting for it: topics {:?}: {e}",
                    source.topics
                ),
            );
            *missing_logged = Some(Instant::now());
        }
    } else {
        log(
            Level::Warn,
            "",
            format!("Kafka receive failed; retrying: {e}"),
        );
    }
}

/// Notes the router's stored offsets as pending: committed by the next
/// [`commit_pending`] (or on revoke).
fn note_stored(consumer: &WorkerConsumer, offsets: Vec<(String, i32, i64)>) {
    let Ok(mut pending) = consumer.context().pending.lock() else {
        return;
    };
    for (topic, partition, next) in offsets {
        let e = pending.entry((topic, partition)).or_insert(0);
        *e = (*e).max(next);
    }
}

/// Commits the pending offsets of stored records.
fn commit_pending(consumer: &WorkerConsumer, mode: CommitMode) {
    let list = consumer.context().take_pending(|_, _| true);
    if list.count() == 0 {
        return;
    }
    // A lost commit only means a re-read, which dedup absorbs.
    if let Err(e) = consumer.commit(&list, mode) {
        log(
            Level::Info,
            "",
            format!("Kafka offset commit not sent: {e}"),
        );
    }
}

/// The librdkafka client context of a worker: its log lines, errors,
/// statistics (lag) and rebalances go to the router as frames.
#[derive(Default)]
struct WorkerContext {
    /// Offsets of stored records not yet committed: (topic, partition) → the
    /// next offset to read.
    pending: Mutex<BTreeMap<(String, i32), i64>>,
}

impl WorkerContext {
    /// Takes the pending offsets (of the partitions `keep` accepts) as a list.
    fn take_pending(&self, keep: impl Fn(&str, i32) -> bool) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        let Ok(mut pending) = self.pending.lock() else {
            return list;
        };
        pending.retain(|(topic, partition), offset| {
            if !keep(topic, *partition) {
                return true;
            }
            if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
                log(Level::Warn, "", format!("bad offset in commit list: {e}"));
            }
            false
        });
        list
    }
}

fn partitions(list: &TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

impl ClientContext for WorkerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => Level::Error,
            RDKafkaLogLevel::Warning => Level::Warn,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => Level::Info,
            RDKafkaLogLevel::Debug => Level::Debug,
        };
        log(level, fac, format!("librdkafka: {message}"));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker connection losses land here; librdkafka reconnects by itself.
        log(
            Level::Warn,
            "",
            format!("Kafka client: {reason} (error: {error})"),
        );
    }

    fn stats(&self, stats: Statistics) {
        let mut report = Vec::new();
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue;
                // a negative lag means "not known yet".
                if partition >= 0 && p.consumer_lag >= 0 {
                    report.push((topic.clone(), partition, p.consumer_lag));
                }
            }
        }
        send(&FromWorker::Lag(report));
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                log(
                    Level::Info,
                    "",
                    format!("Kafka partitions revoked: {}", partitions(list)),
                );
                // Hand over cleanly: what is stored is committed before the
                // partitions move, so the next owner does not read it again.
                let revoked: Vec<(String, i32)> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let commit =
                    self.take_pending(|t, p| revoked.iter().any(|(rt, rp)| rt == t && *rp == p));
                if commit.count() > 0
                    && let Err(e) = consumer.commit(&commit, CommitMode::Sync)
                {
                    log(
                        Level::Warn,
                        "",
                        format!("Kafka offsets not committed on revoke: {e}"),
                    );
                }
            }
            Rebalance::Assign(list) => log(
                Level::Info,
                "",
                format!("Kafka partitions assigned: {}", partitions(list)),
            ),
            Rebalance::Error(e) => log(Level::Warn, "", format!("Kafka rebalance failed: {e}")),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // After a rebalance the old generation's commit is refused; the new
            // owner re-reads from the last commit, and dedup removes repeats.
            log(
                Level::Info,
                "",
                format!(
                    "Kafka offset commit not taken for {}: {e}",
                    partitions(offsets)
                ),
            );
        }
    }
}
