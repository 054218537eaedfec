//! Issue 18, "CPU per signal in group mode against single mode": the same
//! subscriptions and the same load through one router alone on one
//! nats-server, and through groups of 3, 2 and 1 routers on the 3-node
//! cluster, alternated within each repetition.
//!
//! The load: `--signals` signals published to JetStream (PubAcks awaited,
//! pipelined), spread round-robin over `--names` signal names (a group's
//! work is spread by name: one name is one partition, owned by one router),
//! one subscription per name firing every signal to `runs.load`, captured by
//! `RUNS` (one replica in both setups: the target is the user's stream, not
//! the group's). Each row is metered from `/proc` over the load alone: the
//! router processes summed, the nats-server processes summed, and this
//! process (load generator and receiver). Before the load, the same
//! processes are metered idle for [`IDLE`], so the group's background work
//! (leases, members, snapshots) is shown apart. A group row also notes how
//! the names' partitions fell on its routers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream;
use signalbox_router::group::hash::signal_partition;
use signalbox_testkit::{NatsCluster, TestNats};

use super::cpu::{pids_cpu, self_cpu};
use super::group::{Group, PARTITIONS};
use super::load::{
    Ingest, Outcome, RUNS_STREAM, Run, SIGNALS_STREAM, delete_stream, fresh_runs_stream,
    subscription,
};
use super::serve::Serve;

/// How long the processes are metered idle before a row's load.
const IDLE: Duration = Duration::from_secs(3);

/// Which setup a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setup {
    /// One router alone on one nats-server.
    Single,
    /// A group of this many routers on the 3-node cluster.
    Group(usize),
}

impl Setup {
    pub fn label(self) -> String {
        match self {
            Setup::Single => "single: 1 router, 1 nats-server".into(),
            Setup::Group(n) => format!("group: {n} router(s), 3-node cluster"),
        }
    }
}

/// One row's measurement.
#[derive(Debug, Clone)]
pub struct Row {
    pub outcome: Outcome,
    /// CPU µs per signal: routers summed, nats-servers summed, this process.
    pub routers_us: Option<f64>,
    pub nats_us: Option<f64>,
    pub own_us: Option<f64>,
    /// Idle CPU in ms per second: routers, nats-servers.
    pub idle_routers: Option<f64>,
    pub idle_nats: Option<f64>,
    /// For a group: the share of the names each router owned.
    pub shares: String,
}

/// The subscriptions: one per name.
pub fn subscriptions(names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            (
                format!("s{k}.yaml"),
                subscription(&format!("b{k}"), name, Ingest::JetStream),
            )
        })
        .collect()
}

/// Meters `routers` and `nats` over `run` (and over [`IDLE`] before it).
async fn meter(routers: &[u32], nats: &[u32], run: Run, n: usize) -> Result<Row> {
    let idle_before = (pids_cpu(routers), pids_cpu(nats));
    tokio::time::sleep(IDLE).await;
    let idle_after = (pids_cpu(routers), pids_cpu(nats));
    let per_s = |b: Option<Duration>, a: Option<Duration>| {
        Some(a?.saturating_sub(b?).as_secs_f64() * 1e3 / IDLE.as_secs_f64())
    };
    let before = (pids_cpu(routers), pids_cpu(nats), self_cpu());
    let outcome = run.go().await?;
    let after = (pids_cpu(routers), pids_cpu(nats), self_cpu());
    let per = |b: Option<Duration>, a: Option<Duration>| {
        Some(a?.saturating_sub(b?).as_secs_f64() * 1e6 / n as f64)
    };
    Ok(Row {
        routers_us: per(before.0, after.0),
        nats_us: per(before.1, after.1),
        own_us: per(before.2, after.2),
        idle_routers: per_s(idle_before.0, idle_after.0),
        idle_nats: per_s(idle_before.1, idle_after.1),
        outcome,
        shares: String::new(),
    })
}

/// One router alone on `nats`.
pub async fn single(
    nats: &TestNats,
    bin: &Path,
    names: &[String],
    n: usize,
    tag: &str,
) -> Result<Row> {
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    delete_stream(&js, SIGNALS_STREAM).await;
    fresh_runs_stream(&js, 1).await?;
    let dir = tempfile::tempdir()?;
    let subs = dir.path().join("subscriptions");
    std::fs::create_dir_all(&subs)?;
    for (file, yaml) in subscriptions(names) {
        std::fs::write(subs.join(file), yaml)?;
    }
    let config = format!(
        "data_dir = {data:?}\nsubscriptions = [{subs:?}]\ningest = \"jetstream\"\n\n[nats]\nurls = [{url:?}]\n",
        data = dir.path().join("data").display().to_string(),
        subs = subs.display().to_string(),
        url = nats.url(),
    );
    let mut serve = Serve::start(bin, dir.path(), &config)?;
    serve.ready(Duration::from_secs(30)).await?;
    // Taking signals once its durable consumer exists.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = js.get_stream(SIGNALS_STREAM).await
            && s.consumer_info("signalbox").await.is_ok()
        {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the router did not take signals within 30 s; its log:\n{}",
            serve.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let urls = [nats.url()];
    let run = Run::prepare(&urls, Ingest::JetStream, "signals", names, n, None, tag).await?;
    let routers = [serve.pid().context("the router is not running")?];
    let servers = [nats.pid().context("nats-server is not running")?];
    let row = meter(&routers, &servers, run, n).await;
    drop(serve);
    delete_stream(&js, SIGNALS_STREAM).await;
    delete_stream(&js, RUNS_STREAM).await;
    row
}

/// A group of `routers` routers on `cluster` (group name `name`).
pub async fn group(
    cluster: &NatsCluster,
    bin: &Path,
    routers: usize,
    name: &str,
    names: &[String],
    n: usize,
    tag: &str,
) -> Result<Row> {
    let urls = cluster.urls();
    let js = jetstream::new(cluster.client().await?);
    fresh_runs_stream(&js, 1).await?;
    let group = Group::start(
        bin,
        &urls,
        name,
        routers,
        "jetstream",
        &subscriptions(names),
    )
    .await?;
    let owners = group.stable(Duration::from_secs(60)).await?;
    let mut per_router: BTreeMap<String, usize> = BTreeMap::new();
    for name in names {
        let p = signal_partition("signals", name, PARTITIONS);
        let owner = owners.get(&p).cloned().flatten().unwrap_or_default();
        *per_router.entry(owner).or_default() += 1;
    }
    let shares = per_router
        .iter()
        .map(|(r, c)| format!("{r} {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let servers: Vec<u32> = (0..NatsCluster::SIZE)
        .filter_map(|i| cluster.pid(i))
        .collect();
    let result = async {
        let run = Run::prepare(&urls, Ingest::JetStream, "signals", names, n, None, tag).await?;
        meter(&group.pids(), &servers, run, n).await
    }
    .await;
    group.remove(&js).await?;
    delete_stream(&js, RUNS_STREAM).await;
    let mut row = result?;
    row.shares = format!("names per router: {shares}");
    Ok(row)
}
