//! Kafka → signal → firing throughput, against the broker's own consume rate
//! measured in the same run.
//!
//! A topic of a real broker (tansu, started by the test kit) is filled with
//! `SIGNALBOX_BENCH_KAFKA_RECORDS` records (default 20 000) by the independent
//! client (confluent-kafka). Then, on the same pre-filled topic:
//! - baseline: a confluent-kafka consumer reads every record (partitions
//!   assigned, no group join; time from the assign to the last record);
//! - signalbox: a router (release build) consumes the topic through the
//!   `kafka-json` adapter, stores each signal (redb, fsync per batch) and
//!   publishes one firing per record on core NATS; timed from the first
//!   firing to the last, as a NATS subscriber sees them.
//!
//! Run: `cargo bench --bench kafka_throughput` (needs `scripts/setup.sh --test`).
//! Prints both rates and their ratio; nothing is asserted (noisy machines).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use serde_json::json;
use signalbox_router::PluginEntry;
use signalbox_testkit::{KafkaRecord, TestKafka, TestNats, TestRouter, plugin_component};

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(records))
}

async fn run(n: usize) -> Result<()> {
    let nats = TestNats::start()?;
    let kafka = TestKafka::start().await?;
    kafka.create_topic("bench", 1).await?;
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
        kafka.produce("bench", chunk).await?;
    }
    let produce_secs = produce_started.elapsed().as_secs_f64();

    let consume_secs = kafka.consume_seconds("bench", n).await?;

    let plugin = plugin_component("adapter_kafka_json")?;
    let source = toml::from_str(&format!(
        "name = \"bench\"\nbrokers = [{:?}]\ntopics = [\"bench\"]\nadapter = \"kafka-json\"\ngroup_id = \"bench-router\"\n",
        kafka.bootstrap()
    ))?;
    let client = nats.client().await?;
    let mut runs = client.subscribe("runs.orders").await?;
    client.flush().await?;
    let router = TestRouter::start_configured(&nats, |c| {
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
    let mut first = None;
    let mut seen = 0;
    while seen < n {
        let msg = tokio::time::timeout(Duration::from_secs(120), runs.next())
            .await
            .context("firings stopped arriving")?
            .context("subscription closed")?;
        let _ = msg;
        first.get_or_insert_with(Instant::now);
        seen += 1;
    }
    let router_secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    ensure!(router_secs > 0.0, "no time measured");
    router.shutdown().await;

    let consume_rate = n as f64 / consume_secs;
    let router_rate = n as f64 / router_secs;
    println!("kafka_throughput: {n} records, one partition");
    println!(
        "  produce (confluent-kafka, incl. process start): {:>9.0} records/s",
        n as f64 / produce_secs
    );
    println!("  consume (confluent-kafka, baseline):            {consume_rate:>9.0} records/s");
    println!("  signalbox (record -> stored signal -> firing):  {router_rate:>9.0} records/s");
    println!(
        "  ratio signalbox / consume:                      {:>9.3}",
        router_rate / consume_rate
    );
    println!(
        "  ratio signalbox / produce:                      {:>9.3}",
        router_rate / (n as f64 / produce_secs)
    );
    Ok(())
}
