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
use serde_json::{Value, json};
use signalbox_testkit::{
    FiringStream, KafkaCase, KafkaRecord, ServedRouter, TestKafka, firing_order, plugin_component,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_router_mid_topic_yields_each_record_exactly_once() -> Result<()> {
    let KafkaCase {
        nats,
        mut kafka,
        client,
    } = KafkaCase::start(TestKafka::start()).await?;
    // Each record its own batch: tansu answers a fetch from inside a batch
    // without the rest of it, which a restart from a commit would hit.
    kafka.set_client_property("batch.num.messages", "1");
    kafka.create_topic("orders", 3).await?;
    let runs = FiringStream::create(&client, "RUNS", &["runs.>"]).await?;
    let mut router = ServedRouter::new(
        Path::new(env!("CARGO_BIN_EXE_signalbox")),
        &nats.url(),
        &[("all.yaml", ALL_ORDERS)],
        &format!(
            r#"
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
            plugin = plugin_component("adapter_kafka_json")?
                .display()
                .to_string(),
            brokers = kafka.bootstrap(),
        ),
    )?;

    router.start()?;
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
    let fired = || runs.count();
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
                router.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(50 + (seed >> 33) % 700)).await;
        router.kill_and_restart()?;
        kills += 1;
        if kills > 100 {
            bail!("the producer never finished");
        }
    }
    let kafka = producer.await??;

    if !runs
        .reaches(RECORDS as u64, Duration::from_secs(300))
        .await?
    {
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
            "only {} of {RECORDS} firings after {kills} kills; stored: {stored}; committed offsets by partition: {committed}; router log:\n{}",
            runs.count().await?,
            router.log_tail()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let firings = runs.read_all(RECORDS + 1).await?;
    let received = firings.len();
    let mut per_order: BTreeMap<u64, usize> = BTreeMap::new();
    for msg in &firings {
        let body: Value = serde_json::from_slice(&msg.payload)?;
        let order = firing_order(&body).context("order param")?;
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
    let store = router.open_store()?;
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
    let reread = router
        .log()
        .matches("duplicate signal acknowledged")
        .count();
    eprintln!(
        "{RECORDS} records, {kills} kills, {reread} records re-read after a kill (dedup), each one signal and one firing"
    );
    Ok(())
}
