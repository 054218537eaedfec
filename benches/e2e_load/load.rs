//! The load driver shared by the load tools whose routers (or relay) run as
//! processes of their own: it publishes `n` signals spread round-robin over a
//! list of signal names (as fast as it can, or paced), counts the firings
//! that arrive at the target (the JetStream stream `RUNS` over `runs.>`, or
//! the core subject `fired.load`) and times each one from its signal's
//! publish.
//!
//! A signal's body is `{"id":"<tag>-<i>","params":{"n":<i>}}`; whatever
//! produces the firing must carry `params.n` (the router's subscriptions copy
//! it, the relay forwards the body as it is), so each firing is matched to its
//! signal and counted once. The run is split in two, [`Run::prepare`] (streams,
//! receiver, bodies) and [`Run::go`] (the publishes and the wait for the last
//! firing), so that a caller meters CPU over `go` alone. Every wait is
//! bounded: a receiver gives up after [`IDLE_TIMEOUT`] without a firing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{BoxStream, FuturesUnordered};

/// A receiver gives up when no firing arrived for this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Where firings go in JetStream mode (captured by the `RUNS` stream).
pub const JS_TARGET: &str = "runs.load";
/// Where firings go in core mode (no stream captures it).
pub const CORE_TARGET: &str = "fired.load";
/// The signal stream of a router alone in JetStream mode (its default).
pub const SIGNALS_STREAM: &str = "SIGNALS";
/// The firing stream in JetStream mode.
pub const RUNS_STREAM: &str = "RUNS";
/// Marks "not sent yet" in the send-time table.
pub const NOT_SENT: u64 = u64::MAX;

/// How signals go in and firings come out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ingest {
    /// Signals published to JetStream (PubAcks awaited, pipelined); firings
    /// to the `RUNS` stream, read back with an ordered consumer.
    JetStream,
    /// Signals as plain core publishes; firings on a core subject.
    Core,
}

impl Ingest {
    /// `jetstream` or `core`, as the router's `ingest` setting spells it.
    pub fn setting(self) -> &'static str {
        match self {
            Ingest::JetStream => "jetstream",
            Ingest::Core => "core",
        }
    }

    /// The subject firings are published to.
    pub fn target(self) -> &'static str {
        match self {
            Ingest::JetStream => JS_TARGET,
            Ingest::Core => CORE_TARGET,
        }
    }
}

/// A subscription (YAML) that fires for every signal named `name`, to the
/// target of `ingest`, carrying `params.n`.
pub fn subscription(id: &str, name: &str, ingest: Ingest) -> String {
    format!(
        "id: {id}\nsignal: {name}\nwhere: {{n: [{{numeric: [\">=\", 0]}}]}}\naction: {{publish: {{subject: {target}}}}}\nparams: {{n: \"{{n}}\"}}\n",
        target = ingest.target()
    )
}

/// Deletes stream `name` if it exists.
pub async fn delete_stream(js: &jetstream::Context, name: &str) {
    // Absent is fine: every run starts from a clean server state.
    let _ = js.delete_stream(name).await;
}

/// Creates the firing stream `RUNS` over `runs.>` with `replicas` replicas
/// (deleting an earlier one first).
pub async fn fresh_runs_stream(js: &jetstream::Context, replicas: usize) -> Result<()> {
    delete_stream(js, RUNS_STREAM).await;
    js.create_stream(stream::Config {
        name: RUNS_STREAM.into(),
        subjects: vec!["runs.>".into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .context("creating RUNS")?;
    Ok(())
}

/// A client whose subscriptions can buffer a whole run (no slow-consumer drops).
pub async fn big_client(urls: &[String]) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(urls)
        .await
        .with_context(|| format!("connecting to {urls:?}"))
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Firings per second, first publish to last firing received.
    pub rate: f64,
    /// Distinct firings received, signals sent, and firings received twice.
    pub received: usize,
    pub sent: usize,
    pub duplicates: usize,
    /// Signal publish → firing received.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Outcome {
    /// Whether every signal fired exactly once.
    pub fn complete(&self) -> bool {
        self.received == self.sent && self.duplicates == 0
    }
}

/// What a receiver saw.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Distinct firings received.
    pub count: usize,
    /// Firings received for an index already seen.
    pub duplicates: usize,
    /// When the last distinct firing arrived.
    pub last: Option<Instant>,
    /// Signal publish → firing received, per firing.
    pub latencies: Vec<Duration>,
    /// Per firing that carries its creation time: milliseconds from the
    /// signal's publish to the firing's creation (inside the router's
    /// transaction), and from there to its receipt.
    pub halves: Vec<(i64, i64)>,
}

impl Received {
    /// What a run of `sent` signals, the first published at `start`, measured.
    pub fn outcome(self, start: Instant, sent: usize) -> Result<Outcome> {
        let last = self.last.context("no firing received at all")?;
        let mut lat = self.latencies;
        lat.sort();
        Ok(Outcome {
            rate: self.count as f64 / (last - start).as_secs_f64(),
            received: self.count,
            sent,
            duplicates: self.duplicates,
            p50: percentile(&lat, 50.0),
            p99: percentile(&lat, 99.0),
            max: lat.last().copied().unwrap_or_default(),
        })
    }
}

/// A prepared run: the receiver listens, the bodies are built.
pub struct Run {
    ingest: Ingest,
    names: Vec<String>,
    prefix: String,
    rate: Option<f64>,
    bodies: Vec<Bytes>,
    producer: async_nats::Client,
    sent_at: Arc<Vec<AtomicU64>>,
    base: Instant,
    receiver: tokio::task::JoinHandle<Result<Received>>,
}

impl Run {
    /// Sets up a run of `n` signals named round-robin from `names` (published
    /// as `<prefix>.<name>`), paced at `rate` signals/s or as fast as
    /// possible. The firing stream must exist (JetStream).
    pub async fn prepare(
        urls: &[String],
        ingest: Ingest,
        prefix: &str,
        names: &[String],
        n: usize,
        rate: Option<f64>,
        tag: &str,
    ) -> Result<Run> {
        if names.is_empty() || n == 0 {
            bail!("a run needs at least one name and one signal");
        }
        let recv_client = big_client(urls).await?;
        let firings: BoxStream<'static, Result<Bytes>> = match ingest {
            Ingest::JetStream => jetstream::new(recv_client.clone())
                .get_stream(RUNS_STREAM)
                .await
                .context("RUNS stream")?
                .create_consumer(consumer::pull::OrderedConfig::default())
                .await
                .context("ordered consumer on RUNS")?
                .messages()
                .await
                .context("RUNS messages")?
                .map(|m| m.map(|m| m.message.payload).map_err(anyhow::Error::from))
                .boxed(),
            Ingest::Core => {
                let s = recv_client.subscribe(CORE_TARGET).await?;
                recv_client.flush().await?;
                // Keep the client alive as long as the subscription.
                s.map(move |m| {
                    let _ = &recv_client;
                    Ok(m.payload)
                })
                .boxed()
            }
        };
        let sent_at: Arc<Vec<AtomicU64>> =
            Arc::new((0..n).map(|_| AtomicU64::new(NOT_SENT)).collect());
        let bodies = (0..n)
            .map(|i| Bytes::from(format!(r#"{{"id":"{tag}-{i}","params":{{"n":{i}}}}}"#)))
            .collect();
        let base = Instant::now();
        let receiver = spawn_receiver(firings, n, IDLE_TIMEOUT, base, unix_ms(), sent_at.clone());
        Ok(Run {
            ingest,
            names: names.to_vec(),
            prefix: prefix.to_string(),
            rate,
            bodies,
            producer: async_nats::connect(urls).await.context("producer")?,
            sent_at,
            base,
            receiver,
        })
    }

    /// Publishes every signal and waits for the firings (bounded).
    pub async fn go(self) -> Result<Outcome> {
        let n = self.bodies.len();
        let subjects: Vec<String> = self
            .names
            .iter()
            .map(|name| format!("{}.{name}", self.prefix))
            .collect();
        let js = jetstream::new(self.producer.clone());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let acker = spawn_acker(rx);
        let start = Instant::now();
        let mut next = 0usize;
        while next < n {
            let due = match self.rate {
                None => n,
                Some(r) => ((start.elapsed().as_secs_f64() * r) as usize + 1).min(n),
            };
            while next < due {
                self.sent_at[next].store(
                    (Instant::now() - self.base).as_nanos() as u64,
                    Ordering::Release,
                );
                let subject = subjects[next % subjects.len()].clone();
                let body = self.bodies[next].clone();
                match self.ingest {
                    Ingest::JetStream => {
                        let ack = js.publish(subject, body).await?;
                        tx.send(ack).context("acker stopped")?;
                    }
                    Ingest::Core => self.producer.publish(subject, body).await?,
                }
                next += 1;
            }
            if self.rate.is_some() && next < n {
                self.producer.flush().await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        self.producer.flush().await?;
        drop(tx);
        let acked = tokio::time::timeout(Duration::from_secs(120), acker)
            .await
            .context("signal acks timed out")???;
        if self.ingest == Ingest::JetStream && acked as usize != n {
            bail!("{acked} of {n} signals acked by their stream");
        }
        self.receiver.await??.outcome(start, n)
    }
}

/// Awaits JetStream PubAcks concurrently while the producer keeps publishing;
/// returns how many were acked. The client bounds the acks in flight (5 000).
pub fn spawn_acker(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<jetstream::context::PublishAckFuture>,
) -> tokio::task::JoinHandle<Result<u64>> {
    tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut acked = 0u64;
        let mut open = true;
        loop {
            tokio::select! {
                m = rx.recv(), if open => match m {
                    Some(f) => pending.push(f.into_future()),
                    None => open = false,
                },
                Some(r) = pending.next(), if !pending.is_empty() => {
                    r.context("JetStream publish ack")?;
                    acked += 1;
                }
                else => break,
            }
        }
        Ok(acked)
    })
}

/// Turns a firing body into the index of the signal that caused it (the
/// number `params.n`, or the string a template made of it), and the firing's
/// creation time (ms since the Unix epoch) when it carries one (a body
/// published straight to the target, without the router, does not).
pub fn firing(payload: &[u8]) -> Option<(usize, Option<i64>)> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let n = &v["params"]["n"];
    let index = n
        .as_u64()
        .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| usize::try_from(n).ok())?;
    Some((index, v["created_at_ms"].as_i64()))
}

/// Milliseconds since the Unix epoch, the clock of a firing's `created_at_ms`.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Counts firings until `n` distinct ones arrived or none came for `idle`.
/// `sent_at[i]` is when signal `i` was published, in ns after `base` (whose
/// Unix time in ms is `base_unix_ms`), or [`NOT_SENT`].
pub fn spawn_receiver(
    mut firings: BoxStream<'static, Result<Bytes>>,
    n: usize,
    idle: Duration,
    base: Instant,
    base_unix_ms: i64,
    sent_at: Arc<Vec<AtomicU64>>,
) -> tokio::task::JoinHandle<Result<Received>> {
    tokio::spawn(async move {
        let mut seen = vec![false; n];
        let mut got = Received {
            latencies: Vec::with_capacity(n),
            ..Received::default()
        };
        while got.count < n {
            let payload = match tokio::time::timeout(idle, firings.next()).await {
                Ok(Some(p)) => p?,
                Ok(None) | Err(_) => break,
            };
            let now = Instant::now();
            let Some((i, created)) = firing(&payload).filter(|(i, _)| *i < n) else {
                bail!("unexpected firing: {}", String::from_utf8_lossy(&payload));
            };
            if seen[i] {
                got.duplicates += 1;
                continue;
            }
            seen[i] = true;
            got.count += 1;
            got.last = Some(now);
            let sent = sent_at[i].load(Ordering::Acquire);
            if sent != NOT_SENT {
                let at = (now - base).as_nanos() as u64;
                got.latencies
                    .push(Duration::from_nanos(at.saturating_sub(sent)));
                if let Some(created) = created {
                    let sent_ms = base_unix_ms + (sent / 1_000_000) as i64;
                    let received_ms = base_unix_ms + (at / 1_000_000) as i64;
                    got.halves.push((created - sent_ms, received_ms - created));
                }
            }
        }
        Ok(got)
    })
}

/// The `p`th percentile of sorted durations (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The median of some values (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// `median (min–max)` with `d` decimals, or `-`.
pub fn spread(values: &[f64], d: usize) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "{:.d$} ({:.d$}–{:.d$})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

/// A target's verdict in the tables.
pub fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}
