//! Kafka ingestion end to end: a real Kafka-protocol broker (tansu), records
//! produced by an independent client (confluent-kafka), real routers with the
//! `kafka-json` / `kv-lines` adapter components built from `plugins/`.
//!
//! Each case: records in → signals stored and firings out, with the offsets the
//! group committed checked against what was produced. The SIGKILL case lives in
//! `crates/cli/tests/kafka_kill.rs` (it needs the `signalbox` binary).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use signalbox_router::PluginEntry;
use signalbox_testkit::{
    KafkaCase, KafkaRecord, KafkaWatch, TestKafka, TestRouter, admin, expect_silence,
    logged_within, next_message, next_offsets, order, orders_fired, orders_fired_set,
    plugin_component, python_plugin_component,
};

const BIG_ORDERS: &str = r#"
id: big-orders
signal: order_created
where: {amount: [{numeric: [">", 10]}]}
action: {trigger: {subject: runs.big}}
params: {order: "{order}", tenant: "{tenant}"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_become_signals_and_firings_and_offsets_follow() -> Result<()> {
    let case = KafkaCase::with_topic("orders", 2).await?;
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g1", "").await?;

    let records: Vec<KafkaRecord> = (0..30).map(|n| order(n, (n as u64 % 3) * 10)).collect();
    let delivered = case.kafka.produce("orders", &records).await?;
    // amount = 0, 10, 20, ...: only amount 20 (> 10) fires.
    let expected: BTreeSet<u64> = (0..30u64).filter(|n| n % 3 == 2).collect();
    let fired = orders_fired_set(&mut runs, expected.len(), Duration::from_secs(30)).await?;
    assert_eq!(fired, expected);
    expect_silence(&mut runs, Duration::from_millis(500)).await?;

    // Every record is one stored signal whose id is its coordinates, and whose
    // params carry the header and metadata the mapping asked for.
    let listed = admin(
        &case.client,
        router.admin_prefix(),
        "signals.ls",
        r#"{"name": "order_created", "limit": 100}"#,
    )
    .await?;
    let signals = listed["signals"].as_array().context("signals list")?;
    assert_eq!(signals.len(), 30, "{listed}");
    let ids: BTreeSet<String> = signals
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = delivered
        .iter()
        .map(|(p, o)| format!("orders/{p}/{o}"))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(
        signals[0]["signal"]["params"]["tenant"], "acme",
        "{}",
        signals[0]
    );
    assert_eq!(signals[0]["origin"]["transport"], "kafka", "{}", signals[0]);

    case.committed_reaches("g1", "orders", &next_offsets(&delivered))
        .await?;
    // The Kafka adapter is not a public webhook.
    let (status, body) = signalbox_testkit::http_request(
        router.http_addr()?,
        "POST",
        "/ingest/kafka-json",
        &[("content-type", "application/json")],
        r#"{"type": "order_created", "order": 99, "amount": 99}"#,
    )
    .await?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("Kafka source"), "{body}");
    let metrics = router.metrics().await?;
    assert!(
        metrics.contains("signalbox_signals_received_total{transport=\"kafka\"} 30"),
        "{metrics}"
    );
    // librdkafka's statistics (every 5 s) report the lag of both partitions:
    // nothing left to read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = router.metrics().await?;
        let caught_up = (0..2).all(|p| {
            metrics.contains(&format!(
                "signalbox_kafka_consumer_lag{{source=\"orders\",topic=\"orders\",partition=\"{p}\"}} 0"
            ))
        });
        if caught_up {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no zero lag for both partitions:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    router.shutdown().await;
    Ok(())
}

/// A router whose source reads `topic` as `group` through the orders
/// adapter (`extra`: more lines of the source), with `BIG_ORDERS` added and
/// watched.
async fn big_orders_router(
    case: &KafkaCase,
    topic: &str,
    group: &str,
    extra: &str,
) -> Result<(TestRouter, KafkaWatch)> {
    let router = case
        .router(KafkaCase::orders_adapter()?, topic, group, extra)
        .await?;
    let watch = case.watch(&router, BIG_ORDERS, "runs.big").await?;
    Ok((router, watch))
}

/// Orders `range` (amount 50), even ones on partition 0, odd ones on 1.
fn orders_on_two_partitions(range: std::ops::Range<usize>) -> Vec<KafkaRecord> {
    range
        .map(|n| order(n, 50).to_partition((n % 2) as i32))
        .collect()
}

/// `signalbox_signals_received_total{transport="kafka"}` in a `/metrics` text.
fn kafka_received(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("signalbox_signals_received_total{transport=\"kafka\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_dead_lettered_and_the_partition_moves_on() -> Result<()> {
    let case = KafkaCase::with_topic("orders", 1).await?;
    let (router, KafkaWatch { mut runs, mut dead }) =
        big_orders_router(&case, "orders", "g2", "").await?;

    let records = vec![
        order(1, 50),
        KafkaRecord {
            key: Some("bad".into()),
            ..KafkaRecord::value("{not json")
        },
        KafkaRecord::value(json!({"order": 2, "amount": 60}).to_string()), // no type
        order(3, 70),
    ];
    let delivered = case.kafka.produce("orders", &records).await?;

    let fired = orders_fired(&mut runs, 2, Duration::from_secs(30)).await?;
    assert_eq!(fired, vec![1, 3]);
    for (offset, reason) in [(delivered[1].1, "not JSON"), (delivered[2].1, "no name")] {
        let msg = next_message(&mut dead, Duration::from_secs(30)).await?;
        let headers = msg.headers.clone().context("dead letter without headers")?;
        let get = |h: &str| headers.get(h).map(|v| v.as_str().to_string());
        assert_eq!(get("Kafka-Offset"), Some(offset.to_string()));
        assert_eq!(get("Kafka-Topic").as_deref(), Some("orders"));
        let error = get("Signalbox-Error").unwrap_or_default();
        assert!(
            error.contains(reason),
            "reason {error:?} should say {reason:?}"
        );
    }
    case.committed_reaches("g2", "orders", &next_offsets(&delivered))
        .await?;
    router.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_start_is_picked_up() -> Result<()> {
    let case = KafkaCase::start(TestKafka::start()).await?;
    let (router, KafkaWatch { mut runs, .. }) = big_orders_router(&case, "late", "g3", "").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    case.kafka.create_topic("late", 1).await?;
    case.kafka.produce("late", &[order(7, 99)]).await?;
    let fired = orders_fired(&mut runs, 1, Duration::from_secs(45)).await?;
    assert_eq!(fired, vec![7]);
    router.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_format_through_the_kv_lines_adapter() -> Result<()> {
    let case = KafkaCase::with_topic("lines", 1).await?;
    let kv_lines = PluginEntry {
        name: "kv-lines".into(),
        file: plugin_component("adapter_kv_lines")?,
        settings: BTreeMap::from([("name-pointer".into(), "/event".into())]),
    };
    let router = case.router(kv_lines, "lines", "g4", "").await?;
    let KafkaWatch { mut runs, mut dead } = case.watch(&router, BIG_ORDERS, "runs.big").await?;
    let delivered = case.kafka
        .produce(
            "lines",
            &[
                KafkaRecord::value("event=order_created order=1 amount=5\nevent=order_created order=2 amount=12.5 tenant=\"big co\""),
                KafkaRecord::value("event=order_created order=\"3"),
                KafkaRecord::value("# a comment\n\nevent=order_created order=4 amount=11"),
            ],
        )
        .await?;
    let fired = orders_fired(&mut runs, 2, Duration::from_secs(30)).await?;
    assert_eq!(fired, vec![2, 4]);
    let msg = next_message(&mut dead, Duration::from_secs(30)).await?;
    let headers = msg.headers.clone().context("headers")?;
    assert_eq!(
        headers.get("Kafka-Offset").map(|v| v.as_str().to_string()),
        Some(delivered[1].1.to_string())
    );
    assert!(
        headers
            .get("Signalbox-Error")
            .is_some_and(|v| v.as_str().contains("line 1") && v.as_str().contains("closing quote")),
        "{headers:?}"
    );
    // The first record yielded two signals: ids get the line index.
    let listed = admin(
        &case.client,
        router.admin_prefix(),
        "signals.ls",
        r#"{"name": "order_created"}"#,
    )
    .await?;
    let ids: Vec<&str> = listed["signals"]
        .as_array()
        .context("signals")?
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            format!("lines/0/{}/0", delivered[0].1),
            format!("lines/0/{}/1", delivered[0].1),
            format!("lines/0/{}", delivered[2].1),
        ]
    );
    router.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_router_in_the_group_takes_over_the_partitions() -> Result<()> {
    let mut case = KafkaCase::start(TestKafka::start()).await?;
    case.kafka.set_client_property("batch.num.messages", "1"); // see TestKafka::set_client_property
    case.kafka.create_topic("shared", 2).await?;
    let start = || async {
        case.router(KafkaCase::orders_adapter()?, "shared", "g5", "")
            .await
    };
    // a consumes both partitions alone, then leaves the group.
    let a = start().await?;
    let mut runs = a.watch(&case.client, BIG_ORDERS, "runs.big").await?;
    let first = orders_on_two_partitions(0..40);
    let delivered = case.kafka.produce("shared", &first).await?;
    let fired = orders_fired_set(&mut runs, 40, Duration::from_secs(30)).await?;
    assert_eq!(fired, (0..40).collect::<BTreeSet<u64>>());
    assert_eq!(kafka_received(&a.metrics().await?), 40);
    a.shutdown().await;
    // Its graceful stop committed everything it stored.
    case.committed_reaches("g5", "shared", &next_offsets(&delivered))
        .await?;

    // b joins the same group, takes both partitions and reads on from a's
    // commits: the next records, and none of the first 40 again.
    let b = start().await?;
    b.add_subscription(&case.client, BIG_ORDERS).await?;
    let second = orders_on_two_partitions(40..60);
    case.kafka.produce("shared", &second).await?;
    let fired = orders_fired_set(&mut runs, 20, Duration::from_secs(60)).await?;
    assert_eq!(fired, (40..60).collect::<BTreeSet<u64>>());
    expect_silence(&mut runs, Duration::from_secs(1)).await?;
    assert_eq!(
        kafka_received(&b.metrics().await?),
        20,
        "b read only the new records"
    );
    b.shutdown().await;
    Ok(())
}

/// Two routers started at the same instant in one group: every record fires
/// once across them (however the partitions were split: in runs here 20/20,
/// 40/0 and 0/40, depending on which joined first), and when one stops the
/// other holds every partition and reads on from the group's commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_joining_at_once_read_each_record_once() -> Result<()> {
    let mut case = KafkaCase::start(TestKafka::start()).await?;
    case.kafka.set_client_property("batch.num.messages", "1"); // see TestKafka::set_client_property
    case.kafka.create_topic("split", 2).await?;
    let case = &case;
    // Each router its own admin prefix (admin requests on a shared prefix
    // go to one of them only) and its own signal subjects: two routers alone
    // on one prefix refuse each other, whichever announces itself first.
    let start = |own| async move {
        let adapter = KafkaCase::orders_adapter()?;
        case.router_at(Some(own), adapter, "split", "g-split", "")
            .await
    };
    let mut runs = case.client.subscribe("runs.big").await?;
    let (a, b) = tokio::join!(start("a"), start("b"));
    let (a, b) = (a?, b?);
    a.add_subscription(&case.client, BIG_ORDERS).await?;
    b.add_subscription(&case.client, BIG_ORDERS).await?;
    let first = orders_on_two_partitions(0..40);
    let delivered = case.kafka.produce("split", &first).await?;
    let fired = orders_fired(&mut runs, 40, Duration::from_secs(60)).await?;
    assert_eq!(
        fired.iter().copied().collect::<BTreeSet<u64>>(),
        (0..40).collect::<BTreeSet<u64>>(),
        "each of the 40 once: {fired:?}"
    );
    expect_silence(&mut runs, Duration::from_secs(1)).await?;
    // How the two partitions were split depends on when each router joined;
    // together they read each record once.
    let (in_a, in_b) = (
        kafka_received(&a.metrics().await?),
        kafka_received(&b.metrics().await?),
    );
    assert_eq!(in_a + in_b, 40, "a read {in_a}, b read {in_b}");

    // a stops (committing what it stored); b takes its partition over.
    a.shutdown().await;
    case.committed_reaches("g-split", "split", &next_offsets(&delivered))
        .await?;
    let second = orders_on_two_partitions(40..60);
    case.kafka.produce("split", &second).await?;
    let fired = orders_fired_set(&mut runs, 20, Duration::from_secs(60)).await?;
    assert_eq!(fired, (40..60).collect::<BTreeSet<u64>>());
    expect_silence(&mut runs, Duration::from_secs(1)).await?;
    assert_eq!(
        kafka_received(&b.metrics().await?),
        in_b + 20,
        "b: what it read before, then the 20 new ones"
    );
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_adapter_works_on_kafka_too() -> Result<()> {
    let case = KafkaCase::with_topic("py", 1).await?;
    let component = python_plugin_component("webhook-json")?;
    let py_json = PluginEntry {
        name: "py-json".into(),
        file: component,
        settings: BTreeMap::from([
            ("name-pointer".into(), "/type".into()),
            (
                "params".into(),
                r#"{"order": "/order", "amount": "/amount"}"#.into(),
            ),
        ]),
    };
    let router = case.router(py_json, "py", "g6", "").await?;
    let KafkaWatch { mut runs, mut dead } = case.watch(&router, BIG_ORDERS, "runs.big").await?;
    let delivered = case
        .kafka
        .produce(
            "py",
            &[order(1, 5), KafkaRecord::value("not json"), order(2, 50)],
        )
        .await?;
    let fired = orders_fired(&mut runs, 1, Duration::from_secs(30)).await?;
    assert_eq!(fired, vec![2]);
    let msg = next_message(&mut dead, Duration::from_secs(30)).await?;
    let offset = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("Kafka-Offset"))
        .map(|v| v.as_str().to_string());
    assert_eq!(offset, Some(delivered[1].1.to_string()));
    let listed = admin(
        &case.client,
        router.admin_prefix(),
        "signals.ls",
        r#"{"name": "order_created"}"#,
    )
    .await?;
    assert_eq!(
        listed["signals"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    router.shutdown().await;
    Ok(())
}

/// The broker is SIGKILLed and comes back with its data, as a real broker
/// does: the source reconnects by itself, resumes from the committed offsets
/// (nothing read again, nothing skipped), and the router stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_is_ridden_out_when_the_broker_keeps_its_data() -> Result<()> {
    let mut case = KafkaCase::start(TestKafka::start_persistent()).await?;
    case.kafka.set_client_property("batch.num.messages", "1"); // see TestKafka::set_client_property
    case.kafka.create_topic("orders", 1).await?;
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-restart", "").await?;
    case.kafka
        .produce("orders", &[order(1, 50), order(2, 55)])
        .await?;
    let before = orders_fired_set(&mut runs, 2, Duration::from_secs(30)).await?;
    assert_eq!(before, BTreeSet::from([1, 2]));
    case.committed_reaches("g-restart", "orders", &BTreeMap::from([(0, 2)]))
        .await?;

    case.kafka.restart_after(Duration::from_secs(2)).await?;
    // The source saw the broker gone (its reconnects were refused).
    logged_within(
        &[&case.kafka.bootstrap(), "Connection refused"],
        Duration::from_secs(10),
    )
    .await?;
    case.kafka
        .produce("orders", &[order(3, 60), order(4, 70)])
        .await?;
    let after = orders_fired_set(&mut runs, 2, Duration::from_secs(60)).await?;
    assert_eq!(after, BTreeSet::from([3, 4]));
    // Orders 1 and 2 are neither fired nor stored again.
    expect_silence(&mut runs, Duration::from_secs(3)).await?;
    assert_eq!(case.stored_orders(&router).await?.len(), 4);
    case.committed_reaches("g-restart", "orders", &BTreeMap::from([(0, 4)]))
        .await?;
    let (status, _) = router.http_get("/healthz").await?;
    assert_eq!(status, 200);
    router.shutdown().await;
    Ok(())
}

/// A crash inside the consumer (librdkafka is C code; one crash is known,
/// below) costs a worker restart, not the router: the source's worker
/// process is aborted while records flow, the router logs why
/// and starts it again, and every record still fires exactly once (records
/// stored but not committed are read again and taken as duplicates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_kafka_worker_is_started_again_and_nothing_is_lost() -> Result<()> {
    let mut case = KafkaCase::start(TestKafka::start()).await?;
    case.kafka.set_client_property("batch.num.messages", "1"); // see TestKafka::set_client_property
    case.kafka.create_topic("orders", 2).await?;
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-crash", "").await?;
    let first: Vec<KafkaRecord> = (1..=300).map(|n| order(n, 50)).collect();
    case.kafka.produce("orders", &first).await?;
    // Some have fired: the worker is mid-topic.
    let mut fired = orders_fired(&mut runs, 20, Duration::from_secs(60)).await?;
    let workers = signalbox_testkit::child_pids("--group g-crash");
    ensure!(workers.len() == 1, "one worker expected, found {workers:?}");
    // SIGABRT, as librdkafka's failed assertions raise. (A SIGSEGV sent by
    // `kill` is not fatal to a Rust process: its stack-overflow handler
    // ignores a fault that is not in a guard page.)
    signalbox_testkit::send_signal(workers[0], "ABRT")?;
    logged_within(&["Kafka worker died", "signal 6"], Duration::from_secs(20)).await?;
    let second: Vec<KafkaRecord> = (301..=400).map(|n| order(n, 50)).collect();
    case.kafka.produce("orders", &second).await?;
    fired.extend(orders_fired(&mut runs, 400 - fired.len(), Duration::from_secs(90)).await?);
    // Exactly once: 400 firings, 400 distinct orders, and nothing more.
    let distinct: BTreeSet<u64> = fired.iter().copied().collect();
    assert_eq!(distinct, (1..=400).collect::<BTreeSet<u64>>());
    expect_silence(&mut runs, Duration::from_secs(3)).await?;
    let after = signalbox_testkit::child_pids("--group g-crash");
    ensure!(
        after.len() == 1 && after != workers,
        "a new worker expected, found {after:?} (was {workers:?})"
    );
    let metrics = router.metrics().await?;
    for line in [
        "signalbox_kafka_worker_restarts_total 1",
        "signalbox_signals_stored_total 400",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }
    router.shutdown().await;
    // The router's shutdown stops its worker.
    ensure!(
        signalbox_testkit::child_pids("--group g-crash").is_empty(),
        "a worker outlived the router"
    );
    Ok(())
}

/// Known failure, kept to reproduce it: tansu's memory storage comes back
/// empty after a restart (a broker that lost its disk; the restart of a
/// broker that keeps its data is tested above). About one run in four the
/// consumer's fetch position then stays past the recreated topic's end and
/// nothing is read. (The SIGSEGV inside librdkafka 2.12.1 that this also
/// hits about one run in four now ends the worker process, which is started
/// again; `a_crashed_kafka_worker_is_started_again_and_nothing_is_lost`
/// tests that path.) See docs/DECISIONS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 1 run in 4 the consumer reads nothing after tansu restarts empty; see docs/DECISIONS.md"]
async fn a_broker_restart_is_ridden_out() -> Result<()> {
    let mut case = KafkaCase::start(TestKafka::start()).await?;
    case.kafka.create_topic("orders", 1).await?;
    // Ids from the record: the restarted broker (memory storage) starts its
    // offsets again at 0.
    let by_order_id = PluginEntry {
        name: "kafka-json".into(),
        file: plugin_component("adapter_kafka_json")?,
        settings: BTreeMap::from([
            ("name-pointer".into(), "/type".into()),
            ("id-pointer".into(), "/order".into()),
            (
                "params".into(),
                r#"{"order": "/order", "amount": "/amount"}"#.into(),
            ),
        ]),
    };
    let router = case.router(by_order_id, "orders", "g7", "").await?;
    let KafkaWatch { mut runs, .. } = case.watch(&router, BIG_ORDERS, "runs.big").await?;
    case.kafka.produce("orders", &[order(1, 50)]).await?;
    assert_eq!(
        orders_fired(&mut runs, 1, Duration::from_secs(30)).await?,
        vec![1]
    );

    // The broker dies and comes back empty on the same port.
    case.kafka.restart().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    case.kafka.create_topic("orders", 1).await?;
    case.kafka
        .produce("orders", &[order(2, 60), order(3, 70)])
        .await?;
    let fired = orders_fired_set(&mut runs, 2, Duration::from_secs(60)).await?;
    assert_eq!(fired, BTreeSet::from([2, 3]));
    // Still alive and ready.
    let (status, _) = router.http_get("/healthz").await?;
    assert_eq!(status, 200);
    router.shutdown().await;
    Ok(())
}

/// After a refused connection: nothing stored, nothing committed, and the
/// router is still up.
async fn nothing_stored_and_alive(
    case: &KafkaCase,
    router: &TestRouter,
    runs: &mut async_nats::Subscriber,
) -> Result<()> {
    // librdkafka retries with backoff: give it time to (wrongly) get through.
    expect_silence(runs, Duration::from_secs(3)).await?;
    let stored = case.stored_orders(router).await?;
    ensure!(stored.is_empty(), "stored despite the refusal: {stored:?}");
    let metrics = router.metrics().await?;
    ensure!(
        metrics.contains("signalbox_signals_received_total{transport=\"kafka\"} 0\n"),
        "{metrics}"
    );
    let (status, body) = router.http_get("/healthz").await?;
    ensure!(status == 200, "GET /healthz: {status} {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_produced_over_tls_become_signals() -> Result<()> {
    // tansu behind a TLS terminator: the producer, the admin client and the
    // router all talk TLS and verify the broker's certificate.
    let case = KafkaCase::start(TestKafka::start_tls()).await?;
    let ca = case.kafka.ca_file().context("a TLS broker has a CA")?;
    case.kafka.create_topic("orders", 1).await?;
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-tls", &KafkaCase::tls_lines(ca)).await?;
    let records: Vec<KafkaRecord> = (0..6).map(|n| order(n, 20)).collect();
    let delivered = case.kafka.produce("orders", &records).await?;
    let fired = orders_fired(&mut runs, 6, Duration::from_secs(30)).await?;
    assert_eq!(
        fired.into_iter().collect::<BTreeSet<_>>(),
        (0..6).collect::<BTreeSet<_>>()
    );
    let ids: BTreeSet<String> = case
        .stored_orders(&router)
        .await?
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = delivered
        .iter()
        .map(|(p, o)| format!("orders/{p}/{o}"))
        .collect();
    assert_eq!(ids, want);
    // Offsets are committed over TLS too.
    case.committed_reaches("g-tls", "orders", &next_offsets(&delivered))
        .await?;
    router.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_sources_client_certificate() -> Result<()> {
    // The broker (its TLS front) asks every client for a certificate the
    // test CA signed; the producer has one.
    let case = KafkaCase::start(TestKafka::start_mutual_tls()).await?;
    let ca = case.kafka.ca_file().context("a TLS broker has a CA")?;
    let (cert, key) = case
        .kafka
        .client_cert_files()
        .context("client certificate")?;
    case.kafka.create_topic("orders", 1).await?;
    let records: Vec<KafkaRecord> = (0..3).map(|n| order(n, 20)).collect();
    let delivered = case.kafka.produce("orders", &records).await?;

    // Without a client certificate: refused, said, nothing stored.
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-no-cert", &KafkaCase::tls_lines(ca)).await?;
    let line = logged_within(
        &[&case.kafka.bootstrap(), "certificate required"],
        Duration::from_secs(30),
    )
    .await?;
    assert!(line.contains("source=orders"), "{line}");
    nothing_stored_and_alive(&case, &router, &mut runs).await?;
    router.shutdown().await;

    // With `tls_cert_file` and `tls_key_file`: the records flow.
    let lines = format!(
        "{}tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        KafkaCase::tls_lines(ca),
        cert.display().to_string(),
        key.display().to_string()
    );
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-cert", &lines).await?;
    let fired = orders_fired(&mut runs, 3, Duration::from_secs(30)).await?;
    assert_eq!(
        fired.into_iter().collect::<BTreeSet<_>>(),
        (0..3).collect::<BTreeSet<_>>()
    );
    case.committed_reaches("g-cert", "orders", &next_offsets(&delivered))
        .await?;
    router.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_trusting_another_ca_stores_nothing_and_says_why() -> Result<()> {
    let case = KafkaCase::start(TestKafka::start_tls()).await?;
    case.kafka.create_topic("orders", 1).await?;
    let delivered = case
        .kafka
        .produce("orders", &[order(1, 50), order(2, 60)])
        .await?;
    ensure!(delivered.len() == 2, "{delivered:?}");
    let wrong_ca = case
        .kafka
        .other_ca_file()
        .context("a TLS broker has a CA")?;
    let (router, KafkaWatch { mut runs, .. }) = big_orders_router(
        &case,
        "orders",
        "g-wrong-ca",
        &KafkaCase::tls_lines(wrong_ca),
    )
    .await?;
    // librdkafka's reason, through the router's log, naming the broker.
    let line = logged_within(
        &[&case.kafka.bootstrap(), "certificate verify failed"],
        Duration::from_secs(30),
    )
    .await?;
    assert!(line.contains("source=orders"), "{line}");
    nothing_stored_and_alive(&case, &router, &mut runs).await?;
    assert_eq!(
        case.kafka.committed("g-wrong-ca", "orders", 1).await?,
        BTreeMap::new()
    );
    router.shutdown().await;
    Ok(())
}

/// SASL_SSL with SCRAM-SHA-512 against a broker that has the router's user:
/// the login succeeds and records flow; the broker refused the wrong
/// password of the case below with the same setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sasl_scram_login_over_tls_lets_records_flow() -> Result<()> {
    let case = KafkaCase::start(TestKafka::start_tls_sasl()).await?;
    case.kafka.create_topic("orders", 1).await?;
    let ca = case.kafka.ca_file().context("a TLS broker has a CA")?;
    let (user, password) = TestKafka::SASL_USER;
    let sasl = format!(
        "security_protocol = \"sasl_ssl\"\ntls_ca_file = {:?}\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = {user:?}\nsasl_password = {password:?}\n",
        ca.display().to_string()
    );
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-sasl-ok", &sasl).await?;
    case.kafka
        .produce("orders", &[order(1, 50), order(2, 60)])
        .await?;
    let fired = orders_fired_set(&mut runs, 2, Duration::from_secs(30)).await?;
    assert_eq!(fired, BTreeSet::from([1, 2]));
    assert_eq!(case.stored_orders(&router).await?.len(), 2);
    case.committed_reaches("g-sasl-ok", "orders", &BTreeMap::from([(0, 2)]))
        .await?;
    // The wrong password is refused by this same broker (a second router
    // alone on the same subjects would be refused first: stop this one).
    router.shutdown().await;
    let wrong = sasl.replace(password, "not-the-password");
    assert_ne!(wrong, sasl);
    let refused = case
        .router(
            KafkaCase::orders_adapter()?,
            "orders",
            "g-sasl-wrong",
            &wrong,
        )
        .await?;
    logged_within(
        &[&case.kafka.bootstrap(), "SASL authentication error"],
        Duration::from_secs(30),
    )
    .await?;
    refused.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sasl_login_stores_nothing_and_says_why() -> Result<()> {
    // tansu with --authentication knows SCRAM only and, on memory storage, no
    // users: this login is refused as a wrong password would be. (No record
    // can be produced here: the test client cannot log in either.)
    let case = KafkaCase::start(TestKafka::start_tls_authenticating()).await?;
    let ca = case.kafka.ca_file().context("a TLS broker has a CA")?;
    let sasl = format!(
        "security_protocol = \"sasl_ssl\"\ntls_ca_file = {:?}\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"signalbox\"\nsasl_password = \"not-the-password\"\n",
        ca.display().to_string()
    );
    let (router, KafkaWatch { mut runs, .. }) =
        big_orders_router(&case, "orders", "g-sasl", &sasl).await?;
    // TLS got through (the CA is right); the login did not.
    let line = logged_within(
        &[&case.kafka.bootstrap(), "SASL authentication error"],
        Duration::from_secs(30),
    )
    .await?;
    assert!(line.contains("source=orders"), "{line}");
    nothing_stored_and_alive(&case, &router, &mut runs).await?;
    router.shutdown().await;
    Ok(())
}
