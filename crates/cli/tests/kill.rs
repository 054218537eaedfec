//! The exactly-once proof: a real `signalbox serve` process in JetStream mode
//! takes a load of signals (single-signal matches and joins, with duplicate
//! publishes) while it is SIGKILLed at random moments and restarted on the same
//! data directory. At the end a JetStream stream that captures the firing
//! subjects must hold every expected firing exactly once, none missing, and the
//! router's own lineage must agree with what the stream received.
//!
//! Size: `SIGNALBOX_KILL_TEST_SIGNALS` (default 20000 signals, at least 10 kills);
//! set it higher for a longer run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream;
use serde_json::{Value, json};
use signalbox_testkit::{FiringStream, ServedRouter, TestNats, init_logs};

const EU_ORDERS: &str = r#"
id: eu-orders
signal: order_placed
where: {region: ["eu"]}
action: {trigger: {subject: runs.eu}}
params: {order: "{order}"}
"#;

const PAID: &str = r#"
id: paid-orders
signals:
  - {name: order_placed, as: o}
  - {name: payment_received, as: p, where: {amount: [{numeric: [">", 0]}]}}
join: {on: [o.order, p.order]}
action: {trigger: {subject: runs.paid}}
params: {order: "{o.order}"}
"#;

/// A small deterministic generator (no external randomness: reruns are equal).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// What goes wrong while the load flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disruption {
    /// SIGKILL the router at pseudo-random moments (at least 10 times).
    KillRouter,
    /// Stop nats-server and start it again (same port and store) mid-load.
    RestartNats,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_router_under_load_loses_and_duplicates_nothing() -> Result<()> {
    let total: usize = std::env::var("SIGNALBOX_KILL_TEST_SIGNALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    load_under(total, Disruption::KillRouter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_nats_server_under_load_loses_and_duplicates_nothing() -> Result<()> {
    load_under(6_000, Disruption::RestartNats).await
}

/// Publishes `total` signals (orders, payments, some retries) into JetStream
/// while `disruption` happens, then checks every expected firing arrived exactly
/// once and the router's lineage agrees.
async fn load_under(total: usize, disruption: Disruption) -> Result<()> {
    init_logs();
    let orders = total / 2;
    let mut nats = TestNats::start()?;
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    let runs = FiringStream::create(&client, "RUNS", &["runs.>"]).await?;
    let mut router = ServedRouter::new(
        Path::new(env!("CARGO_BIN_EXE_signalbox")),
        &nats.url(),
        &[("eu.yaml", EU_ORDERS), ("paid.yaml", PAID)],
        "ingest = \"jetstream\"\n\n[jetstream]\nack_wait = \"2s\"\n",
    )?;

    // Expected results, computed from the generator.
    let mut rng = Lcg(42);
    let mut signals = Vec::with_capacity(total + total / 20);
    let mut expected_eu = BTreeSet::new();
    let mut expected_paid = BTreeSet::new();
    for order in 0..orders {
        let region = if rng.next().is_multiple_of(3) {
            "eu"
        } else {
            "us"
        };
        if region == "eu" {
            expected_eu.insert(order);
        }
        signals.push((
            "order_placed",
            json!({"id": format!("o-{order}"), "params": {"order": order, "region": region}}),
        ));
        let paid = !rng.next().is_multiple_of(10);
        let amount = if paid { 10 + (rng.next() % 90) } else { 0 };
        if paid {
            expected_paid.insert(order);
        }
        signals.push((
            "payment_received",
            json!({"id": format!("p-{order}"), "params": {"order": order, "amount": amount}}),
        ));
        if rng.next().is_multiple_of(20) {
            // A producer retry: the same (name, id) again.
            signals.push((
                "order_placed",
                json!({"id": format!("o-{order}"), "params": {"order": order, "region": region}}),
            ));
        }
    }
    // Shuffle lightly so that payments sometimes arrive before their orders.
    for i in (1..signals.len()).rev() {
        if rng.next().is_multiple_of(4) {
            let j = i.saturating_sub(1 + (rng.next() % 8) as usize);
            signals.swap(i, j);
        }
    }

    router.start()?;
    // Publisher: everything goes into the SIGNALS stream (created by the router).
    let deadline = Instant::now() + Duration::from_secs(20);
    while js.get_stream("SIGNALS").await.is_err() {
        ensure!(
            Instant::now() < deadline,
            "the router never created the SIGNALS stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Paced so that the disruption lands in the middle of the load.
    let (chunk_size, pause) = match disruption {
        Disruption::KillRouter => (500, Duration::from_millis(5)),
        Disruption::RestartNats => (100, Duration::from_millis(30)),
    };
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for chunk in signals.chunks(chunk_size) {
                // A producer that must not lose anything retries until JetStream acks
                // (through a NATS outage too); dedup makes the retries harmless.
                let mut pending: Vec<&(&str, Value)> = chunk.iter().collect();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !pending.is_empty() {
                    ensure!(Instant::now() < deadline, "JetStream never took the load");
                    let mut acks = Vec::with_capacity(pending.len());
                    for item in &pending {
                        let (name, body) = item;
                        acks.push(
                            js.publish(format!("signals.{name}"), body.to_string().into())
                                .await,
                        );
                    }
                    // Await the acks together: after an outage a chunk costs one
                    // ack timeout, not one per message.
                    let results = futures::future::join_all(acks.into_iter().map(|ack| async {
                        match ack {
                            Ok(fut) => fut.await.is_ok(),
                            Err(_) => false,
                        }
                    }))
                    .await;
                    let failed: Vec<&(&str, Value)> = pending
                        .into_iter()
                        .zip(results)
                        .filter_map(|(item, ok)| (!ok).then_some(item))
                        .collect();
                    if !failed.is_empty() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    pending = failed;
                }
                tokio::time::sleep(pause).await;
            }
            anyhow::Ok(())
        })
    };

    let mut kills = 0;
    match disruption {
        Disruption::KillRouter => {
            // SIGKILL at pseudo-random moments while the load flows.
            let mut krng = Lcg(7);
            while kills < 10 || !publisher.is_finished() {
                tokio::time::sleep(Duration::from_millis(150 + krng.next() % 600)).await;
                router.kill_and_restart()?;
                kills += 1;
                if kills > 200 {
                    bail!("the publisher never finished");
                }
            }
        }
        Disruption::RestartNats => {
            tokio::time::sleep(Duration::from_millis(700)).await;
            ensure!(
                !publisher.is_finished(),
                "the load ended before the restart"
            );
            nats.stop();
            tokio::time::sleep(Duration::from_millis(500)).await;
            nats.restart()?;
        }
    }
    publisher.await??;

    // Let the last router drain everything, then count what the stream received.
    let want = expected_eu.len() + expected_paid.len();
    if !runs.reaches(want as u64, Duration::from_secs(120)).await? {
        bail!(
            "only {} of {want} firings arrived after {kills} kills; router log:\n{}",
            runs.count().await?,
            router.log_tail()
        );
    }
    // Give a duplicate the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let mut by_firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut eu = BTreeMap::<u64, usize>::new();
    let mut paid = BTreeMap::<u64, usize>::new();
    let firings = runs.read_all(want + 1).await?;
    let received = firings.len();
    for msg in &firings {
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .context("firing without Nats-Msg-Id")?;
        *by_firing.entry(id).or_default() += 1;
        let body: Value = serde_json::from_slice(&msg.payload)?;
        let order = body["params"]["order"].as_u64().context("order param")?;
        match msg.subject.as_str() {
            "runs.eu" => *eu.entry(order).or_default() += 1,
            "runs.paid" => *paid.entry(order).or_default() += 1,
            other => bail!("unexpected firing subject {other}"),
        }
    }
    router.kill()?;

    let dup_ids: Vec<_> = by_firing.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(dup_ids.is_empty(), "firing ids received twice: {dup_ids:?}");
    let dup_eu: Vec<_> = eu.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(
        dup_eu.is_empty(),
        "orders fired twice for eu-orders: {dup_eu:?}"
    );
    let dup_paid: Vec<_> = paid.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(
        dup_paid.is_empty(),
        "orders fired twice for paid-orders: {dup_paid:?}"
    );
    let got_eu: BTreeSet<usize> = eu.keys().map(|k| *k as usize).collect();
    let got_paid: BTreeSet<usize> = paid.keys().map(|k| *k as usize).collect();
    ensure!(
        got_eu == expected_eu,
        "eu-orders: {} missing, {} unexpected",
        expected_eu.difference(&got_eu).count(),
        got_eu.difference(&expected_eu).count()
    );
    ensure!(
        got_paid == expected_paid,
        "paid-orders: {} missing, {} unexpected",
        expected_paid.difference(&got_paid).count(),
        got_paid.difference(&expected_paid).count()
    );
    assert_eq!(received, want, "every firing once, nothing else");
    if disruption == Disruption::KillRouter {
        assert!(kills >= 10, "killed {kills} times");
    }

    // Lineage agrees: the store holds exactly these firings, all delivered, and
    // every order_placed instance is stored once.
    let store = router.open_store()?;
    let stored_eu = store.firings_for("eu-orders", usize::MAX)?;
    let stored_paid = store.firings_for("paid-orders", usize::MAX)?;
    assert_eq!(stored_eu.len(), expected_eu.len());
    assert_eq!(stored_paid.len(), expected_paid.len());
    for record in stored_eu.iter().chain(&stored_paid) {
        ensure!(
            by_firing.contains_key(&record.firing.firing_id),
            "stored firing {} never reached the stream",
            record.firing.firing_id
        );
        ensure!(
            matches!(record.state, signalbox_store::FiringState::Delivered { .. }),
            "firing {} not marked delivered",
            record.firing.firing_id
        );
    }
    let names = store.signal_names()?;
    let placed = names
        .iter()
        .find(|(n, _)| n == "order_placed")
        .map(|(_, last)| *last);
    assert_eq!(
        placed,
        Some(orders as u64),
        "each order stored once: {names:?}"
    );
    eprintln!(
        "{disruption:?}: {total} signals, {kills} kills, {received} firings received exactly once"
    );
    Ok(())
}
