//! The fencing of group mode against a real nats-server: a partition's
//! changelog refuses a writer whose view is stale, whatever it believes. A
//! first owner writes, a second catches up and fences, and the first one's
//! next entry is refused by the server (its store transaction rolls back);
//! a fence that expects a stale position is refused too. An entry larger than
//! a message goes out as an atomic batch, and the log read back chunk by
//! chunk rebuilds the same store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use signalbox_model::{Limits, Origin, Signal};
use signalbox_router::group::changelog::{FenceError, LogWriter, fence};
use signalbox_store::{ChangeSet, ChangelogError, Incoming, IngestError, Store, StoreOptions};
use signalbox_testkit::TestNats;

const SUBJECT: &str = "sbx.t.log.0";

async fn log_stream(client: &async_nats::Client) -> Result<stream::Stream> {
    let js = jetstream::new(client.clone());
    Ok(js
        .create_stream(stream::Config {
            name: "SBX_T_LOG".into(),
            subjects: vec!["sbx.t.log.*".into()],
            allow_atomic_publish: true,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?)
}

fn incoming(id: &str, payload_bytes: usize) -> Result<Incoming> {
    let body = serde_json::json!({
        "name": "orders", "id": id, "params": {"k": 1},
        "payload": {"blob": "x".repeat(payload_bytes)}
    });
    let limits = Limits {
        max_message_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    Ok(Incoming {
        signal: Signal::parse(body.to_string().as_bytes(), &limits)?,
        origin: Origin::default(),
        received_at_ms: 1_000,
    })
}

fn store(dir: &tempfile::TempDir, name: &str) -> Result<Arc<Store>> {
    Ok(Arc::new(Store::open(
        &dir.path().join(name),
        StoreOptions::default(),
    )?))
}

/// Ingests `batch` into `store` off the async threads.
async fn ingest(store: &Arc<Store>, batch: Vec<Incoming>) -> Result<Result<(), IngestError>> {
    let s = store.clone();
    Ok(
        tokio::task::spawn_blocking(move || s.ingest(batch, &mut |_, _| Vec::new()).map(|_| ()))
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_owner_is_refused_by_the_server_and_writes_nothing() -> Result<()> {
    let nats = TestNats::start()?;
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    log_stream(&client).await?;
    let dir = tempfile::tempdir()?;

    // Owner A fences an empty log and writes one transaction.
    let fence_a = fence(&js, SUBJECT, "a", 0).await?;
    let store_a = store(&dir, "a.redb")?;
    let writer_a = Arc::new(LogWriter::new(
        js.clone(),
        client.clone(),
        SUBJECT.into(),
        "a",
        fence_a,
    ));
    store_a.set_changelog(Some(writer_a.clone()));
    ingest(&store_a, vec![incoming("1", 10)?]).await??;
    let after_a = writer_a.last();
    ensure!(after_a > fence_a, "A's entry was written");

    // B fences expecting a stale position: refused, nothing written.
    match fence(&js, SUBJECT, "b", fence_a).await {
        Err(FenceError::Moved) => {}
        other => anyhow::bail!("a fence on a stale position was taken: {other:?}"),
    }
    // B catches up (knows A's entry) and fences.
    let fence_b = fence(&js, SUBJECT, "b", after_a).await?;

    // A, which still believes it owns the partition, writes again: the
    // server refuses, and A's store is as before.
    let before = store_a.stats()?.signals;
    let refused = ingest(&store_a, vec![incoming("2", 10)?]).await?;
    ensure!(
        matches!(
            refused,
            Err(IngestError::Changelog(ChangelogError::Fenced { .. }))
        ),
        "a stale owner's write went through: {refused:?}"
    );
    ensure!(writer_a.stopped(), "the refused writer stops");
    ensure!(
        store_a.stats()?.signals == before,
        "the refused transaction left a row"
    );

    // B writes on.
    let store_b = store(&dir, "b.redb")?;
    let writer_b = Arc::new(LogWriter::new(
        js.clone(),
        client.clone(),
        SUBJECT.into(),
        "b",
        fence_b,
    ));
    store_b.set_changelog(Some(writer_b.clone()));
    ingest(&store_b, vec![incoming("3", 10)?]).await??;
    ensure!(writer_b.last() > fence_b && !writer_b.stopped());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_larger_than_a_message_is_one_atomic_batch_and_replays() -> Result<()> {
    let nats = TestNats::start()?;
    let client = nats.client().await?;
    let js = jetstream::new(client.clone());
    let log = log_stream(&client).await?;
    let dir = tempfile::tempdir()?;
    let max = client.server_info().max_payload;
    let fenced = fence(&js, SUBJECT, "a", 0).await?;
    let owner = store(&dir, "owner.redb")?;
    let writer = Arc::new(LogWriter::new(
        js.clone(),
        client.clone(),
        SUBJECT.into(),
        "a",
        fenced,
    ));
    owner.set_changelog(Some(writer.clone()));
    // Three signals of a third of max_payload each: one entry above it.
    let batch = (0..3)
        .map(|i| incoming(&format!("big-{i}"), max / 3))
        .collect::<Result<Vec<_>>>()?;
    ingest(&owner, batch).await??;
    ensure!(owner.stats()?.signals == 3);

    // Read the log back, chunks put together, into a fresh store.
    let replica = store(&dir, "replica.redb")?;
    let consumer = log
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: SUBJECT.into(),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let (mut chunks, mut batches, mut parts) = (Vec::new(), 0, 0);
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await
    {
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        let headers = m.message.headers.clone().unwrap_or_default();
        let in_batch = headers.get("Nats-Batch-Id").is_some();
        chunks.extend_from_slice(&m.message.payload);
        if in_batch {
            parts += 1;
            if headers.get("Nats-Batch-Commit").is_none() {
                continue;
            }
            batches += 1;
        }
        let changes = ChangeSet::decode(&std::mem::take(&mut chunks)).context("entry")?;
        replica.apply(&changes, seq)?;
    }
    ensure!(
        batches == 1 && parts >= 2,
        "one batch of {parts} chunks ({batches} batches)"
    );
    ensure!(replica.stats()?.signals == 3, "the replica has the signals");
    for i in 0..3 {
        let (a, b) = (
            owner.signal_by_id("orders", &format!("big-{i}"))?,
            replica.signal_by_id("orders", &format!("big-{i}"))?,
        );
        ensure!(a.is_some() && a == b, "big-{i} differs");
    }
    Ok(())
}
