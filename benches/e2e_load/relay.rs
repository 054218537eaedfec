//! The relay peer of issue 19: a program that does exactly the NATS work the
//! router does for one signal and one firing, and nothing else (no decoding,
//! no store, no matching), run as a process of its own (the bench binary
//! again, `--relay-child`) so that its `/proc` figures are its own.
//!
//! - JetStream mode: a durable pull consumer (`relay`) on the signal stream
//!   `SIGNALS` (created over `signals.>` as the router creates it: file
//!   storage, a 2 minute duplicate window), explicit acks, at most 2,048 acks
//!   pending (the router's default `batch_size` 256 × 8); each message is
//!   published to the firing subject with a `Nats-Msg-Id` (the signal's
//!   stream sequence), and acked once its PubAck arrived. Publishes are
//!   pipelined, as the router's outbox pipelines them.
//! - Core mode: a subscription on `signals.>`; each message published to the
//!   firing subject.
//!
//! The firing body is the signal body as it arrived (it carries `params.n`,
//! which the load driver counts). The child prints `ready` on stdout once it
//! takes messages, and exits when its stdin closes (the parent went away) or
//! after [`RELAY_LIFETIME`], whichever comes first.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::load::{CORE_TARGET, Ingest, JS_TARGET, SIGNALS_STREAM};

/// The longest a relay child runs.
const RELAY_LIFETIME: Duration = Duration::from_secs(1800);
/// Acks pending at most (the router's `batch_size` 256 × 8).
const MAX_ACK_PENDING: usize = 2048;
/// Messages per pull request (the router's default `batch_size`).
const PULL_BATCH: usize = 256;

/// Runs the relay child: `--relay-child jetstream|core URL`.
pub async fn child(mode: &str, url: &str) -> Result<()> {
    let ingest = match mode {
        "jetstream" => Ingest::JetStream,
        "core" => Ingest::Core,
        other => bail!("--relay-child takes jetstream or core, not {other:?}"),
    };
    let client = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await
        .with_context(|| format!("relay: connecting to {url}"))?;
    // Stdin closes when the parent goes away: stop then.
    let parent_gone = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let work = async {
        match ingest {
            Ingest::JetStream => relay_jetstream(client).await,
            Ingest::Core => relay_core(client).await,
        }
    };
    tokio::select! {
        r = work => r,
        _ = parent_gone => Ok(()),
        _ = tokio::time::sleep(RELAY_LIFETIME) => Ok(()),
    }
}

async fn relay_jetstream(client: async_nats::Client) -> Result<()> {
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: SIGNALS_STREAM.into(),
            subjects: vec!["signals.>".into()],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .context("relay: the signal stream")?;
    let consumer = stream
        .get_or_create_consumer(
            "relay",
            consumer::pull::Config {
                durable_name: Some("relay".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                max_ack_pending: MAX_ACK_PENDING as i64,
                ..Default::default()
            },
        )
        .await
        .context("relay: the durable consumer")?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
        .context("relay: pulling")?;
    println!("ready");
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            m = messages.next(), if in_flight.len() < MAX_ACK_PENDING => {
                let Some(m) = m else { return Ok(()) };
                let m = m.context("relay: a pulled message")?;
                let seq = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("relay-{seq}").as_str());
                let ack = js
                    .publish_with_headers(JS_TARGET, headers, m.payload.clone())
                    .await
                    .context("relay: publish")?;
                in_flight.push(async move {
                    ack.await.context("relay: PubAck")?;
                    m.ack().await.map_err(|e| anyhow::anyhow!("relay: ack: {e}"))
                });
            }
            Some(r) = in_flight.next(), if !in_flight.is_empty() => r?,
        }
    }
}

async fn relay_core(client: async_nats::Client) -> Result<()> {
    let mut sub = client.subscribe("signals.>").await?;
    client.flush().await?;
    println!("ready");
    while let Some(m) = sub.next().await {
        client.publish(CORE_TARGET, m.payload).await?;
    }
    Ok(())
}
