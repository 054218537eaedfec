//! The cluster fixture holds what a group of routers will rely on: an R3
//! stream keeps a message published before its leader is SIGKILLed, a new
//! leader is elected and takes publishes, and the killed node comes back on
//! its ports and store. Every wait polls until a bound; nothing is timed.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, stream};
use signalbox_testkit::NatsCluster;

/// How long an election or a catch-up may take before the case fails.
const BOUND: Duration = Duration::from_secs(60);

/// The stream's leader as the cluster reports it (polled until there is one).
async fn stream_leader(js: &jetstream::Context, name: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        if let Ok(mut s) = js.get_stream(name).await
            && let Ok(info) = s.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return Ok(leader);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("stream {name} had no leader within {BOUND:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes until JetStream acknowledges (a leaderless stream refuses or
/// times out), and returns the sequence it was stored at.
async fn publish_until_acked(js: &jetstream::Context, subject: &str, body: &str) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match js
            .publish(subject.to_string(), body.to_string().into())
            .await
        {
            Ok(ack) => match ack.await {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no acknowledgement for {subject} within {BOUND:?}: {last}")
}

/// Reads message `seq` of `name` through a client of node `node` alone.
async fn read_from_node(
    cluster: &NatsCluster,
    node: usize,
    name: &str,
    seq: u64,
) -> Result<String> {
    let client = async_nats::connect(cluster.url(node)).await?;
    let js = jetstream::new(client);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let got = async {
            let stream = js.get_stream(name).await?;
            anyhow::Ok(stream.get_raw_message(seq).await?)
        }
        .await;
        match got {
            Ok(msg) => return Ok(String::from_utf8_lossy(&msg.payload).into_owned()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("message {seq} through node {node}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_survives_the_kill_of_its_leader() -> Result<()> {
    let mut cluster = NatsCluster::start().await?;
    assert_eq!(cluster.urls().len(), NatsCluster::SIZE);
    let meta = cluster.meta_leader().await?;
    assert!(
        cluster.index_of(&meta).is_some(),
        "meta leader {meta:?} is one of ours"
    );

    let js = jetstream::new(cluster.client().await?);
    js.create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        num_replicas: 3,
        ..Default::default()
    })
    .await?;
    let before = publish_until_acked(&js, "orders.1", "before the kill").await?;

    let leader = stream_leader(&js, "ORDERS").await?;
    let killed = cluster
        .index_of(&leader)
        .with_context(|| format!("stream leader {leader:?} is not a node of the cluster"))?;
    cluster.kill(killed);
    assert_eq!(cluster.pid(killed), None, "node {killed} is down");

    // A new leader among the two left takes publishes.
    let after = publish_until_acked(&js, "orders.2", "after the kill").await?;
    assert!(after > before, "sequence {after} follows {before}");
    let new_leader = stream_leader(&js, "ORDERS").await?;
    assert_ne!(new_leader, leader, "the killed node cannot lead");

    // The killed node comes back on its ports and store; a client of that
    // node alone reads both messages.
    cluster.restart(killed).await?;
    assert!(cluster.pid(killed).is_some());
    assert_eq!(
        read_from_node(&cluster, killed, "ORDERS", before).await?,
        "before the kill"
    );
    assert_eq!(
        read_from_node(&cluster, killed, "ORDERS", after).await?,
        "after the kill"
    );
    // And the stream still takes publishes with all three nodes up.
    let third = publish_until_acked(&js, "orders.3", "after the restart").await?;
    assert!(third > after);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_rejoins_on_restart() -> Result<()> {
    let mut cluster = NatsCluster::start().await?;
    let meta = cluster.meta_leader().await?;
    let i = cluster.index_of(&meta).context("meta leader is a node")?;
    cluster.stop(i)?;
    // The other two elect a meta leader of their own.
    let next = cluster.meta_leader().await?;
    assert_ne!(next, meta);
    cluster.restart(i).await?;
    let client = async_nats::connect(cluster.url(i)).await?;
    client.flush().await?;
    Ok(())
}
