//! Kafka → signal → firing throughput, against the broker's own consume rate
//! measured in the same run, on one partition and on several.
//!
//! For each partition count of `SIGNALBOX_BENCH_KAFKA_PARTITIONS` (default
//! `1,4`), a topic of a real broker (tansu, started by the test kit) is filled
//! with `SIGNALBOX_BENCH_KAFKA_RECORDS` records (default 20 000, keyed, so
//! they spread over the partitions) by the independent client
//! (confluent-kafka). Then, on the same pre-filled topic:
//! - baseline: a confluent-kafka consumer reads every record (partitions
//!   assigned, no group join), once before the router and once after it, so
//!   a change in the machine's load during the row shows as two different
//!   baselines. Two times of each read: from the assign to the last record
//!   (it counts the first fetch, about a quarter of a second on loopback
//!   whatever the record count, so this rate grows with the record count),
//!   and from the first record to the last (the steady-state read, timed
//!   like the router below);
//! - signalbox: a router (release build) consumes the topic through the
//!   `kafka-json` adapter, stores each signal (redb, fsync per batch) and
//!   publishes one firing per record on core NATS; timed from the first
//!   firing to the last, as a NATS subscriber sees them. Once per value of
//!   `SIGNALBOX_BENCH_KAFKA_IN_FLIGHT` (the source's `batches_in_flight`,
//!   default `1,2`: 1 is the lock step of before 2026-12-06, where the worker
//!   reads the next batch only once the last is stored), each with a group
//!   of its own and followed by another baseline.
//!
//! - relay: the peer that does the same Kafka and NATS work and nothing else
//!   (an rdkafka group consumer of the topic in this process, offsets
//!   committed every second, one core NATS publish per record), timed like
//!   the router; after the routers, with a group of its own.
//!
//! Besides the rates, the CPU time per record over the timed window is read
//! from `/proc` for this process (the router and the counting subscriber),
//! the Kafka worker process, tansu and nats-server: unlike a rate, it does not
//! depend on what else ran on the machine at the same time.
//!
//! Run: `cargo bench --bench kafka_throughput` (needs `scripts/setup.sh --test`).
//! Prints the rates and their ratios; nothing is asserted (noisy machines).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use serde_json::json;
use signalbox_router::PluginEntry;
use signalbox_testkit::{
    ConsumeTiming, KafkaRecord, TestKafka, TestNats, TestRouter, plugin_component,
};

/// The allocator of the `signalbox` binary, so that the router in this
/// process allocates as it does there (as in `e2e_load` and `group_load`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ALL: &str = r#"
id: all-orders
signal: order_created
action: {trigger: {subject: runs.orders}}
params: {order: "{order}"}
"#;

fn main() -> Result<()> {
    let records: usize = std::env::var("SIGNALBOX_BENCH_KAFKA_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let partitions: Vec<i32> = match std::env::var("SIGNALBOX_BENCH_KAFKA_PARTITIONS") {
        Ok(v) => v
            .split(',')
            .map(|p| p.trim().parse::<i32>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("SIGNALBOX_BENCH_KAFKA_PARTITIONS={v:?}: want e.g. 1,4"))?,
        Err(_) => vec![1, 4],
    };
    let in_flight: Vec<usize> = match std::env::var("SIGNALBOX_BENCH_KAFKA_IN_FLIGHT") {
        Ok(v) => v
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("SIGNALBOX_BENCH_KAFKA_IN_FLIGHT={v:?}: want e.g. 1,2"))?,
        Err(_) => vec![1, 2],
    };
    ensure!(
        in_flight.iter().all(|&w| w >= 1),
        "batches in flight start at 1"
    );
    ensure!(
        partitions.iter().all(|&p| p >= 1),
        "partition counts start at 1"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(records, &partitions, &in_flight))
}

/// One partition count's figures.
struct Row {
    partitions: i32,
    records: usize,
    produce: f64,
    /// Baseline timings: before the first router, then after each.
    consume: Vec<ConsumeTiming>,
    routers: Vec<RouterRun>,
    /// The relay peer's run, after the routers'.
    relay: Timed,
}

/// A run timed at a NATS subscriber: records/s from the first message to
/// the last, and CPU µs per record over that window by process name.
struct Timed {
    rate: f64,
    cpu_us: BTreeMap<String, f64>,
}

/// One router's run over the topic.
struct RouterRun {
    in_flight: usize,
    timed: Timed,
}

async fn run(n: usize, partition_counts: &[i32], in_flight: &[usize]) -> Result<()> {
    let nats = TestNats::start()?;
    let kafka = TestKafka::start().await?;
    let mut rows = Vec::new();
    for &p in partition_counts {
        rows.push(row(&nats, &kafka, n, p, in_flight).await?);
    }
    println!("kafka_throughput: {n} records per row");
    for r in &rows {
        let rate = |secs: f64| r.records as f64 / secs;
        let rates = |secs: fn(&ConsumeTiming) -> f64| {
            let all: Vec<String> = r
                .consume
                .iter()
                .map(|c| format!("{:.0}", rate(secs(c))))
                .collect();
            all.join(", ")
        };
        println!("  {} partition(s):", r.partitions);
        println!(
            "    produce (confluent-kafka, incl. process start): {:>9.0} records/s",
            r.produce
        );
        println!(
            "    consume (confluent-kafka, baseline), in order, from the assign:  {} records/s",
            rates(|c| c.from_assign)
        );
        println!(
            "    the same reads from their first record to the last:               {} records/s",
            rates(|c| c.from_first_record)
        );
        for (i, run) in r.routers.iter().enumerate() {
            // The baselines just before and just after this router's run.
            let around = |secs: fn(&ConsumeTiming) -> f64| {
                (rate(secs(&r.consume[i])) + rate(secs(&r.consume[i + 1]))) / 2.0
            };
            let assign = around(|c| c.from_assign);
            let first = around(|c| c.from_first_record);
            println!(
                "    signalbox, batches_in_flight = {}:              {:>9.0} records/s (first firing to last), {:.3}x the consume rate around it from the assign, {:.3}x from the first record, {:.3}x the produce rate",
                run.in_flight,
                run.timed.rate,
                run.timed.rate / assign,
                run.timed.rate / first,
                run.timed.rate / r.produce
            );
            println!(
                "      {:.3}x the relay's rate",
                run.timed.rate / r.relay.rate
            );
            println!("      {}", cpu_line(&run.timed));
        }
        println!(
            "    relay (rdkafka group consumer -> core NATS publish, offsets committed every second): {:>9.0} records/s (first message to last)",
            r.relay.rate
        );
        println!("      {}", cpu_line(&r.relay));
    }
    Ok(())
}

/// "CPU µs per record while timed: <process> <µs>, …" of one timed run.
fn cpu_line(timed: &Timed) -> String {
    let cpu: Vec<String> = timed
        .cpu_us
        .iter()
        .map(|(name, us)| format!("{name} {us:.1}"))
        .collect();
    format!("CPU µs per record while timed: {}", cpu.join(", "))
}

async fn row(
    nats: &TestNats,
    kafka: &TestKafka,
    n: usize,
    partitions: i32,
    in_flight: &[usize],
) -> Result<Row> {
    let topic = format!("bench-p{partitions}");
    kafka.create_topic(&topic, partitions).await?;
    let batch: Vec<KafkaRecord> = (0..n)
        .map(|i| KafkaRecord {
            key: Some(format!("o-{i}")),
            value: Some(
                json!({"type": "order_created", "order": i, "region": "eu", "amount": i % 100})
                    .to_string(),
            ),
            ..KafkaRecord::default()
        })
        .collect();
    let produce_started = Instant::now();
    for chunk in batch.chunks(5_000) {
        kafka.produce(&topic, chunk).await?;
    }
    let produce_secs = produce_started.elapsed().as_secs_f64();
    let mut consume = vec![kafka.consume_timing(&topic, n).await?];
    let mut routers = Vec::new();
    for &w in in_flight {
        routers.push(router_run(nats, kafka, n, &topic, partitions, w).await?);
        consume.push(kafka.consume_timing(&topic, n).await?);
    }
    let relay = relay_run(nats, kafka, n, &topic, partitions).await?;
    Ok(Row {
        relay,
        partitions,
        records: n,
        produce: n as f64 / produce_secs,
        consume,
        routers,
    })
}

async fn router_run(
    nats: &TestNats,
    kafka: &TestKafka,
    n: usize,
    topic: &str,
    partitions: i32,
    in_flight: usize,
) -> Result<RouterRun> {
    let plugin = plugin_component("adapter_kafka_json")?;
    let source = toml::from_str(&format!(
        "name = \"bench\"\nbrokers = [{:?}]\ntopics = [{topic:?}]\nadapter = \"kafka-json\"\ngroup_id = \"bench-router-{partitions}-{in_flight}\"\nbatches_in_flight = {in_flight}\n",
        kafka.bootstrap()
    ))?;
    let client = nats.client().await?;
    let mut runs = client.subscribe("runs.orders").await?;
    client.flush().await?;
    let router = TestRouter::start_configured(nats, |c| {
        c.plugins.adapters.push(PluginEntry {
            name: "kafka-json".into(),
            file: plugin,
            settings: BTreeMap::from([
                ("name-pointer".into(), "/type".into()),
                (
                    "params".into(),
                    r#"{"order": "/order", "region": "/region", "amount": "/amount"}"#.into(),
                ),
            ]),
        });
        c.sources.kafka.push(source);
    })
    .await?;
    router.add_subscription(&client, ALL).await?;
    let timed = time_messages(&mut runs, n).await?;
    router.shutdown().await;
    drop(runs);
    Ok(RouterRun { in_flight, timed })
}

/// Waits for `n` messages on `messages` and times them from the first to
/// the last, with the CPU each process used over that window.
async fn time_messages(messages: &mut async_nats::Subscriber, n: usize) -> Result<Timed> {
    let mut first = None;
    let mut cpu_before = HashMap::new();
    let mut seen = 0;
    while seen < n {
        tokio::time::timeout(Duration::from_secs(120), messages.next())
            .await
            .context("messages stopped arriving")?
            .context("subscription closed")?;
        if first.is_none() {
            cpu_before = cpu_by_name();
            first = Some(Instant::now());
        }
        seen += 1;
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let cpu_after = cpu_by_name();
    ensure!(secs > 0.0, "no time measured");
    let cpu_us = cpu_after
        .iter()
        .map(|(name, after)| {
            let before = cpu_before.get(name).copied().unwrap_or_default();
            let used = after.saturating_sub(before);
            (name.clone(), used.as_secs_f64() * 1e6 / n as f64)
        })
        .collect();
    Ok(Timed {
        rate: n as f64 / secs,
        cpu_us,
    })
}

/// The peer: the same Kafka work as the router's Kafka worker (a group
/// consumer of the topic, offsets committed every second) and the same NATS
/// work as its firings (one core publish per record), with no adapter, no
/// store and no matching. It runs in this process, as the router does.
async fn relay_run(
    nats: &TestNats,
    kafka: &TestKafka,
    n: usize,
    topic: &str,
    partitions: i32,
) -> Result<Timed> {
    use rdkafka::Message as _;
    use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", format!("bench-relay-{partitions}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("relay consumer")?;
    consumer.subscribe(&[topic]).context("relay subscribe")?;
    let client = nats.client().await?;
    let mut relayed = client.subscribe("relay.orders").await?;
    client.flush().await?;
    let publisher = nats.client().await?;
    let relay = tokio::spawn(async move {
        let mut last_commit = Instant::now();
        for _ in 0..n {
            let record = consumer.recv().await.context("relay consume")?;
            let value = bytes::Bytes::copy_from_slice(record.payload().unwrap_or_default());
            drop(record);
            publisher.publish("relay.orders", value).await?;
            if last_commit.elapsed() >= Duration::from_secs(1) {
                consumer.commit_consumer_state(CommitMode::Async)?;
                last_commit = Instant::now();
            }
        }
        publisher.flush().await?;
        consumer.commit_consumer_state(CommitMode::Sync)?;
        anyhow::Ok(())
    });
    let timed = time_messages(&mut relayed, n).await;
    relay.await.context("relay task")??;
    timed
}

/// Ticks per second of the `utime` and `stime` fields of `/proc/<pid>/stat`:
/// `USER_HZ`, which Linux fixes at 100 in its user-space ABI.
const USER_HZ: u64 = 100;

/// Command name, parent pid and user + system CPU time of a process, from
/// `/proc/<pid>/stat`; `None` when it cannot be read (it ended) or parsed.
fn stat(pid: &str) -> Option<(String, u32, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces: count
    // the fields after its closing one (field 3, the state, is index 0).
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let ppid: u32 = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((
        comm,
        ppid,
        Duration::from_millis((utime + stime) * 1000 / USER_HZ),
    ))
}

/// CPU time used so far by this process ("router+bench": the router runs in
/// it, with the subscriber that counts firings) and by each of its descendants
/// (the Kafka worker is named "kafka-worker"; tansu and nats-server by their
/// command names), summed per name.
fn cpu_by_name() -> HashMap<String, Duration> {
    let own = std::process::id();
    let mut procs: HashMap<u32, (String, u32, Duration)> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(s) = stat(&pid.to_string()) {
                procs.insert(pid, s);
            }
        }
    }
    let descends = |mut pid: u32| {
        while let Some((_, ppid, _)) = procs.get(&pid) {
            if *ppid == own {
                return true;
            }
            pid = *ppid;
        }
        false
    };
    let mut by_name: HashMap<String, Duration> = HashMap::new();
    for (&pid, (comm, _, cpu)) in &procs {
        let name = if pid == own {
            "router+bench".to_string()
        } else if descends(pid) {
            if comm == "signalbox" {
                "kafka-worker".to_string()
            } else {
                comm.clone()
            }
        } else {
            continue;
        };
        *by_name.entry(name).or_default() += *cpu;
    }
    by_name
}
