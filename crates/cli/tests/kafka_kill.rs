//! Kafka exactly-once under SIGKILL: a real `signalbox serve` consumes a topic
//! of a real broker (tansu) through the `kafka-json` adapter component while an
//! independent producer (confluent-kafka) keeps writing, and the router is
//! SIGKILLed at pseudo-random moments and restarted on the same data directory.
//! At the end every record must be exactly one stored signal and exactly one
//! firing in a JetStream stream: none lost, none repeated.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use serde_json::{Value, json};
use signalbox_testkit::{
    KafkaRecord, KillOnDrop, TestKafka, TestNats, init_logs, plugin_component,
};

const ALL_ORDERS: &str = r#"
id: all-orders
signal: order_created
action: {trigger: {subject: runs.orders}}
params: {order: "{order}"}
"#;

/// Records in the topic; produced in `CHUNKS` paced chunks.
const RECORDS: usize = 4_000;
const CHUNKS: usize = 20;

/// `signalbox serve` with this config (log in `router.log` beside it).
fn start_router(config: &Path) -> Result<KillOnDrop> {
    signalbox_testkit::start_serve(Path::new(env!("CARGO_BIN_EXE_signalbox")), config)
}

fn router_log_tail(config: &Path) -> String {
    signalbox_testkit::router_log_tail(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_router_mid_topic_yields_each_record_exactly_once() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let mut kafka = TestKafka::start().await?;
    // Each record its own batch: tansu answers a fetch from inside a batch
    // without the rest of it, which a restart from a commit would hit.
    kafka.set_client_property("batch.num.messages", "1");
    kafka.create_topic("orders", 3).await?;
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "RUNS".into(),
        subjects: vec!["runs.>".into()],
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await?;

    let dir = tempfile::tempdir()?;
    let subs = dir.path().join("subscriptions");
    std::fs::create_dir_all(&subs)?;
    std::fs::write(subs.join("all.yaml"), ALL_ORDERS)?;
    let config = dir.path().join("signalbox.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = {data:?}
subscriptions = [{subs:?}]

[nats]
urls = [{url:?}]

[[plugins.adapters]]
name = "kafka-json"
file = {plugin:?}
settings = {{ "name-pointer" = "/type", params = '{{"order": "/order"}}' }}

[[sources.kafka]]
name = "orders"
brokers = [{brokers:?}]
topics = ["orders"]
adapter = "kafka-json"
group_id = "kill-test"
batch_size = 100
properties = {{ "session.timeout.ms" = "6000" }}
"#,
            data = dir.path().join("data").display().to_string(),
            subs = subs.display().to_string(),
            url = nats.url(),
            plugin = plugin_component("adapter_kafka_json")?
                .display()
                .to_string(),
            brokers = kafka.bootstrap(),
        ),
    )?;

    let mut router = start_router(&config)?;
    let records: Vec<KafkaRecord> = (0..RECORDS)
        .map(|n| KafkaRecord {
            key: Some(format!("o-{n}")),
            value: Some(json!({"type": "order_created", "order": n}).to_string()),
            ..KafkaRecord::default()
        })
        .collect();
    let producer = {
        async move {
            for chunk in records.chunks(RECORDS / CHUNKS) {
                kafka.produce("orders", chunk).await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            anyhow::Ok(kafka)
        }
    };
    let producer = tokio::spawn(producer);

    // SIGKILL while records keep arriving: after each start, wait until the
    // router made progress (more firings than before), then kill it a
    // pseudo-random moment later, mid-batch or between batch and commit.
    let runs = js.get_stream("RUNS").await?;
    let fired = || {
        let mut s = runs.clone();
        async move { anyhow::Ok(s.info().await?.state.messages) }
    };
    let mut kills = 0;
    let mut seed: u64 = 11;
    while kills < 6 || !producer.is_finished() {
        let before = fired().await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while fired().await? == before {
            if producer.is_finished() && before as usize >= RECORDS {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "no progress after restart {kills}; router log:\n{}",
                router_log_tail(&config)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(50 + (seed >> 33) % 700)).await;
        router.kill()?;
        router.wait()?;
        kills += 1;
        router = start_router(&config)?;
        if kills > 100 {
            bail!("the producer never finished");
        }
    }
    let kafka = producer.await??;

    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut info = runs.clone();
        let have = info.info().await?.state.messages as usize;
        if have >= RECORDS {
            break;
        }
        if Instant::now() >= deadline {
            // Lost, or just slow? Ask the router what it stored.
            let stored = signalbox_testkit::admin(&client, "signalbox.admin", "signals.ls", "")
                .await
                .map(|v| v.to_string())
                .unwrap_or_else(|e| format!("(no answer: {e})"));
            // Committed offsets past what is stored would mean records were
            // skipped; offsets behind it, a partition that stopped fetching.
            let committed = kafka
                .committed("kill-test", "orders", 3)
                .await
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|e| format!("(unknown: {e})"));
            bail!(
                "only {have} of {RECORDS} firings after {kills} kills; stored: {stored}; committed offsets by partition: {committed}; router log:\n{}",
                router_log_tail(&config)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let counter = runs
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = counter.messages().await?;
    let mut per_order: BTreeMap<u64, usize> = BTreeMap::new();
    let mut received = 0;
    while received < RECORDS + 1 {
        let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await
        else {
            break;
        };
        let msg = msg.map_err(|e| anyhow::anyhow!("reading RUNS: {e}"))?;
        received += 1;
        let body: Value = serde_json::from_slice(&msg.payload)?;
        let order = body["params"]["order"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| body["params"]["order"].as_u64())
            .context("order param")?;
        *per_order.entry(order).or_default() += 1;
    }
    let twice: Vec<_> = per_order.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(twice.is_empty(), "orders fired more than once: {twice:?}");
    let missing = (0..RECORDS as u64)
        .filter(|o| !per_order.contains_key(o))
        .count();
    ensure!(missing == 0, "{missing} records never fired");
    assert_eq!(received, RECORDS);
    assert!(kills >= 5, "killed {kills} times");

    // The group's offsets reached the end of every partition.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let committed = kafka.committed("kill-test", "orders", 3).await?;
        let total: i64 = committed.values().sum();
        if total == RECORDS as i64 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "committed offsets {committed:?} do not reach the {RECORDS} records"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // And the store holds each record once.
    router.kill()?;
    router.wait()?;
    let store = signalbox_store::Store::open(
        &dir.path().join("data").join("signalbox.redb"),
        signalbox_store::StoreOptions::default(),
    )?;
    let names = store.signal_names()?;
    let stored = names
        .iter()
        .find(|(n, _)| n == "order_created")
        .map(|(_, last)| *last);
    assert_eq!(
        stored,
        Some(RECORDS as u64),
        "each record stored once: {names:?}"
    );
    let log = std::fs::read_to_string(config.with_file_name("router.log")).unwrap_or_default();
    let reread = log.matches("duplicate signal acknowledged").count();
    eprintln!(
        "{RECORDS} records, {kills} kills, {reread} records re-read after a kill (dedup), each one signal and one firing"
    );
    Ok(())
}
