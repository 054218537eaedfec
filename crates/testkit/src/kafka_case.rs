//! The set-up of a Kafka case: a NATS server, a broker, routers whose Kafka
//! source reads a topic through an adapter component, and the order records
//! the cases produce and count. A case then reads as records in, firings and
//! offsets out.
//!
//! The order records are `{"type": "order_created", "order": N, "amount": A}`
//! with key `o-N` and header `tenant: acme`; [`KafkaCase::orders_adapter`] maps
//! them to `order_created` signals with params `order`, `amount`, `tenant` and
//! `partition`. Every wait is bounded and says what it waited for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use serde_json::{Value, json};
use signalbox_router::PluginEntry;

use crate::{KafkaRecord, TestKafka, TestNats, TestRouter, init_logs, plugin_component};

/// A NATS server and its client, and a broker.
pub struct KafkaCase {
    /// The server the routers use.
    pub nats: TestNats,
    /// The broker (mutable: client properties, restarts).
    pub kafka: TestKafka,
    /// A client of `nats`, for subscriptions and admin requests.
    pub client: async_nats::Client,
}

/// What a case watches: the firings of its subscription and the Kafka dead
/// letters, both subscribed before anything is produced.
pub struct KafkaWatch {
    /// The subscription's firings.
    pub runs: async_nats::Subscriber,
    /// `signalbox.dead.kafka`.
    pub dead: async_nats::Subscriber,
}

impl KafkaCase {
    /// Turns logs on, starts a NATS server and connects a client, and waits
    /// for `broker` (one of the [`TestKafka`] starts: plain, TLS, SASL …).
    pub async fn start(
        broker: impl std::future::Future<Output = Result<TestKafka>>,
    ) -> Result<KafkaCase> {
        init_logs();
        let nats = TestNats::start()?;
        let kafka = broker.await?;
        let client = nats.client().await?;
        Ok(KafkaCase {
            nats,
            kafka,
            client,
        })
    }

    /// [`KafkaCase::start`] with a plain in-memory broker holding `topic`
    /// with `partitions` partitions.
    pub async fn with_topic(topic: &str, partitions: i32) -> Result<KafkaCase> {
        let case = KafkaCase::start(TestKafka::start()).await?;
        case.kafka.create_topic(topic, partitions).await?;
        Ok(case)
    }

    /// The `kafka-json` adapter mapping the order records.
    pub fn orders_adapter() -> Result<PluginEntry> {
        Ok(PluginEntry {
            name: "kafka-json".into(),
            file: plugin_component("adapter_kafka_json")?,
            settings: BTreeMap::from([
                ("name-pointer".into(), "/type".into()),
                (
                    "params".into(),
                    r#"{"order": "/order", "amount": "/amount", "tenant": "header:tenant", "partition": "meta:partition"}"#.into(),
                ),
            ]),
        })
    }

    /// A router (HTTP on) whose Kafka source `orders` reads `topic` as
    /// consumer group `group` through `adapter`, with `extra` TOML lines in
    /// the source's table (security settings).
    pub async fn router(
        &self,
        adapter: PluginEntry,
        topic: &str,
        group: &str,
        extra: &str,
    ) -> Result<TestRouter> {
        self.router_at(None, adapter, topic, group, extra).await
    }

    /// [`KafkaCase::router`] as one of several routers alone on one NATS,
    /// each reading the topic through the Kafka group: `own` names its admin
    /// prefix (`signalbox.admin.<own>`; routers on one prefix would each get
    /// only some requests) and its signal subjects (`signals-<own>`; a router
    /// alone refuses to start beside another on its subjects).
    pub async fn router_at(
        &self,
        own: Option<&str>,
        adapter: PluginEntry,
        topic: &str,
        group: &str,
        extra: &str,
    ) -> Result<TestRouter> {
        // As a user writes it in `[[sources.kafka]]`.
        let source = toml::from_str(&format!(
            "name = \"orders\"\nbrokers = [{:?}]\ntopics = [{topic:?}]\nadapter = {:?}\ngroup_id = {group:?}\n{extra}",
            self.kafka.bootstrap(),
            adapter.name,
        ))
        .context("the test's Kafka source")?;
        TestRouter::start_configured(&self.nats, |c| {
            if let Some(own) = own {
                c.admin_prefix = format!("signalbox.admin.{own}");
                c.subject_prefix = format!("signals-{own}");
            }
            c.plugins.adapters.push(adapter);
            c.sources.kafka.push(source);
            c.http.listen = Some("127.0.0.1:0".into());
        })
        .await
    }

    /// Adds the subscription `doc` to `router`, whose firings go to
    /// `subject`, and subscribes to them and to the dead letters.
    pub async fn watch(&self, router: &TestRouter, doc: &str, subject: &str) -> Result<KafkaWatch> {
        let dead = self.client.subscribe("signalbox.dead.kafka").await?;
        let runs = router.watch(&self.client, doc, subject).await?;
        Ok(KafkaWatch { runs, dead })
    }

    /// The lines of a source's table that turn TLS on, trusting the CA in `ca`.
    pub fn tls_lines(ca: &std::path::Path) -> String {
        format!(
            "security_protocol = \"ssl\"\ntls_ca_file = {:?}\n",
            ca.display().to_string()
        )
    }

    /// Polls until the group's committed offsets reach `ends` (partition →
    /// next offset), for up to 30 s.
    pub async fn committed_reaches(
        &self,
        group: &str,
        topic: &str,
        ends: &BTreeMap<i32, i64>,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let partitions = ends.keys().max().map_or(1, |p| p + 1);
            let got = self.kafka.committed(group, topic, partitions).await?;
            if ends.iter().all(|(p, o)| got.get(p) == Some(o)) {
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "committed offsets {got:?}, expected {ends:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The `order_created` signals `router` stored.
    pub async fn stored_orders(&self, router: &TestRouter) -> Result<Vec<Value>> {
        let listed = crate::admin(
            &self.client,
            router.admin_prefix(),
            "signals.ls",
            r#"{"name": "order_created", "limit": 100}"#,
        )
        .await?;
        listed["signals"]
            .as_array()
            .cloned()
            .with_context(|| format!("signals list: {listed}"))
    }
}

/// Order `n` of `amount` (key `o-n`, header `tenant: acme`).
pub fn order(n: usize, amount: u64) -> KafkaRecord {
    KafkaRecord {
        key: Some(format!("o-{n}")),
        value: Some(json!({"type": "order_created", "order": n, "amount": amount}).to_string()),
        headers: vec![("tenant".into(), "acme".into())],
        partition: None,
    }
}

/// The next offset per partition after the `(partition, offset)` pairs
/// that [`TestKafka::produce`] returned.
pub fn next_offsets(delivered: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for (p, o) in delivered {
        let e = out.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    out
}

/// The order number of a firing: its `params.order`, a string (a template
/// renders text) or a number.
pub fn firing_order(firing: &Value) -> Option<u64> {
    let order = &firing["params"]["order"];
    order
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| order.as_u64())
}

/// Collects `n` firings from `sub` (their order numbers, in arrival order),
/// failing after `within`.
pub async fn orders_fired(
    sub: &mut async_nats::Subscriber,
    n: usize,
    within: Duration,
) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        let msg = tokio::time::timeout_at(deadline, sub.next())
            .await
            .with_context(|| {
                format!(
                    "only {} of {n} firings within {within:?}: {out:?}",
                    out.len()
                )
            })?
            .context("subscription closed")?;
        let firing: Value = serde_json::from_slice(&msg.payload)?;
        out.push(
            firing_order(&firing)
                .with_context(|| format!("firing without params.order: {firing}"))?,
        );
    }
    Ok(out)
}

/// [`orders_fired`] as a set, for firings whose order across partitions (or
/// a restart) is not fixed; a duplicate still shows as a smaller set.
pub async fn orders_fired_set(
    sub: &mut async_nats::Subscriber,
    n: usize,
    within: Duration,
) -> Result<BTreeSet<u64>> {
    Ok(orders_fired(sub, n, within).await?.into_iter().collect())
}
