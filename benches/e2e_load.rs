//! End-to-end load tool for signalbox (issue 5, "Benchmark"): one run starts a
//! local `nats-server` (loopback, JetStream on) and measures on it, in this order:
//! the raw JetStream async publish rate (publish to a file stream, PubAcks awaited
//! pipelined) and the raw core pub/sub rate (one publisher connection, one
//! subscriber connection) as the baselines; then signalbox's end-to-end rate in
//! JetStream mode (signals published into the `SIGNALS` stream, taken by the
//! router's durable consumer, one redb commit per batch, each firing published to
//! the JetStream stream `RUNS` and acked; counted by an ordered consumer on `RUNS`)
//! and in core-NATS mode (signals as plain publishes, firings on a core subject
//! counted by a subscriber); the rate is signals per second from the first publish
//! to the last firing received. Finally p50/p99 latency (signal publish → firing
//! received) with signals paced at half of each row's measured maximum rate.
//!
//! Rows: each router mode with `batch_size` 256 (the default) and 1024, with
//! the default store durability (fsync on every commit); JetStream mode also
//! with `jetstream.batch_max_wait` 1 ms instead of the default 0 (take what is
//! buffered); a
//! diagnostic row with the data directory on tmpfs (fsync free); and a
//! diagnostic JetStream publish that awaits each ack before the next (no
//! pipelining: a lower bound for a sequential publisher). Beside the half-load
//! latency of each mode's default row, the transport alone at the same pace
//! (the same bodies published straight to `RUNS` or the core target and counted
//! there, no router): the share of the 5 ms goal NATS itself takes. A last
//! diagnostic measures the latency floor at a light 200 signals/s. Every
//! measurement is repeated (3 times by default) and the median reported; the
//! router runs in this process, on the same machine as the server.
//!
//! Beside each throughput figure, the CPU time per message of nats-server and
//! of this process (`e2e_load/cpu.rs`), and for each router row what its goal
//! rate would take in cores at that cost: whether a goal fits the machine at
//! all, whatever the router's own efficiency.
//!
//! Run: `cargo bench --bench e2e_load` (options after `--`: `--signals N`,
//! `--raw N`, `--reps N`, `--latency-secs S`, `--batch-sizes 256,1024`,
//! `--no-tmpfs`, `--no-short-wait`, `--only jetstream|core`, `--random-ids`,
//! `--latency-rate R`: pace the latency rows at R signals/s instead of half of
//! their own maximum, to compare two builds at the same load).
//! `--relay` runs instead the comparison of issue 19: the router as a
//! `signalbox serve` process against a relay peer process that does the same
//! NATS work and nothing else (`e2e_load/peer.rs`, `e2e_load/relay.rs`), with
//! `--signals`, `--reps`, `--latency-secs`, `--only` and `--latency-rate`
//! (default: half the relay's maximum). `--relay-child MODE URL` is how the
//! bench starts that relay (its own binary again).
//! Signal ids are `<tag>-<i>` (nearly sorted, as a counter would make them);
//! `--random-ids` adds a row per mode, at the first batch size, whose ids are
//! 64 scrambled bits instead (as UUIDs would be), which land anywhere in the
//! store's id index. The run is
//! bounded: every wait has a timeout, a run budget stops further repetitions,
//! and the tool exits by itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use signalbox_router::IngestMode;

/// The allocator of the `signalbox` binary, so that the router in this
/// process allocates as it does there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use signalbox_testkit::{TestNats, TestRouter};

#[path = "e2e_load/cpu.rs"]
mod cpu;
#[path = "e2e_load/load.rs"]
mod load;
#[path = "e2e_load/peer.rs"]
mod peer;
#[path = "e2e_load/relay.rs"]
mod relay;
// Shared with `group_load`, which uses more of it.
#[allow(dead_code)]
#[path = "e2e_load/serve.rs"]
mod serve;
use cpu::{Cpu, CpuMeter, PerMessage, fmt_us};
use load::{NOT_SENT, Outcome, median, ms, spawn_acker, spawn_receiver, unix_ms, verdict};

/// A receiver gives up when no firing arrived for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The whole run stops starting new measurements after this long.
const RUN_BUDGET: Duration = Duration::from_secs(300);
/// The signal name used by the load.
const SIGNAL_SUBJECT: &str = "signals.load";
/// Where firings go in JetStream mode (captured by the `RUNS` stream).
const JS_TARGET: &str = "runs.load";
/// Where firings go in core mode (no stream captures it).
const CORE_TARGET: &str = "fired.load";
/// Signals per second of the light-load (latency floor) runs.
const LIGHT_RATE: f64 = 200.0;

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    /// Signals per router throughput run.
    signals: usize,
    /// Messages per raw baseline run.
    raw: usize,
    /// Repetitions of every measurement (the median is reported).
    reps: usize,
    /// Length of a paced latency run.
    latency_secs: f64,
    /// Router `batch_size` values to measure (the first is the default 256).
    batch_sizes: Vec<usize>,
    /// Also measure the first batch size with the data directory on tmpfs.
    tmpfs: bool,
    /// Also measure JetStream mode with `batch_max_wait` 1 ms.
    short_wait: bool,
    /// Only this router mode (`jetstream` or `core`); both when `None`.
    only: Option<Mode>,
    /// Also measure each mode with scrambled (unordered) signal ids.
    random_ids: bool,
    /// Pace every latency row at this rate instead of half of its own
    /// maximum, to compare two builds at the same load.
    latency_rate: Option<f64>,
    /// Run only the relay comparison of issue 19 (`e2e_load/peer.rs`).
    relay: bool,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            signals: 20_000,
            raw: 100_000,
            reps: 3,
            latency_secs: 2.0,
            batch_sizes: vec![256, 1024],
            tmpfs: true,
            short_wait: true,
            only: None,
            random_ids: false,
            latency_rate: None,
            relay: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--signals" => args.signals = value("--signals")?.parse()?,
                "--raw" => args.raw = value("--raw")?.parse()?,
                "--reps" => args.reps = value("--reps")?.parse()?,
                "--latency-secs" => args.latency_secs = value("--latency-secs")?.parse()?,
                "--batch-sizes" => {
                    args.batch_sizes = value("--batch-sizes")?
                        .split(',')
                        .map(|s| s.trim().parse::<usize>())
                        .collect::<Result<_, _>>()?;
                }
                "--no-tmpfs" => args.tmpfs = false,
                "--no-short-wait" => args.short_wait = false,
                "--random-ids" => args.random_ids = true,
                "--relay" => args.relay = true,
                "--latency-rate" => {
                    args.latency_rate = Some(value("--latency-rate")?.parse()?);
                }
                "--only" => {
                    args.only = match value("--only")?.as_str() {
                        "jetstream" => Some(Mode::JetStream),
                        "core" => Some(Mode::Core),
                        other => bail!("--only takes jetstream or core, not {other:?}"),
                    };
                }
                // `cargo bench` passes `--bench`; anything else is ignored with a note.
                "--bench" => {}
                other => eprintln!("e2e_load: ignoring argument {other:?}"),
            }
        }
        if args.signals == 0 || args.raw == 0 || args.reps == 0 || args.batch_sizes.is_empty() {
            bail!("--signals, --raw, --reps and --batch-sizes must be positive");
        }
        if args.batch_sizes.contains(&0) {
            bail!("batch sizes must be at least 1");
        }
        Ok(args)
    }
}

/// The outcome of one end-to-end run.
#[derive(Debug, Clone)]
struct RunResult {
    /// Rate, counts and latencies (read through `Deref`: `r.rate`, `r.p99`).
    outcome: Outcome,
    /// CPU used from the first publish to the last firing received.
    cpu: Cpu,
    /// For paced runs through the router: where its own histograms put the
    /// time (see [`router_split`]), and the two halves of the end-to-end
    /// latency (see [`halves_line`]).
    split: Option<String>,
    halves: Option<String>,
}

impl std::ops::Deref for RunResult {
    type Target = Outcome;
    fn deref(&self) -> &Outcome {
        &self.outcome
    }
}

/// One measured configuration of the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    mode: Mode,
    batch_size: usize,
    /// Data directory on tmpfs, where fsync costs nothing (a diagnostic, not a
    /// durable setup).
    tmpfs: bool,
    /// `jetstream.batch_max_wait` in milliseconds when not the default (0).
    max_wait_ms: Option<u64>,
    /// Signal ids scrambled instead of counting up.
    random_ids: bool,
}

impl Row {
    fn label(self) -> String {
        format!(
            "signalbox {} mode, batch_size {}{}{}{}",
            self.mode.label(),
            self.batch_size,
            self.max_wait_ms
                .map(|w| format!(", max_wait {w}ms"))
                .unwrap_or_default(),
            if self.random_ids { ", random ids" } else { "" },
            if self.tmpfs { ", tmpfs*" } else { "" }
        )
    }

    fn key(self) -> String {
        format!(
            "{}{}{}{}{}",
            if self.mode == Mode::JetStream {
                "j"
            } else {
                "c"
            },
            self.batch_size,
            if self.tmpfs { "t" } else { "" },
            if self.random_ids { "r" } else { "" },
            self.max_wait_ms
                .map(|w| format!("w{w}"))
                .unwrap_or_default()
        )
    }
}

/// The router mode under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    JetStream,
    Core,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::JetStream => "JetStream",
            Mode::Core => "core NATS",
        }
    }

    /// The row of the transport alone, without the router, at the same pace.
    fn direct_label(self) -> &'static str {
        match self {
            Mode::JetStream => "no router: JetStream publish -> ordered consumer",
            Mode::Core => "no router: core publish -> subscriber",
        }
    }
}

fn signal_body(tag: &str, i: usize) -> Bytes {
    Bytes::from(format!(r#"{{"id":"{tag}-{i}","params":{{"n":{i}}}}}"#))
}

/// A signal whose id is `i` scrambled (splitmix64's finalizer, a bijection,
/// so ids stay unique) instead of counting up.
fn signal_body_random_id(tag: &str, i: usize) -> Bytes {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    Bytes::from(format!(r#"{{"id":"{tag}-{z:016x}","params":{{"n":{i}}}}}"#))
}

fn median_duration(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A client whose subscriptions can buffer a whole run (no slow-consumer drops).
async fn big_client(url: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

async fn delete_stream_if_any(js: &jetstream::Context, name: &str) {
    // Absent is fine: every run starts from a clean server state.
    let _ = js.delete_stream(name).await;
}

/// Baseline 1: raw JetStream async publish to a file stream, acks pipelined.
/// Returns messages/s and the CPU they took.
async fn raw_jetstream(nats: &TestNats, n: usize) -> Result<(f64, Cpu)> {
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    delete_stream_if_any(&js, "RAWJS").await;
    js.create_stream(stream::Config {
        name: "RAWJS".into(),
        subjects: vec!["raw.js".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating RAWJS")?;
    let bodies: Vec<Bytes> = (0..n).map(|i| signal_body("raw", i)).collect();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let acker = spawn_acker(rx);
    let meter = CpuMeter::start(nats.pid());
    let start = Instant::now();
    for body in bodies {
        let ack = js.publish("raw.js", body).await.context("raw JS publish")?;
        tx.send(ack).context("acker stopped")?;
    }
    drop(tx);
    let acked = tokio::time::timeout(Duration::from_secs(60), acker)
        .await
        .context("raw JS acks timed out")???;
    let elapsed = start.elapsed();
    let cpu = meter.stop();
    if acked as usize != n {
        bail!("raw JS: {acked} of {n} acked");
    }
    delete_stream_if_any(&js, "RAWJS").await;
    Ok((n as f64 / elapsed.as_secs_f64(), cpu))
}

/// Diagnostic: JetStream publish awaiting each ack before the next publish (no
/// pipelining), to compare with the pipelined baseline.
async fn sequential_jetstream(nats: &TestNats, n: usize) -> Result<f64> {
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    delete_stream_if_any(&js, "RAWJS").await;
    js.create_stream(stream::Config {
        name: "RAWJS".into(),
        subjects: vec!["raw.js".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating RAWJS")?;
    let bodies: Vec<Bytes> = (0..n).map(|i| signal_body("seq", i)).collect();
    let start = Instant::now();
    for body in bodies {
        js.publish("raw.js", body)
            .await
            .context("sequential JS publish")?
            .await
            .context("sequential JS ack")?;
    }
    let elapsed = start.elapsed();
    delete_stream_if_any(&js, "RAWJS").await;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Baseline 2: raw core pub/sub, publisher → server → subscriber. Returns
/// messages/s and the CPU they took.
async fn raw_core(nats: &TestNats, n: usize) -> Result<(f64, Cpu)> {
    let sub_client = big_client(&nats.url()).await?;
    let publisher = nats.client().await?;
    let mut sub = sub_client.subscribe("raw.core").await?;
    sub_client.flush().await?;
    let receiver = tokio::spawn(async move {
        let mut count = 0usize;
        let mut last = None;
        while count < n {
            match tokio::time::timeout(IDLE_TIMEOUT, sub.next()).await {
                Ok(Some(_)) => {
                    count += 1;
                    last = Some(Instant::now());
                }
                _ => break,
            }
        }
        (count, last)
    });
    let bodies: Vec<Bytes> = (0..n).map(|i| signal_body("raw", i)).collect();
    let meter = CpuMeter::start(nats.pid());
    let start = Instant::now();
    for body in bodies {
        publisher.publish("raw.core", body).await?;
    }
    publisher.flush().await?;
    let (count, last) = receiver.await?;
    let cpu = meter.stop();
    if count != n {
        bail!("raw core: {count} of {n} received (slow consumer?)");
    }
    let last = last.context("no message received")?;
    Ok((n as f64 / (last - start).as_secs_f64(), cpu))
}

/// One end-to-end run: fresh streams, a fresh router on a fresh data directory,
/// `n` signals published as fast as possible (`rate == None`) or paced.
async fn router_run(
    nats: &TestNats,
    row: Row,
    n: usize,
    rate: Option<f64>,
    tag: &str,
) -> Result<RunResult> {
    paced_run(nats, row, n, rate, tag, Path::Router).await
}

/// What the messages of a run go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Signals to the router, firings counted at the target.
    Router,
    /// No router: the same bodies published straight to the target and
    /// counted there (the transport's own latency at the same pace).
    Direct,
}

/// A run of `row`'s mode through `path`.
async fn paced_run(
    nats: &TestNats,
    row: Row,
    n: usize,
    rate: Option<f64>,
    tag: &str,
    path: Path,
) -> Result<RunResult> {
    let mode = row.mode;
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    delete_stream_if_any(&js, "SIGNALS").await;
    delete_stream_if_any(&js, "RUNS").await;
    let dir = if row.tmpfs {
        tempfile::tempdir_in("/dev/shm").context("a data directory on /dev/shm")?
    } else {
        tempfile::tempdir()?
    };
    let mut config = TestRouter::config(&nats.url(), dir.path());
    config.batch_size = row.batch_size;
    if rate.is_some() {
        // For the router's histograms after a paced run.
        config.http.listen = Some("127.0.0.1:0".into());
    }
    if let Some(w) = row.max_wait_ms {
        config.jetstream.batch_max_wait = Duration::from_millis(w);
    }
    let target = match mode {
        Mode::JetStream => {
            js.create_stream(stream::Config {
                name: "RUNS".into(),
                subjects: vec!["runs.>".into()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .context("creating RUNS")?;
            config.ingest = IngestMode::Jetstream;
            JS_TARGET
        }
        Mode::Core => {
            config.ingest = IngestMode::Core;
            CORE_TARGET
        }
    };
    let router = match path {
        Path::Router => {
            let router = TestRouter::start_with(config).await?;
            let sub = format!(
                "id: b\nsignal: load\nwhere: {{n: [{{numeric: [\">=\", 0]}}]}}\naction: {{publish: {{subject: {target}}}}}\nparams: {{n: \"{{n}}\"}}\n"
            );
            router.add_subscription(&client, &sub).await?;
            Some(router)
        }
        Path::Direct => None,
    };
    let subject = match path {
        Path::Router => SIGNAL_SUBJECT,
        Path::Direct => target,
    };

    let recv_client = big_client(&nats.url()).await?;
    let firings: BoxStream<'static, Result<Bytes>> = match mode {
        Mode::JetStream => {
            let runs = jetstream::new(recv_client.clone())
                .get_stream("RUNS")
                .await
                .context("RUNS stream")?;
            let consumer = runs
                .create_consumer(consumer::pull::OrderedConfig::default())
                .await
                .context("ordered consumer on RUNS")?;
            consumer
                .messages()
                .await
                .context("RUNS messages")?
                .map(|m| m.map(|m| m.message.payload).map_err(anyhow::Error::from))
                .boxed()
        }
        Mode::Core => {
            let s = recv_client.subscribe(CORE_TARGET).await?;
            recv_client.flush().await?;
            s.map(|m| Ok(m.payload)).boxed()
        }
    };
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(NOT_SENT)).collect());
    let body = if row.random_ids {
        signal_body_random_id
    } else {
        signal_body
    };
    let bodies: Vec<Bytes> = (0..n).map(|i| body(tag, i)).collect();
    let base = Instant::now();
    let base_unix_ms = unix_ms();
    let receiver = spawn_receiver(
        firings,
        n,
        IDLE_TIMEOUT,
        base,
        base_unix_ms,
        sent_at.clone(),
    );

    let producer = nats.client().await?;
    let pjs = jetstream::new(producer.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let acker = spawn_acker(rx);
    let meter = CpuMeter::start(nats.pid());
    let start = Instant::now();
    let mut next = 0usize;
    while next < n {
        let due = match rate {
            None => n,
            Some(r) => (((start.elapsed().as_secs_f64()) * r) as usize + 1).min(n),
        };
        while next < due {
            sent_at[next].store((Instant::now() - base).as_nanos() as u64, Ordering::Release);
            let body = bodies[next].clone();
            match mode {
                Mode::JetStream => {
                    let ack = pjs.publish(subject, body).await?;
                    tx.send(ack).context("acker stopped")?;
                }
                Mode::Core => producer.publish(subject, body).await?,
            }
            next += 1;
        }
        if rate.is_some() && next < n {
            producer.flush().await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    producer.flush().await?;
    drop(tx);
    let acked = tokio::time::timeout(Duration::from_secs(60), acker)
        .await
        .context("signal acks timed out")???;
    if mode == Mode::JetStream && acked as usize != n {
        bail!("{acked} of {n} signals acked by SIGNALS");
    }
    let got = receiver.await??;
    let cpu = meter.stop();
    let split = match (&router, rate) {
        (Some(router), Some(_)) => match router.router().http_addr() {
            Some(addr) => router_split(addr).await,
            None => None,
        },
        _ => None,
    };
    if let Some(router) = router {
        router.shutdown().await;
    }
    delete_stream_if_any(&js, "SIGNALS").await;
    delete_stream_if_any(&js, "RUNS").await;

    let halves = rate.and_then(|_| halves_line(&got.halves));
    Ok(RunResult {
        outcome: got.outcome(start, n)?,
        cpu,
        split,
        halves,
    })
}

/// p50/p90/p99 of the way in (signal publish → firing created, inside the
/// router's transaction) and the way out (firing created → received), in
/// whole milliseconds: `created_at_ms` has no finer grain, so a value may be
/// off by one.
fn halves_line(halves: &[(i64, i64)]) -> Option<String> {
    if halves.len() < 100 {
        return None;
    }
    let quantiles = |mut v: Vec<i64>| {
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        format!("{}/{}/{}", at(0.5), at(0.9), at(0.99))
    };
    Some(format!(
        "p50/p90/p99 in ms: publish -> firing created {}; created -> received {}",
        quantiles(halves.iter().map(|h| h.0).collect()),
        quantiles(halves.iter().map(|h| h.1).collect())
    ))
}

/// Reads the router's `/metrics` and says which share of its batches were
/// committed, and of its firings delivered, within 2.5, 5, 10 and 25 ms:
/// `signalbox_commit_seconds` runs from a batch's hand-over to the commit
/// thread to its commit, `signalbox_firing_latency_seconds` from a firing's
/// creation (inside that transaction) to its JetStream ack or core flush.
/// What the two leave out of the end-to-end latency is the transport: the
/// signal's way in and the firing's way to the receiver.
async fn router_split(addr: std::net::SocketAddr) -> Option<String> {
    let (status, text) = signalbox_testkit::http_request(addr, "GET", "/metrics", &[], "")
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    let value = |line_start: &str| {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let shares = |histogram: &str, bounds: &[&str]| -> Option<String> {
        let count = value(&format!("{histogram}_count "))?;
        if count <= 0.0 {
            return None;
        }
        let parts: Option<Vec<String>> = bounds
            .iter()
            .map(|le| {
                value(&format!("{histogram}_bucket{{le=\"{le}\"}} "))
                    .map(|n| format!("{:.1}%", n / count * 100.0))
            })
            .collect();
        Some(parts?.join("/"))
    };
    Some(format!(
        "router: commits within 2.5/5/10/25 ms {}; firings delivered within 2.5/5/10/25 ms of creation {}",
        shares(
            "signalbox_commit_seconds",
            &["0.0025", "0.005", "0.01", "0.025"]
        )?,
        shares(
            "signalbox_firing_latency_seconds",
            &["0.0025", "0.005", "0.01", "0.025"]
        )?
    ))
}

fn check_complete(label: &str, r: &RunResult) {
    if r.received != r.sent || r.duplicates != 0 {
        println!(
            "   WARNING {label}: {} of {} firings received, {} duplicates",
            r.received, r.sent, r.duplicates
        );
    }
}

/// A latency table line: label, pace, and the medians of p50, p99 and max.
fn latency_line(label: &str, paced: f64, runs: &[RunResult]) -> String {
    let median_of =
        |f: fn(&RunResult) -> Duration| median_duration(&runs.iter().map(f).collect::<Vec<_>>());
    format!(
        "{:<56} {:>9}  {:>9} {:>9} {:>9}",
        label,
        fmt_rate(paced),
        ms(median_of(|r| r.p50)),
        ms(median_of(|r| r.p99)),
        ms(median_of(|r| r.max))
    )
}

/// The p99 of each run, for the table's notes.
fn p99s(runs: &[RunResult]) -> String {
    runs.iter()
        .map(|r| ms(r.p99))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn fmt_rate(r: f64) -> String {
    format!("{r:.0}")
}

fn fmt_runs(rs: &[f64]) -> String {
    rs.iter()
        .map(|r| fmt_rate(*r))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `; CPU per message: ...` for a progress line, or nothing when not measured.
fn cpu_note(cpu: Cpu, n: usize) -> String {
    match cpu.per_message(n) {
        PerMessage {
            nats: None,
            own: None,
        } => String::new(),
        PerMessage { nats, own } => format!(
            "; CPU per message: nats-server {} µs, this process {} µs",
            fmt_us(nats),
            fmt_us(own)
        ),
    }
}

/// The CPU table: per message, the medians of nats-server's and this
/// process's CPU time, and for each router row what its goal rate
/// (`goal_rate(row)`, messages/s) would take in cores at that cost per signal.
fn cpu_table(
    baselines: &[(&str, &[PerMessage])],
    rows: &[Row],
    cpus: &BTreeMap<Row, Vec<PerMessage>>,
    goal_rate: impl Fn(Row) -> f64,
) {
    println!();
    println!(
        "{:<56} {:>11} {:>11}  at the goal rate, in cores ({} here)",
        "CPU per message, µs (medians)",
        "nats-server",
        "this proc.*",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (label, runs) in baselines {
        let PerMessage { nats, own } = PerMessage::median(runs);
        println!("{label:<56} {:>11} {:>11}", fmt_us(nats), fmt_us(own));
    }
    for &row in rows {
        let Some(runs) = cpus.get(&row) else { continue };
        let PerMessage { nats, own } = PerMessage::median(runs);
        let rate = goal_rate(row);
        let cores = match (nats, own) {
            (Some(nats), Some(own)) => format!(
                "{} signals/s: nats-server {:.2}, all {:.2}",
                fmt_rate(rate),
                rate * nats / 1e6,
                rate * (nats + own) / 1e6
            ),
            _ => "-".to_string(),
        };
        println!(
            "{:<56} {:>11} {:>11}  {cores}",
            row.label(),
            fmt_us(nats),
            fmt_us(own)
        );
    }
    println!(
        "* this process: the load generator and the receiver, and in the signalbox rows the \
         router too."
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--relay-child") {
        let mode = argv.get(i + 1).context("--relay-child needs a mode")?;
        let url = argv.get(i + 2).context("--relay-child needs a URL")?;
        let result = relay::child(mode, url).await;
        if let Err(e) = &result {
            eprintln!("relay: {e:#}");
        }
        // Exit at once: the task reading stdin would keep the runtime alive.
        std::process::exit(i32::from(result.is_err()));
    }
    let args = Args::parse()?;
    if args.relay {
        return peer::run(&peer::PeerArgs {
            signals: args.signals,
            reps: args.reps,
            latency_secs: args.latency_secs,
            modes: match args.only {
                Some(Mode::JetStream) => vec![load::Ingest::JetStream],
                Some(Mode::Core) => vec![load::Ingest::Core],
                None => vec![load::Ingest::JetStream, load::Ingest::Core],
            },
            latency_rate: args.latency_rate,
        })
        .await;
    }
    let started = Instant::now();
    let nats = TestNats::start()?;
    let over_budget = || started.elapsed() > RUN_BUDGET;
    let mut rows = Vec::new();
    for mode in [Mode::JetStream, Mode::Core] {
        if args.only.is_some_and(|m| m != mode) {
            continue;
        }
        for &batch_size in &args.batch_sizes {
            rows.push(Row {
                mode,
                batch_size,
                tmpfs: false,
                max_wait_ms: None,
                random_ids: false,
            });
        }
        if mode == Mode::JetStream && args.short_wait {
            rows.push(Row {
                mode,
                batch_size: args.batch_sizes[0],
                tmpfs: false,
                max_wait_ms: Some(1),
                random_ids: false,
            });
        }
        if args.random_ids {
            rows.push(Row {
                mode,
                batch_size: args.batch_sizes[0],
                tmpfs: false,
                max_wait_ms: None,
                random_ids: true,
            });
        }
        if args.tmpfs && std::path::Path::new("/dev/shm").is_dir() {
            rows.push(Row {
                mode,
                batch_size: args.batch_sizes[0],
                tmpfs: true,
                max_wait_ms: None,
                random_ids: false,
            });
        }
    }
    println!(
        "e2e_load: {} signals per router run, {} messages per raw run, {} repetitions (median), \
         latency runs of {} s at half the median max rate, store durability: default (fsync per \
         commit), {} CPUs",
        args.signals,
        args.raw,
        args.reps,
        args.latency_secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    // Throughput, interleaved so that background noise hits every row alike.
    let mut raw_js = Vec::new();
    let mut raw_core_rates = Vec::new();
    let mut seq_js = Vec::new();
    let mut rates: BTreeMap<Row, Vec<f64>> = BTreeMap::new();
    // CPU per message, per run.
    let mut raw_js_cpu: Vec<PerMessage> = Vec::new();
    let mut raw_core_cpu: Vec<PerMessage> = Vec::new();
    let mut cpus: BTreeMap<Row, Vec<PerMessage>> = BTreeMap::new();
    for rep in 0..args.reps {
        if over_budget() {
            println!("run budget reached; stopping throughput repetitions");
            break;
        }
        let (r, cpu) = raw_jetstream(&nats, args.raw).await?;
        println!(
            "[rep {rep}] raw JetStream async publish: {} msg/s{}",
            fmt_rate(r),
            cpu_note(cpu, args.raw)
        );
        raw_js.push(r);
        raw_js_cpu.push(cpu.per_message(args.raw));
        let r = sequential_jetstream(&nats, args.raw.min(5_000)).await?;
        println!(
            "[rep {rep}] JetStream publish, one ack at a time: {} msg/s",
            fmt_rate(r)
        );
        seq_js.push(r);
        let (r, cpu) = raw_core(&nats, args.raw).await?;
        println!(
            "[rep {rep}] raw core pub/sub: {} msg/s{}",
            fmt_rate(r),
            cpu_note(cpu, args.raw)
        );
        raw_core_rates.push(r);
        raw_core_cpu.push(cpu.per_message(args.raw));
        for &row in &rows {
            let tag = format!("t{rep}-{}", row.key());
            let r = router_run(&nats, row, args.signals, None, &tag).await?;
            println!(
                "[rep {rep}] {}: {} signals/s ({} of {} firings, {} duplicates; under saturation p50 {} p99 {}){}",
                row.label(),
                fmt_rate(r.rate),
                r.received,
                r.sent,
                r.duplicates,
                ms(r.p50),
                ms(r.p99),
                cpu_note(r.cpu, r.sent)
            );
            check_complete("throughput", &r);
            rates.entry(row).or_default().push(r.rate);
            cpus.entry(row).or_default().push(r.cpu.per_message(r.sent));
        }
    }

    // Latency at half of each row's median maximum rate.
    let half_of = |rates: &BTreeMap<Row, Vec<f64>>, row: &Row| {
        args.latency_rate
            .unwrap_or_else(|| median(rates.get(row).map_or(&[][..], |v| &v[..])) / 2.0)
    };
    let mut lat: BTreeMap<Row, Vec<RunResult>> = BTreeMap::new();
    // Diagnostic: the transport alone at the same pace as each mode's default
    // row (no router): what the 5 ms goal leaves to signalbox.
    let mut direct: BTreeMap<Row, Vec<RunResult>> = BTreeMap::new();
    let latency_runs: Vec<(Row, Path)> = rows
        .iter()
        .map(|&row| (row, Path::Router))
        .chain(
            rows.iter()
                .filter(|r| {
                    r.batch_size == args.batch_sizes[0]
                        && !r.tmpfs
                        && !r.random_ids
                        && r.max_wait_ms.is_none()
                })
                .map(|&row| (row, Path::Direct)),
        )
        .collect();
    for rep in 0..args.reps {
        if over_budget() {
            println!("run budget reached; stopping latency repetitions");
            break;
        }
        for &(row, path) in &latency_runs {
            let half = half_of(&rates, &row);
            if half <= 0.0 {
                continue;
            }
            let n = ((half * args.latency_secs) as usize).max(200);
            let (tag, label, results) = match path {
                Path::Router => (format!("l{rep}-{}", row.key()), row.label(), &mut lat),
                Path::Direct => (
                    format!("d{rep}-{}", row.key()),
                    row.mode.direct_label().to_string(),
                    &mut direct,
                ),
            };
            let r = paced_run(&nats, row, n, Some(half), &tag, path).await?;
            println!(
                "[rep {rep}] latency {label}, paced {} messages/s ({n} messages): p50 {} p99 {} max {}{}",
                fmt_rate(half),
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                [&r.halves, &r.split]
                    .into_iter()
                    .flatten()
                    .map(|s| format!("\n        {s}"))
                    .collect::<String>()
            );
            check_complete(&label, &r);
            results.entry(row).or_default().push(r);
        }
    }

    // Diagnostic: the latency floor at light load, for the default batch size.
    let mut floor: BTreeMap<Row, Vec<RunResult>> = BTreeMap::new();
    for rep in 0..args.reps {
        if over_budget() {
            println!("run budget reached; stopping light-load repetitions");
            break;
        }
        for &row in rows.iter().filter(|r| r.batch_size == args.batch_sizes[0]) {
            let n = (LIGHT_RATE * 2.0) as usize;
            let tag = format!("f{rep}-{}", row.key());
            let r = router_run(&nats, row, n, Some(LIGHT_RATE), &tag).await?;
            println!(
                "[rep {rep}] light load {}, paced {LIGHT_RATE} signals/s ({n} signals): p50 {} p99 {} max {}",
                row.label(),
                ms(r.p50),
                ms(r.p99),
                ms(r.max)
            );
            check_complete("light load", &r);
            floor.entry(row).or_default().push(r);
        }
    }

    // The table.
    let js_base = median(&raw_js);
    let core_base = median(&raw_core_rates);
    println!();
    println!(
        "== signalbox end-to-end load: medians of {} runs each ==",
        raw_js.len()
    );
    println!(
        "{:<56} {:>9}  {:<26} {:>7}  goal",
        "throughput", "rate/s", "runs", "ratio"
    );
    println!(
        "{:<56} {:>9}  {:<26} {:>7}  baseline",
        "raw JetStream async publish",
        fmt_rate(js_base),
        fmt_runs(&raw_js),
        "100%"
    );
    println!(
        "{:<56} {:>9}  {:<26} {:>6.1}%  diagnostic",
        "JetStream publish, one ack at a time",
        fmt_rate(median(&seq_js)),
        fmt_runs(&seq_js),
        if js_base > 0.0 {
            median(&seq_js) / js_base * 100.0
        } else {
            0.0
        }
    );
    println!(
        "{:<56} {:>9}  {:<26} {:>7}  baseline",
        "raw core pub/sub",
        fmt_rate(core_base),
        fmt_runs(&raw_core_rates),
        "100%"
    );
    for &row in &rows {
        let (base, goal) = match row.mode {
            Mode::JetStream => (js_base, 0.40),
            Mode::Core => (core_base, 0.50),
        };
        let runs = rates.get(&row).cloned().unwrap_or_default();
        let m = median(&runs);
        let ratio = if base > 0.0 { m / base } else { 0.0 };
        println!(
            "{:<56} {:>9}  {:<26} {:>6.1}%  >= {:.0}%: {}",
            row.label(),
            fmt_rate(m),
            fmt_runs(&runs),
            ratio * 100.0,
            goal * 100.0,
            verdict(ratio >= goal)
        );
    }
    cpu_table(
        &[
            ("raw JetStream async publish", &raw_js_cpu[..]),
            ("raw core pub/sub", &raw_core_cpu[..]),
        ],
        &rows,
        &cpus,
        |row| {
            let (base, goal) = match row.mode {
                Mode::JetStream => (js_base, 0.40),
                Mode::Core => (core_base, 0.50),
            };
            base * goal
        },
    );
    println!();
    println!(
        "{:<56} {:>9}  {:>9} {:>9} {:>9}  goal",
        "latency at half load", "paced/s", "p50", "p99", "max"
    );
    for &row in &rows {
        let Some(runs) = lat.get(&row) else { continue };
        let p99 = median_duration(&runs.iter().map(|r| r.p99).collect::<Vec<_>>());
        println!(
            "{}  p99 <= 5 ms: {} (p99 of runs: {})",
            latency_line(&row.label(), half_of(&rates, &row), runs),
            verdict(p99 <= Duration::from_millis(5)),
            p99s(runs)
        );
    }
    for (row, runs) in &direct {
        println!(
            "{}  diagnostic (p99 of runs: {})",
            latency_line(row.mode.direct_label(), half_of(&rates, row), runs),
            p99s(runs)
        );
    }
    println!();
    println!(
        "{:<56} {:>9}  {:>9} {:>9} {:>9}  diagnostic",
        "latency at light load", "paced/s", "p50", "p99", "max"
    );
    for (row, runs) in &floor {
        println!(
            "{}  (p99 of runs: {})",
            latency_line(&row.label(), LIGHT_RATE, runs),
            p99s(runs)
        );
    }
    if rows.iter().any(|r| r.tmpfs) {
        println!(
            "* tmpfs: data directory on /dev/shm, where fsync is free; a diagnostic of what the \
             per-commit fsync costs, not a durable setup."
        );
    }
    println!("total time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
