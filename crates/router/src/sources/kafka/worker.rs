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
//! - at most `batches_in_flight` batches (default 2) are handed to the
//!   router and not yet `Stored` (the router decodes one while it stores the
//!   one before); the worker reads ahead no further;
//! - a revoke waits, inside the rebalance callback, until every batch handed
//!   out is `Stored`, commits the revoked partitions' stored offsets, and
//!   drops the records of those partitions it had read into a batch not yet
//!   handed out (the next owner reads them from the commit); so when
//!   partitions move, every record handed out is stored and its offset is
//!   committed, and nothing handed out afterwards comes from before the move;
//! - an offset is committed only after the router said it is stored;
//! - the worker exits when the router says `Stop` or closes the pipe (the
//!   router died): it commits what is stored, leaves the group, and a
//!   watchdog ends it after [`EXIT_GRACE`] if the broker does not answer;
//! - nothing but frames is written to stdout.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Statistics, TopicPartitionList};
use tokio::sync::{Notify, mpsc};

use super::wire::{self, FromWorker, Level, Record, ToWorker};
use crate::config::KafkaSource;

/// How long an exiting worker may spend committing and leaving the group.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// A revoke waiting for the router's `Stored` says so this often.
const REVOKE_WAIT_LOG: Duration = Duration::from_secs(10);

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

/// What the router has acknowledged, shared by the thread that reads its
/// frames, the consume loop and the rebalance callback.
#[derive(Default)]
struct Acks {
    state: Mutex<AckState>,
    /// Signalled when a batch is stored or the router is gone (the rebalance
    /// callback waits on it: it runs inside a poll, outside any await).
    changed: Condvar,
    /// The same, for the consume loop.
    wake: Notify,
}

#[derive(Default)]
struct AckState {
    /// Batches handed out and not yet `Stored`.
    outstanding: usize,
    /// The router said `Stop` or closed the pipe.
    closed: bool,
    /// Offsets of stored records not yet committed: (topic, partition) → the
    /// next offset to read.
    pending: BTreeMap<(String, i32), i64>,
}

impl Acks {
    fn lock(&self) -> MutexGuard<'_, AckState> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.notify_all();
        self.wake.notify_one();
    }

    /// Notes the router's stored offsets as pending: committed by the next
    /// [`commit_pending`] (or on revoke).
    fn stored(&self, offsets: Vec<(String, i32, i64)>) {
        let mut s = self.lock();
        for (topic, partition, next) in offsets {
            let e = s.pending.entry((topic, partition)).or_insert(0);
            *e = (*e).max(next);
        }
        s.outstanding = s.outstanding.saturating_sub(1);
        drop(s);
        self.notify();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify();
    }

    /// Takes the pending offsets (of the partitions `keep` accepts) as a list.
    fn take_pending(&self, keep: impl Fn(&str, i32) -> bool) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        let mut s = self.lock();
        s.pending.retain(|(topic, partition), offset| {
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

    /// Blocks until every batch handed out is stored (or the router is gone).
    fn wait_all_stored(&self) {
        let started = Instant::now();
        let mut s = self.lock();
        while s.outstanding > 0 && !s.closed {
            let (next, timeout) = self
                .changed
                .wait_timeout(s, REVOKE_WAIT_LOG)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s = next;
            if timeout.timed_out() && s.outstanding > 0 {
                log(
                    Level::Warn,
                    "",
                    format!(
                        "Kafka partitions revoked: still waiting after {:?} for the router to store {} batch(es) before committing",
                        started.elapsed(),
                        s.outstanding
                    ),
                );
            }
        }
    }
}

/// Reads frames from stdin on a thread of its own: `Stored` goes to `acks`
/// at once (a revoke may be waiting for it inside a poll); everything else
/// to the channel, which closes when the router closes the pipe (or writes
/// something that is not a frame).
fn read_stdin(acks: Arc<Acks>) -> mpsc::UnboundedReceiver<ToWorker> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match wire::read_to_worker(&mut stdin) {
                Ok(Some(ToWorker::Stored(offsets))) => acks.stored(offsets),
                Ok(Some(frame)) => {
                    let stop = matches!(frame, ToWorker::Stop);
                    if stop {
                        acks.close();
                    }
                    if tx.send(frame).is_err() || stop {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log(Level::Error, "", format!("bad frame from the router: {e}"));
                    break;
                }
            }
        }
        acks.close();
    });
    rx
}

async fn run() -> ExitCode {
    let acks = Arc::new(Acks::default());
    let mut commands = read_stdin(acks.clone());
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
    let consumer = match create(&source, acks) {
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

fn create(source: &KafkaSource, acks: Arc<Acks>) -> Result<WorkerConsumer, String> {
    let config = source.client_config().map_err(|e| e.to_string())?;
    let consumer: WorkerConsumer = config
        .create_with_context(WorkerContext {
            acks,
            revoked: Mutex::new(Vec::new()),
        })
        .map_err(|e| e.to_string())?;
    let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| e.to_string())?;
    Ok(consumer)
}

/// True when the router said `Stop` or closed the pipe (any other frame
/// here is ignored).
fn stopping(c: Option<ToWorker>) -> bool {
    matches!(c, Some(ToWorker::Stop) | None)
}

/// The consume loop: batches out while fewer than `batches_in_flight` wait
/// to be stored, until `Stop` or the pipe closes.
async fn consume(
    source: &KafkaSource,
    consumer: &WorkerConsumer,
    commands: &mut mpsc::UnboundedReceiver<ToWorker>,
) {
    let acks = consumer.context().acks.clone();
    let mut missing_topic_logged: Option<Instant> = None;
    let mut last_commit = Instant::now();
    loop {
        if last_commit.elapsed() >= source.commit_interval {
            commit_pending(consumer, CommitMode::Async);
            last_commit = Instant::now();
        }
        if acks.lock().outstanding >= source.batches_in_flight.max(1) {
            // Wait for a `Stored` (the window is full).
            tokio::select! {
                c = commands.recv() => if stopping(c) { return },
                _ = acks.wake.notified() => {}
            }
            continue;
        }
        // While idle, pending offsets are still committed on time.
        let idle_commit = tokio::time::sleep(source.commit_interval.max(Duration::from_millis(10)));
        let first = tokio::select! {
            c = commands.recv() => if stopping(c) { return } else { continue },
            r = consumer.recv() => r.map(|m| record(&m)),
            // A `Stored` while waiting: commit on time.
            _ = acks.wake.notified() => continue,
            _ = idle_commit => {
                commit_pending(consumer, CommitMode::Async);
                last_commit = Instant::now();
                continue;
            }
        };
        // A revoke before the first record: nothing read before it is kept.
        consumer.context().take_revoked();
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                log_recv_error(source, &e, &mut missing_topic_logged);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    c = commands.recv() => if stopping(c) { return },
                }
                continue;
            }
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + source.batch_max_wait;
        while batch.len() < source.batch_size {
            let next = tokio::time::timeout_at(deadline, consumer.recv()).await;
            // A revoke inside that poll: drop what was read before it from
            // the revoked partitions (the next owner, or this worker after a
            // new assignment, reads it again from the commit).
            let revoked = consumer.context().take_revoked();
            if !revoked.is_empty() {
                batch.retain(|r| {
                    !revoked
                        .iter()
                        .any(|(t, p)| *t == r.topic && *p == r.partition)
                });
            }
            match next {
                Ok(Ok(m)) => batch.push(record(&m)),
                Ok(Err(e)) => {
                    log_recv_error(source, &e, &mut missing_topic_logged);
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        acks.lock().outstanding += 1;
        send(&FromWorker::Records(batch));
    }
}

fn record(m: &BorrowedMessage<'_>) -> Record {
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

/// Commits the pending offsets of stored records.
fn commit_pending(consumer: &WorkerConsumer, mode: CommitMode) {
    let list = consumer.context().acks.take_pending(|_, _| true);
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
struct WorkerContext {
    /// What the router has stored.
    acks: Arc<Acks>,
    /// Partitions revoked since the consume loop last looked: records of them
    /// read before the revoke and not yet handed out are dropped.
    revoked: Mutex<Vec<(String, i32)>>,
}

impl WorkerContext {
    /// The partitions revoked since the last call.
    fn take_revoked(&self) -> Vec<(String, i32)> {
        std::mem::take(
            &mut *self
                .revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
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
                // Hand over cleanly: every batch handed out is stored and
                // committed before the partitions move, so the next owner
                // does not read it again; what was read and not handed out
                // is dropped (`take_revoked`), and the next owner reads it.
                let revoked: Vec<(String, i32)> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.acks.wait_all_stored();
                let commit = self
                    .acks
                    .take_pending(|t, p| revoked.iter().any(|(rt, rp)| rt == t && *rp == p));
                self.revoked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(revoked);
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
