//! A group of routers on a 3-node NATS cluster, as users run it: real
//! `signalbox serve` processes with a `[cluster]` table, producers on
//! different nodes, firings counted at JetStream streams (R3). The cases:
//! the group serves signals, joins and waits from any router; a router paused
//! past its lease is fenced; routers killed, paused, added and stopped and a
//! NATS node killed, at random, under load — every firing exactly once, seqs
//! without gap or repeat, every wait answered once; the whole NATS cluster
//! goes away and comes back — nothing acknowledged is lost; a late put of an older
//! snapshot does not hide a newer one; a damaged partition file is rebuilt
//! from the group; a snapshot that cannot be opened gives way to the one
//! before it; the chunks of an unfinished snapshot upload are deleted; and
//! settings that would split the truth are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use serde_json::{Value, json};
use signalbox_testkit::{GroupCase, init_logs, plugin_component};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_signalbox");

/// Every `orders` signal fires.
const ALL_ORDERS: &str = "id: all-orders\nsignal: orders\naction: {publish: {subject: out.all}}\n";

/// An order joins the payment with the same key (their names live in
/// different partitions).
const PAIR: &str = "id: pair\nsignals:\n  - {name: orders, as: o}\n  - {name: payments, as: p}\njoin: {on: [o.k, p.k], within: 1h}\naction: {publish: {subject: out.pair}}\n";

/// An R3 stream over `subjects`, deduplicating by `Nats-Msg-Id` over ten
/// minutes, as a JetStream target of signalbox does.
pub(crate) async fn target(
    client: &async_nats::Client,
    name: &str,
    subjects: &[&str],
) -> Result<stream::Stream> {
    let js = jetstream::new(client.clone());
    Ok(js
        .create_stream(stream::Config {
            name: name.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            num_replicas: 3,
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await?)
}

/// Every message of `stream`: (subject, Nats-Msg-Id, body).
pub(crate) async fn read_all(
    stream: &stream::Stream,
    max: usize,
) -> Result<Vec<(String, String, Value)>> {
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut out = Vec::new();
    while out.len() < max {
        match tokio::time::timeout(Duration::from_secs(3), messages.next()).await {
            Ok(Some(Ok(m))) => {
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                out.push((
                    m.subject.to_string(),
                    id,
                    serde_json::from_slice(&m.payload)?,
                ));
            }
            _ => break,
        }
    }
    Ok(out)
}

async fn count(stream: &stream::Stream) -> Result<u64> {
    let mut s = stream.clone();
    Ok(s.info().await?.state.messages)
}

/// Polls until `stream` holds `want` messages, or `within` passed.
pub(crate) async fn reaches(stream: &stream::Stream, want: u64, within: Duration) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let n = count(stream).await.unwrap_or(0);
        if n >= want || tokio::time::Instant::now() >= deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Publishes a signal as a request until a router acknowledges it (a
/// takeover or a node failure makes some attempts time out).
pub(crate) async fn publish(
    client: &async_nats::Client,
    name: &str,
    body: &Value,
) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let sent = tokio::time::timeout(
            Duration::from_secs(3),
            client.request(format!("signals.{name}"), body.to_string().into()),
        )
        .await;
        let last = match sent {
            Ok(Ok(msg)) => match serde_json::from_slice::<Value>(&msg.payload) {
                Ok(ack) if ack.get("seq").is_some() => return Ok(ack),
                Ok(other) => other.to_string(),
                Err(e) => e.to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("{name} {body} not acknowledged within 120 s (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Registers a wait until a router answers the registration.
async fn register_wait(client: &async_nats::Client, wait: &Value) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let sent = tokio::time::timeout(
            Duration::from_secs(3),
            client.request("signalbox.wait", wait.to_string().into()),
        )
        .await;
        if let Ok(Ok(msg)) = sent
            && let Ok(v) = serde_json::from_slice::<Value>(&msg.payload)
            && v.get("wait").is_some()
        {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("wait {wait} not registered within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn order(i: u64) -> Value {
    json!({"id": format!("o-{i}"), "params": {"k": i, "n": i}, "payload": {"i": i}})
}

fn payment(i: u64) -> Value {
    json!({"id": format!("p-{i}"), "params": {"k": i}})
}

/// The ids of `name` the group stored, by seq, as router `i` answers.
async fn stored(case: &GroupCase, i: usize, name: &str, n: u64) -> Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    while (out.len() as u64) < n {
        // Asked again while a partition's owner is not answering yet (a
        // takeover, a reconnect), as the error says to.
        let page = whole(
            case,
            i,
            "signals.ls",
            &json!({"name": name, "after": after, "limit": 5000}).to_string(),
        )
        .await?;
        let Some(list) = page["signals"].as_array().cloned() else {
            bail!("signals.ls of {name} through router {i}: {page}");
        };
        if list.is_empty() {
            break;
        }
        for s in list {
            let seq = s["seq"].as_u64().context("seq")?;
            ensure!(
                out.insert(seq, s["id"].as_str().unwrap_or_default().to_string())
                    .is_none(),
                "seq {seq} of {name} twice"
            );
            after = after.max(seq);
        }
    }
    Ok(out)
}

/// What every group case checks at its end: the firings at the targets,
/// exactly once each; seqs 1..=n of both names, each id once; every wait
/// answered once; lineage and explain the same from two routers.
async fn check_exactly_once(
    case: &GroupCase,
    out: &stream::Stream,
    waits: &stream::Stream,
    n: u64,
    wait_ids: &BTreeSet<String>,
) -> Result<()> {
    let got = reaches(out, 2 * n, Duration::from_secs(240)).await?;
    ensure!(
        got >= 2 * n,
        "{got} firings of {} arrived\n{}",
        2 * n,
        case.logs()
    );
    let firings = read_all(out, (2 * n + 100) as usize).await?;
    ensure!(
        firings.len() as u64 == 2 * n,
        "{} firings at the target, want {} (one more means a firing published twice under another id)",
        firings.len(),
        2 * n
    );
    let ids: BTreeSet<&str> = firings.iter().map(|(_, id, _)| id.as_str()).collect();
    ensure!(
        ids.len() == firings.len(),
        "a firing id twice at the target"
    );
    let mut all = BTreeMap::new();
    let mut pairs = BTreeMap::new();
    for (subject, id, body) in &firings {
        ensure!(
            body["firing_id"] == json!(id),
            "Nats-Msg-Id is not the firing id: {body}"
        );
        let inputs: Vec<String> = body["signals"]
            .as_array()
            .context("signals")?
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_string())
            .collect();
        match subject.as_str() {
            "out.all" => *all.entry(inputs[0].clone()).or_insert(0u32) += 1,
            "out.pair" => *pairs.entry(inputs.join("+")).or_insert(0u32) += 1,
            other => bail!("a firing on {other}"),
        }
    }
    for i in 0..n {
        ensure!(
            all.get(&format!("o-{i}")) == Some(&1),
            "o-{i} fired {:?} times",
            all.get(&format!("o-{i}"))
        );
        let pair = format!("o-{i}+p-{i}");
        ensure!(
            pairs.get(&pair) == Some(&1),
            "{pair} joined {:?} times",
            pairs.get(&pair)
        );
    }
    // Asked through routers still running (the chaos case stops some).
    let running: Vec<usize> = (0..case.routers.len())
        .filter(|i| case.running(*i))
        .collect();
    ensure!(!running.is_empty(), "no router left running");
    for (name, prefix) in [("orders", "o-"), ("payments", "p-")] {
        let seqs = stored(case, running[0], name, n).await?;
        ensure!(
            seqs.len() as u64 == n,
            "{} {name} stored, want {n}; seqs missing: {:?}; ids missing: {:?}",
            seqs.len(),
            (1..=n)
                .filter(|q| !seqs.contains_key(q))
                .collect::<Vec<_>>(),
            (0..n)
                .map(|k| format!("{prefix}{k}"))
                .filter(|id| !seqs.values().any(|v| v == id))
                .collect::<Vec<_>>()
        );
        ensure!(
            seqs.keys().copied().eq(1..=n),
            "{name} seqs have a gap: first {:?} last {:?}",
            seqs.keys().next(),
            seqs.keys().last()
        );
        let distinct: BTreeSet<&String> = seqs.values().collect();
        ensure!(distinct.len() as u64 == n, "an id of {name} stored twice");
        ensure!(
            distinct.iter().all(|id| id.starts_with(prefix)),
            "a stray {name} id"
        );
    }
    let answers = read_all(waits, wait_ids.len() + 50).await?;
    let answered: BTreeMap<String, usize> =
        answers
            .iter()
            .fold(BTreeMap::new(), |mut m, (subject, _, _)| {
                *m.entry(subject.trim_start_matches("signalbox.waits.").to_string())
                    .or_insert(0) += 1;
                m
            });
    for id in wait_ids {
        ensure!(
            answered.get(id) == Some(&1),
            "wait {id} answered {:?} times (answered: {:?})",
            answered.get(id),
            answered.keys().collect::<Vec<_>>()
        );
    }
    ensure!(
        answered.len() == wait_ids.len(),
        "answers for waits never registered: {answered:?}"
    );
    // Lineage and explain from two routers.
    let (a, b) = (running[0], running[running.len() - 1]);
    let lineage = |v: Value| -> BTreeSet<String> {
        v["firings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["firing_id"].as_str().map(str::to_string))
            .collect()
    };
    // After the last disruption a partition may still be moving: compare
    // answers put together from every partition (no `partial`).
    case.settle().await?;
    let (la, lb) = (
        lineage(whole(case, a, "lineage.sub", "pair").await?),
        lineage(whole(case, b, "lineage.sub", "pair").await?),
    );
    ensure!(
        !la.is_empty() && la == lb,
        "lineage.sub pair differs between routers {a} and {b}"
    );
    let explain = json!({"sub": "all-orders", "signal": "orders:1"}).to_string();
    let (ea, eb) = (
        whole(case, a, "explain", &explain).await?,
        whole(case, b, "explain", &explain).await?,
    );
    ensure!(
        ea["matches"] == json!(true) && ea == eb,
        "explain differs: {ea} / {eb}"
    );
    Ok(())
}

/// `verb` through router `i`, asked again (for up to a minute) while the
/// answer is partial or an error: a partition was moving.
async fn whole(case: &GroupCase, i: usize, verb: &str, body: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = case.admin(i, verb, body).await?;
        if v.get("partial").is_none() && v.get("error").is_none() {
            return Ok(v);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{verb} through router {i} stayed partial: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A group of `n` routers of group `group` (16 partitions) with the two
/// subscriptions every case but the refusals uses.
async fn start_group(n: usize, group: &str) -> Result<GroupCase> {
    GroupCase::start(
        std::path::Path::new(BIN),
        n,
        group,
        16,
        &[("all.yaml", ALL_ORDERS), ("pair.yaml", PAIR)],
        "",
    )
    .await
}

/// The router that owns partition `p`, once every partition is owned.
async fn owner_of(case: &GroupCase, p: usize) -> Result<usize> {
    let status = case.settle().await?;
    let owner = status["partitions"][p]["owner"].as_str().context("owner")?;
    case.routers
        .iter()
        .position(|r| r.member == owner)
        .context("owner router")
}

/// Waits until router `asked` says router `owner` owns partition `p`.
async fn owned_by(
    case: &GroupCase,
    asked: usize,
    p: usize,
    owner: usize,
    within: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // A router just (re)started may not listen yet.
        let s = match case.status(asked).await {
            Ok(s) => s,
            Err(e) => {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "router {asked} did not answer cluster.status within {within:?}: {e:#}\n{}",
                    case.routers[asked].log_tail()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if s["partitions"][p]["owner"].as_str() == Some(case.routers[owner].member.as_str()) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "partition {p} did not move to router {owner}: {s}\n{}",
            case.routers[owner].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The streams of a case and the subscriptions' partitions checked apart.
async fn targets(case: &GroupCase) -> Result<(async_nats::Client, stream::Stream, stream::Stream)> {
    let client = case.cluster.client().await?;
    let out = target(&client, "OUT", &["out.>"]).await?;
    let waits = target(&client, "WAITS", &["signalbox.waits.>"]).await?;
    let (po, pp) = (
        signalbox_router::group::hash::signal_partition("signals", "orders", 16),
        signalbox_router::group::hash::signal_partition("signals", "payments", 16),
    );
    ensure!(
        po != pp,
        "orders and payments should live in different partitions ({po})"
    );
    Ok((client, out, waits))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_serves_signals_joins_and_waits_from_any_router() -> Result<()> {
    init_logs();
    let case = start_group(3, "g1").await?;
    let (_client, out, waits) = targets(&case).await?;
    let n = 300u64;
    let mut wait_ids = BTreeSet::new();
    // Waits opened before their signals, on a client of another node.
    let c1 = async_nats::connect(case.cluster.url(1)).await?;
    for i in 0..5 {
        let id = format!("before-{i}");
        register_wait(&c1, &json!({"id": id, "signals": [{"name": "orders", "where": {"n": [i]}}], "timeout": "10m"})).await?;
        wait_ids.insert(id);
    }
    // Waits whose signals live in two partitions: each lives in its first
    // signal's, and its other side is watched in the side's own.
    for i in 0..3 {
        let id = format!("span-before-{i}");
        register_wait(&c1, &span_wait(&id, i)).await?;
        wait_ids.insert(id);
    }
    // Two producers on different nodes send every signal (ids repeat).
    let mut producers = Vec::new();
    for node in [0usize, 2] {
        let c = async_nats::connect(case.cluster.url(node)).await?;
        producers.push(tokio::spawn(async move {
            for i in 0..n {
                publish(&c, "orders", &order(i)).await?;
                publish(&c, "payments", &payment(i)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for p in producers {
        p.await??;
    }
    // Waits opened after their signals: the lookback answers them.
    for i in 10..15 {
        let id = format!("after-{i}");
        let r = register_wait(
            &c1,
            &json!({"id": id, "signals": [{"name": "orders", "where": {"n": [i]}}]}),
        )
        .await?;
        ensure!(r["wait"]["state"]["state"] == "satisfied", "lookback: {r}");
        wait_ids.insert(id);
    }
    // Spanning waits opened after their signals: both lookbacks count.
    for i in 20..23 {
        let id = format!("span-after-{i}");
        register_wait(&c1, &span_wait(&id, i)).await?;
        wait_ids.insert(id);
    }
    reaches(&waits, wait_ids.len() as u64, Duration::from_secs(120)).await?;
    check_exactly_once(&case, &out, &waits, n, &wait_ids).await?;
    // Each spanning wait got the pair with its key.
    let answers = read_all(&waits, wait_ids.len() + 50).await?;
    let signals_of = |id: &str| -> Vec<String> {
        answers
            .iter()
            .find(|(subject, _, _)| subject == &format!("signalbox.waits.{id}"))
            .and_then(|(_, _, body)| body["signals"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for i in (0..3).chain(20..23) {
        let id = match i < 3 {
            true => format!("span-before-{i}"),
            false => format!("span-after-{i}"),
        };
        let mut got = signals_of(&id);
        got.sort();
        ensure!(
            got == [format!("o-{i}"), format!("p-{i}")],
            "wait {id} answered with {got:?}"
        );
    }
    // Watches are the group's own: `wait.ls` shows the waits only.
    let listed = case.admin(0, "wait.ls", "").await?;
    let ids: Vec<&str> = listed["waits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["wait"]["id"].as_str())
        .collect();
    ensure!(
        !ids.is_empty() && ids.iter().all(|id| wait_ids.contains(*id)),
        "wait.ls lists {ids:?}"
    );
    Ok(())
}

/// A wait for the order with `n = i` and the payment with its key: its two
/// names live in different partitions.
fn span_wait(id: &str, i: u64) -> Value {
    json!({
        "id": id,
        "signals": [
            {"name": "orders", "as": "o", "where": {"n": [i]}},
            {"name": "payments", "as": "p"}
        ],
        "join": {"on": ["o.k", "p.k"]},
        "timeout": "10m"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_paused_past_its_lease_is_fenced_when_it_resumes() -> Result<()> {
    init_logs();
    let case = start_group(2, "g2").await?;
    let (client, out, waits) = targets(&case).await?;
    let p = signalbox_router::group::hash::signal_partition("signals", "orders", 16) as usize;
    let i = owner_of(&case, p).await?;
    let n = 400u64;
    let producer = {
        let c = client.clone();
        tokio::spawn(async move {
            for k in 0..n {
                publish(&c, "orders", &order(k)).await?;
                publish(&c, "payments", &payment(k)).await?;
            }
            anyhow::Ok(())
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    case.pause(i)?;
    // Past its lease (3 s) the other router owns the partition.
    let other = 1 - i;
    owned_by(&case, other, p, other, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    case.resume(i)?;
    // Reads stay monotonic through the resume: the resumed router does not
    // answer for the partition from the store the new owner moved past.
    let mut seen = 0;
    for _ in 0..20 {
        for r in [other, i] {
            let page = case
                .admin(r, "signals.ls", r#"{"name": "orders", "limit": 5000}"#)
                .await?;
            // No owner answering during a move is an error reply, not a read.
            let Some(list) = page["signals"].as_array() else {
                continue;
            };
            let count = list.len();
            ensure!(
                count >= seen,
                "signals.ls through router {r} went back from {seen} to {count} orders"
            );
            seen = count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    producer.await??;
    // The resumed router's writes to the partition are refused or it drops
    // it when its lease renewal is refused; it never commits there again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = case.routers[i].log();
        if log.contains("changelog refused our entry") || log.contains("lease lost") {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the resumed router kept the partition:\n{}",
            case.routers[i].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await
}

/// The snapshot objects of partition `p` in `bucket`: (object, changelog
/// position), oldest first.
/// The object store's `list` can wait for good when an object is deleted
/// while it runs: each attempt has 10 s, and a case asks again.
async fn snapshots_of(
    bucket: &jetstream::object_store::ObjectStore,
    p: u32,
) -> Result<Vec<(jetstream::object_store::ObjectInfo, u64)>> {
    let objects = tokio::time::timeout(Duration::from_secs(10), async {
        let mut list = bucket.list().await?;
        let mut objects = Vec::new();
        while let Some(info) = list.next().await {
            objects.push(info?);
        }
        anyhow::Ok(objects)
    })
    .await
    .context("listing the snapshot store took over 10 s")??;
    let mut out = Vec::new();
    for info in objects {
        if info.name == format!("p{p}") || info.name.starts_with(&format!("p{p}.")) {
            let at = info
                .metadata
                .get("changelog_seq")
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("snapshot {} without changelog_seq", info.name))?;
            out.push((info, at));
        }
    }
    out.sort_by_key(|(_, at)| *at);
    Ok(out)
}

/// A router stalled between its snapshot checks and its upload puts an older
/// snapshot after newer ones were stored and the changelog was trimmed past
/// it. The case makes that late put itself: it keeps the first snapshot of
/// the orders partition it sees (name, metadata and bytes), waits for two
/// newer ones and a changelog trimmed past the kept one, puts the kept one
/// back as it was, and kills the partition's owner. The router that takes
/// the partition over restores from the newest snapshot and goes on; every
/// firing arrives exactly once, and deleted snapshots leave no markers.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_put_of_an_older_snapshot_does_not_hide_a_newer_one() -> Result<()> {
    init_logs();
    let mut case = start_group(2, "g5").await?;
    let (client, out, waits) = targets(&case).await?;
    let js = jetstream::new(client.clone());
    let bucket = js.get_object_store("SBX_G5_SNAP").await?;
    let log = js.get_stream("SBX_G5_LOG").await?;
    let p = signalbox_router::group::hash::signal_partition("signals", "orders", 16);
    let i = owner_of(&case, p as usize).await?;
    // Paced, and on until the snapshots are there: the owner stores one
    // every 5 s while its store moves.
    let enough = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (c, enough) = (client.clone(), enough.clone());
        tokio::spawn(async move {
            let mut k = 0u64;
            while !enough.load(std::sync::atomic::Ordering::Relaxed) && k < 5000 {
                publish(&c, "orders", &order(k)).await?;
                publish(&c, "payments", &payment(k)).await?;
                k += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(k)
        })
    };
    let mut kept: Option<(jetstream::object_store::ObjectInfo, u64, Vec<u8>)> = None;
    let mut newer = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while newer.len() < 2 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "two snapshots of partition {p} after the first were not stored within 120 s (kept: {:?}, newer: {newer:?})\n{}",
            kept.as_ref().map(|k| k.1),
            case.logs()
        );
        let Ok(snapshots) = snapshots_of(&bucket, p).await else {
            continue;
        };
        for (info, at) in snapshots {
            match &kept {
                None => {
                    let mut bytes = Vec::new();
                    // Deleted between the list and the read: take the next.
                    let Ok(mut object) = bucket.get(&info.name).await else {
                        continue;
                    };
                    if tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
                        .await
                        .is_ok()
                    {
                        kept = Some((info, at, bytes));
                    }
                }
                Some((_, first, _)) if at > *first => {
                    newer.insert(at);
                }
                Some(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    enough.store(true, std::sync::atomic::Ordering::Relaxed);
    let before_kill = producer.await??;
    let n = before_kill + 100;
    let (info, at, bytes) = kept.context("kept snapshot")?;
    // The changelog no longer holds the entry after the kept snapshot (the
    // owner trims after its put, so wait for it): the first entry left
    // follows another one, and that snapshot alone cannot bring a store up
    // to the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let first = log
            .get_first_raw_message_by_subject(format!("sbx.g5.log.{p}"), 1)
            .await?;
        let follows = first
            .headers
            .get("Nats-Expected-Last-Subject-Sequence")
            .and_then(|v| v.as_str().parse::<u64>().ok());
        if first.sequence > at && follows.is_some_and(|f| f != at) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the changelog of partition {p} still meets the kept snapshot at {at}: its first entry is {} after {follows:?}",
            first.sequence
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The late put: the kept snapshot again, as its writer stored it.
    let meta = jetstream::object_store::ObjectMetadata {
        name: info.name.clone(),
        description: info.description.clone(),
        metadata: info.metadata.clone(),
        ..Default::default()
    };
    bucket.put(meta, &mut bytes.as_slice()).await?;
    case.kill(i)?;
    // The late snapshot is there when its partition moves (an owner that
    // snapshotted again in between would have deleted it).
    let late = bucket.info(&info.name).await?;
    ensure!(
        !late.deleted,
        "the late snapshot {} was deleted before the owner died",
        info.name
    );
    let other = 1 - i;
    for k in before_kill..n {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await?;
    let log_text = case.routers[other].log();
    ensure!(
        !log_text.contains("has a gap"),
        "router {other} found a gap in a changelog:\n{}",
        case.routers[other].log_tail()
    );
    // Deleted snapshots leave no markers: every object subject of the
    // bucket is a live object (asked again while the survivor is between a
    // delete and its purge).
    let snap_stream = js.get_stream("OBJ_SBX_G5_SNAP").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let live = tokio::time::timeout(Duration::from_secs(10), async {
            let mut list = bucket.list().await?;
            let mut live = 0;
            while let Some(o) = list.next().await {
                o?;
                live += 1;
            }
            anyhow::Ok(live)
        })
        .await;
        let mut subjects = 0;
        let mut meta = snap_stream.info_with_subjects("$O.SBX_G5_SNAP.M.>").await?;
        while let Some(s) = meta.next().await {
            s?;
            subjects += 1;
        }
        if let Ok(Ok(live)) = live
            && live == subjects
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{subjects} object subjects in the snapshot store but {live:?} live snapshots"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A router's local file for a partition is damaged while it is down (a
/// bad disk, a bad restore of a backup). When it owns the partition again it
/// sets the file aside and rebuilds the store from the group (newest
/// snapshot and changelog); every firing arrives exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_partition_file_is_set_aside_and_rebuilt_from_the_group() -> Result<()> {
    init_logs();
    let mut case = start_group(2, "g6").await?;
    let (client, out, waits) = targets(&case).await?;
    let p = signalbox_router::group::hash::signal_partition("signals", "orders", 16) as usize;
    let i = owner_of(&case, p).await?;
    let (before, n) = (100u64, 200u64);
    for k in 0..before {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    ensure!(
        reaches(&out, 2 * before, Duration::from_secs(120)).await? >= 2 * before,
        "the first firings did not arrive\n{}",
        case.logs()
    );
    case.kill(i)?;
    let file = case.routers[i]
        .config
        .with_file_name("data")
        .join("partitions")
        .join(format!("{p}.redb"));
    ensure!(file.exists(), "no partition file at {}", file.display());
    std::fs::write(&file, vec![0x5a; 64 * 1024])?;
    case.restart(i)?;
    // Back with both routers, the partition goes home to router i.
    owned_by(&case, 1 - i, p, i, Duration::from_secs(90)).await?;
    for k in before..n {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await?;
    let log = case.routers[i].log();
    ensure!(
        log.contains("local partition store unreadable"),
        "router {i} did not say it set its file aside:\n{}",
        case.routers[i].log_tail()
    );
    let aside = std::fs::read_dir(file.parent().context("partitions dir")?)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{p}.unreadable-"))
        })
        .count();
    ensure!(
        aside == 1,
        "{aside} set-aside files of partition {p}, want 1"
    );
    Ok(())
}

/// The newest snapshot of a partition cannot be opened (a bad upload, a
/// damaged object) when a router with no file for that partition takes it
/// over. The router sets that snapshot aside for the one before it, replays
/// the changelog from there (the log is kept from the snapshot before the
/// newest), and goes on; every firing arrives exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_that_cannot_be_opened_gives_way_to_the_one_before() -> Result<()> {
    init_logs();
    let mut case = start_group(2, "g7").await?;
    let (client, out, waits) = targets(&case).await?;
    let js = jetstream::new(client.clone());
    let bucket = js.get_object_store("SBX_G7_SNAP").await?;
    let p = signalbox_router::group::hash::signal_partition("signals", "orders", 16);
    // Paced until the orders partition has two snapshots (its owner stores
    // one every 5 s while its store moves).
    let mut k = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        for _ in 0..20 {
            publish(&client, "orders", &order(k)).await?;
            publish(&client, "payments", &payment(k)).await?;
            k += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if snapshots_of(&bucket, p).await.is_ok_and(|s| s.len() >= 2) {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "partition {p} did not get two snapshots within 120 s\n{}",
            case.logs()
        );
    }
    ensure!(
        reaches(&out, 2 * k, Duration::from_secs(120)).await? >= 2 * k,
        "the first firings did not arrive\n{}",
        case.logs()
    );
    // Both routers down: the snapshots stay as they are.
    case.kill(0)?;
    case.kill(1)?;
    let snapshots = snapshots_of(&bucket, p).await?;
    ensure!(
        snapshots.len() >= 2,
        "{} snapshots of partition {p} after the kill, want 2 or more",
        snapshots.len()
    );
    let (newest, _) = snapshots.last().context("newest")?;
    let (before, before_at) = &snapshots[snapshots.len() - 2];
    // The newest is replaced by junk under the same name and position.
    let meta = jetstream::object_store::ObjectMetadata {
        name: newest.name.clone(),
        description: newest.description.clone(),
        metadata: newest.metadata.clone(),
        ..Default::default()
    };
    bucket
        .put(meta, &mut vec![0x5au8; 64 * 1024].as_slice())
        .await?;
    // Router 0 comes back without its file of the partition (a new disk),
    // so it must restore from a snapshot.
    let file = case.routers[0]
        .config
        .with_file_name("data")
        .join("partitions")
        .join(format!("{p}.redb"));
    if file.exists() {
        std::fs::remove_file(&file)?;
    }
    let logged_before = case.routers[0].log().len();
    case.restart(0)?;
    owned_by(&case, 0, p as usize, 0, Duration::from_secs(90)).await?;
    let n = k + 100;
    for k in k..n {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await?;
    // What router 0 logged since its restart: the newest refused, the one
    // before it restored, no gap.
    let log = case.routers[0].log();
    let log = log.get(logged_before..).unwrap_or_default();
    let names = |line: &str, object: &str| {
        line.match_indices(object)
            .any(|(at, _)| !line[at + object.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let refused = log.lines().any(|l| {
        l.contains("snapshot not restored; trying an older one") && names(l, &newest.name)
    });
    let restored = log.lines().any(|l| {
        l.contains("partition store restored from its snapshot") && names(l, &before.name)
    });
    ensure!(
        refused && restored && !log.contains("has a gap"),
        "router 0 did not fall back from snapshot {} to {} (at {before_at}) without a gap (refused: {refused}, restored: {restored}):\n{}",
        newest.name,
        before.name,
        case.routers[0].log_tail()
    );
    Ok(())
}

/// Publishes chunks of a made-up upload `nuid` to object store `bucket`
/// (what a router that died mid-upload leaves: chunks, no metadata), then
/// waits until a sweep purged them and a router said so (`what`: the store's
/// word in that log line, `snapshot` or `component`).
pub(crate) async fn unfinished_upload_is_swept(
    case: &GroupCase,
    js: &jetstream::Context,
    bucket: &str,
    nuid: &str,
    what: &str,
) -> Result<()> {
    let stream = js.get_stream(format!("OBJ_{bucket}")).await?;
    let orphan = format!("$O.{bucket}.C.{nuid}");
    for _ in 0..3 {
        js.publish(orphan.clone(), vec![0x5au8; 128 * 1024].into())
            .await?
            .await?;
    }
    let stored = || async {
        let mut subjects = stream
            .info_with_subjects(format!("$O.{bucket}.C.>"))
            .await?;
        while let Some(s) = subjects.next().await {
            if s?.0 == orphan {
                return anyhow::Ok(true);
            }
        }
        anyhow::Ok(false)
    };
    ensure!(stored().await?, "the orphan chunks were not stored");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stored().await? {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the chunks of the unfinished {what} upload were still there after 60 s\n{}",
            case.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let said = format!("chunks of an unfinished {what} upload deleted");
    ensure!(
        case.routers
            .iter()
            .any(|r| r.log().contains(&said) && r.log().contains(nuid)),
        "no router said it deleted the unfinished upload\n{}",
        case.logs()
    );
    Ok(())
}

/// A router that dies in the middle of a snapshot upload leaves chunks that
/// no snapshot names. The owner of partition 0 deletes them once they are
/// older than `cluster.snapshot_orphan_age`; every stored snapshot keeps its
/// chunks and still reads back whole.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_of_an_unfinished_snapshot_upload_are_deleted() -> Result<()> {
    init_logs();
    let case = GroupCase::start_tuned(
        std::path::Path::new(BIN),
        2,
        "g8",
        16,
        &[("all.yaml", ALL_ORDERS), ("pair.yaml", PAIR)],
        "",
        "snapshot_orphan_age = \"2s\"",
    )
    .await?;
    let (client, out, waits) = targets(&case).await?;
    let js = jetstream::new(client.clone());
    let bucket = js.get_object_store("SBX_G8_SNAP").await?;
    let n = 50u64;
    for k in 0..n {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    unfinished_upload_is_swept(
        &case,
        &js,
        "SBX_G8_SNAP",
        "UNFINISHEDUPLOAD0001",
        "snapshot",
    )
    .await?;
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await?;
    // Once no partition moves any more, no snapshot is added or dropped:
    // then every stored one reads back whole.
    let objects = || async {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut list = bucket.list().await?;
            let mut objects = BTreeMap::new();
            while let Some(info) = list.next().await {
                let info = info?;
                objects.insert(info.name.clone(), info.size);
            }
            anyhow::Ok(objects)
        })
        .await
        .context("listing the snapshot store took over 10 s")?
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = objects().await?;
    loop {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let now = objects().await?;
        if now == last && !now.is_empty() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the snapshot store did not settle within 90 s: {now:?}"
        );
        last = now;
    }
    // (A read whose chunks are gone waits for them: 30 s each.)
    for (name, size) in &last {
        let mut bytes = Vec::new();
        let mut object = bucket.get(name).await?;
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes),
        )
        .await
        .with_context(|| format!("snapshot {name} did not read back within 30 s"))?
        .with_context(|| format!("reading snapshot {name}"))?;
        ensure!(
            bytes.len() == *size,
            "snapshot {name} read back {} of {size} bytes",
            bytes.len()
        );
    }
    Ok(())
}

/// One disruption of the chaos case.
#[derive(Debug, Clone, Copy)]
enum Disruption {
    KillRouter,
    PauseRouter,
    AddRouter,
    StopRouter,
    KillStreamLeader,
}

/// A small deterministic generator (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The whole NATS cluster goes away (every node SIGKILLed) and comes back
/// on its stores: the routers keep reconnecting, and once it is back they
/// take their partitions again; a webhook sent meanwhile is held and
/// answered once its signal reached the group; nothing acknowledged before
/// the outage is lost and every firing, before and after, arrives exactly
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn the_whole_nats_cluster_goes_away_and_comes_back() -> Result<()> {
    init_logs();
    // A webhook route too: what it answers while NATS is gone.
    let adapter = format!(
        "[[plugins.adapters]]\nname = \"hook\"\nfile = {:?}\nsettings = {{ name = \"hooked\", \"id-pointer\" = \"/delivery\" }}\n",
        plugin_component("adapter_webhook_json")?
            .display()
            .to_string()
    );
    let mut case = GroupCase::start(
        std::path::Path::new(BIN),
        2,
        "g11",
        16,
        &[("all.yaml", ALL_ORDERS), ("pair.yaml", PAIR)],
        &adapter,
    )
    .await?;
    let (client, out, waits) = targets(&case).await?;
    let (before, n) = (20u64, 40u64);
    for k in 0..before {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    let http: Vec<_> = case.routers.iter().map(|r| r.http).collect();
    let hook = |i: usize, delivery: &str, within: Duration| {
        let body = json!({"delivery": delivery}).to_string();
        let addr = http[i];
        async move {
            signalbox_testkit::http_request_within(addr, "POST", "/ingest/hook", &[], &body, within)
                .await
        }
    };
    let (status, reply) = hook(0, "h-1", Duration::from_secs(10)).await?;
    ensure!(status == 200, "webhook before the outage: {status} {reply}");
    for node in 0..3 {
        case.cluster.kill(node);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for i in 0..case.routers.len() {
        ensure!(
            case.running(i) && case.routers[i].log().contains("disconnected from NATS"),
            "router {i} exited, or did not notice, while NATS was gone\n{}",
            case.logs()
        );
    }
    // A webhook while NATS is gone is held, not refused: it is answered
    // once the signal reached the group.
    let held = tokio::spawn(hook(1, "h-2", Duration::from_secs(120)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        !held.is_finished(),
        "the webhook was answered while NATS was gone: {:?}",
        held.await
    );
    for node in 0..3 {
        case.cluster.start_node(node)?;
    }
    let (status, reply) = held.await??;
    ensure!(
        status == 200 && reply.contains("\"h-2\"") && reply.contains("\"duplicate\":false"),
        "the held webhook: {status} {reply}"
    );
    case.cluster.meta_leader().await?;
    let client = case.cluster.client().await?;
    for k in before..n {
        publish(&client, "orders", &order(k)).await?;
        publish(&client, "payments", &payment(k)).await?;
    }
    check_exactly_once(&case, &out, &waits, n, &BTreeSet::new()).await?;
    let hooked = stored(&case, 0, "hooked", 2).await?;
    ensure!(
        hooked == BTreeMap::from([(1, "h-1".to_string()), (2, "h-2".to_string())]),
        "the webhook signals stored: {hooked:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn routers_killed_paused_added_and_stopped_and_a_node_killed_under_load() -> Result<()> {
    init_logs();
    let seed = std::env::var("SIGNALBOX_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) | 1);
    let mut case = start_group(3, "g3").await?;
    let (client, out, waits) = targets(&case).await?;
    // 10 000 orders and 10 000 payments: 20 000 signals; four producers on
    // the three nodes, each also re-sending a tenth of another's ids.
    let n = 10_000u64;
    let mut wait_ids = BTreeSet::new();
    for i in 0..10u64 {
        let id = format!("before-{i}");
        register_wait(&client, &json!({"id": id, "signals": [{"name": "orders", "where": {"n": [n - 1 - i]}}], "timeout": "30m"})).await?;
        wait_ids.insert(id);
    }
    let mut producers = Vec::new();
    for j in 0..4u64 {
        let c = async_nats::connect(case.cluster.urls()).await?;
        producers.push(tokio::spawn(async move {
            for i in (j..n).step_by(4) {
                publish(&c, "orders", &order(i)).await?;
                publish(&c, "payments", &payment(i)).await?;
                if i % 10 == 0 {
                    let other = (i + 1).min(n - 1);
                    publish(&c, "orders", &order(other)).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    let mut rng = Rng(seed);
    let mut plan = vec![Disruption::KillRouter; 5];
    plan.extend([
        Disruption::PauseRouter,
        Disruption::AddRouter,
        Disruption::StopRouter,
        Disruption::KillStreamLeader,
    ]);
    for k in (1..plan.len()).rev() {
        plan.swap(k, rng.below(k as u64 + 1) as usize);
    }
    let mut done = Vec::new();
    for d in plan {
        tokio::time::sleep(Duration::from_millis(2000 + rng.below(2000))).await;
        let running: Vec<usize> = (0..case.routers.len())
            .filter(|i| case.running(*i))
            .collect();
        let pick = running[rng.below(running.len() as u64) as usize];
        match d {
            Disruption::KillRouter => {
                case.kill(pick)?;
                tokio::time::sleep(Duration::from_secs(2)).await;
                case.restart(pick)?;
            }
            Disruption::PauseRouter => {
                case.pause(pick)?;
                tokio::time::sleep(Duration::from_secs(8)).await;
                case.resume(pick)?;
            }
            Disruption::AddRouter => {
                case.add_router()?;
            }
            Disruption::StopRouter if running.len() > 2 => {
                case.stop(pick)?;
            }
            Disruption::StopRouter => {}
            Disruption::KillStreamLeader => {
                let js = jetstream::new(client.clone());
                let mut s = js.get_stream("SBX_G3_IN").await?;
                let leader = s
                    .info()
                    .await?
                    .cluster
                    .as_ref()
                    .and_then(|c| c.leader.clone())
                    .unwrap_or_default();
                let node = case
                    .cluster
                    .index_of(&leader)
                    .context("stream leader node")?;
                case.cluster.kill(node);
                tokio::time::sleep(Duration::from_secs(5)).await;
                case.cluster.restart(node).await?;
            }
        }
        done.push(format!("{d:?}@{pick}"));
    }
    for p in producers {
        p.await?
            .with_context(|| format!("seed {seed}, disruptions {done:?}"))?;
    }
    for i in 0..10u64 {
        let id = format!("after-{i}");
        register_wait(
            &client,
            &json!({"id": id, "signals": [{"name": "orders", "where": {"n": [i]}}]}),
        )
        .await?;
        wait_ids.insert(id);
    }
    case.settle().await?;
    check_exactly_once(&case, &out, &waits, n, &wait_ids)
        .await
        .with_context(|| format!("seed {seed} (SIGNALBOX_CHAOS_SEED), disruptions {done:?}"))
}

/// Starts `signalbox serve --config config` and returns its exit status and
/// output, within 60 s.
fn refused(config: &std::path::Path) -> Result<(bool, String)> {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()?;
    Ok((
        !out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_that_would_split_the_truth_are_refused() -> Result<()> {
    init_logs();
    let case = GroupCase::start(
        std::path::Path::new(BIN),
        1,
        "g4",
        16,
        &[("all.yaml", ALL_ORDERS)],
        "",
    )
    .await?;
    // Another partition count than the group's.
    let (no, text) = refused(&case.stray_config("wrong-partitions", 8, "g4")?)?;
    ensure!(
        no && text.contains("cluster.partitions") && text.contains("16") && text.contains('8'),
        "{text}"
    );
    // Another group on the same subjects.
    let (no, text) = refused(&case.stray_config("wrong-group", 16, "other")?)?;
    ensure!(
        no && text.contains("\"g4\"") && text.contains("cluster.group"),
        "{text}"
    );
    let client = case.cluster.client().await?;
    let js = jetstream::new(client.clone());
    ensure!(
        js.get_stream("SBX_OTHER_IN").await.is_err(),
        "the refused group wrote its streams"
    );
    // A router alone beside the group.
    let alone = case.stray_config("alone", 16, "g4")?;
    let text = std::fs::read_to_string(&alone)?;
    let cut = text.find("[cluster]").context("cluster table")?;
    std::fs::write(&alone, &text[..cut])?;
    let (no, text) = refused(&alone)?;
    ensure!(no && text.contains("group \"g4\""), "{text}");
    // A server without JetStream.
    let dir = tempfile::tempdir()?;
    let port = signalbox_testkit::free_port()?;
    let mut plain = std::process::Command::new(signalbox_testkit::nats_server_binary()?)
        .args(["-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[nats]\nurls = [\"nats://127.0.0.1:{port}\"]\n[cluster]\ngroup = \"g5\"\n",
            dir.path().join("d").display().to_string()
        ),
    )?;
    let result = refused(&config);
    let _ = plain.kill();
    let _ = plain.wait();
    let (no, text) = result?;
    ensure!(no && text.contains("JetStream is not enabled"), "{text}");
    // A server older than group mode needs (Debian's 2.9.10, installed by
    // scripts/setup.sh --test beside the pinned one).
    let old = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("Debian's nats-server (scripts/setup.sh --test installs it)")?;
    let port = signalbox_testkit::free_port()?;
    let mut server = std::process::Command::new(old)
        .args(["-js", "-p", &port.to_string(), "-sd"])
        .arg(dir.path().join("old"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[nats]\nurls = [\"nats://127.0.0.1:{port}\"]\n[cluster]\ngroup = \"g6\"\n",
            dir.path().join("d2").display().to_string()
        ),
    )?;
    let result = refused(&config);
    let _ = server.kill();
    let _ = server.wait();
    let (no, text) = result?;
    ensure!(
        no && text.contains("too old") && text.contains("2.12.0"),
        "{text}"
    );
    Ok(())
}
