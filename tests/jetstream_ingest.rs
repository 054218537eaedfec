//! JetStream ingest against a real nats-server: signals are taken from a durable
//! consumer and acked only after the store committed them, so signals published
//! while the router is down are processed when it comes back, and a redelivery is
//! a duplicate, not a second signal.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use signalbox_router::IngestMode;
use signalbox_testkit::{TestNats, TestRouter, WAIT, admin, init_logs, next_message};

const SUB: &str = r#"
id: loads
signal: table_updated
where: {table: [{prefix: "prod."}]}
action: {publish: {subject: out.loads}}
params: {table: "{table}"}
"#;

async fn js_router(nats: &TestNats, dir: &std::path::Path) -> Result<TestRouter> {
    let mut config = TestRouter::config(&nats.url(), dir);
    config.ingest = IngestMode::Jetstream;
    TestRouter::start_with(config).await
}

async fn publish_js(js: &async_nats::jetstream::Context, id: &str, table: &str) -> Result<()> {
    let body = json!({"id": id, "params": {"table": table}}).to_string();
    js.publish("signals.table_updated", body.into())
        .await?
        .await
        .context("JetStream stored the signal")?;
    Ok(())
}

#[tokio::test]
async fn signals_published_while_the_router_is_down_are_processed_on_restart() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let dir = tempfile::tempdir()?;
    let client = nats.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = js_router(&nats, dir.path()).await?;
    router.add_subscription(&client, SUB).await?;
    let mut out = client.subscribe("out.loads").await?;
    client.flush().await?;

    publish_js(&js, "a", "prod.a").await?;
    let first = next_message(&mut out, WAIT).await?;
    let body: Value = serde_json::from_slice(&first.payload)?;
    assert_eq!(body["params"]["table"], "prod.a");

    // Router down: the stream keeps what producers publish.
    router.shutdown().await;
    for (id, table) in [("b", "prod.b"), ("c", "dev.c"), ("d", "prod.d")] {
        publish_js(&js, id, table).await?;
    }
    let _router = js_router(&nats, dir.path()).await?;
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let msg = next_message(&mut out, WAIT).await?;
        let body: Value = serde_json::from_slice(&msg.payload)?;
        seen.insert(
            body["params"]["table"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        seen,
        BTreeSet::from(["prod.b".to_string(), "prod.d".to_string()])
    );
    let listed = admin(
        &client,
        "signalbox.admin",
        "signals.ls",
        r#"{"name": "table_updated"}"#,
    )
    .await?;
    let ids: Vec<&str> = listed["signals"]
        .as_array()
        .context("list")?
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["a", "b", "c", "d"], "all stored once, in order");
    Ok(())
}

#[tokio::test]
async fn bad_messages_are_terminated_and_good_ones_flow() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let dir = tempfile::tempdir()?;
    let client = nats.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = js_router(&nats, dir.path()).await?;
    router.add_subscription(&client, SUB).await?;
    let mut out = client.subscribe("out.loads").await?;
    let mut rejected = client.subscribe("signalbox.rejected").await?;
    client.flush().await?;

    js.publish("signals.table_updated", "not json".into())
        .await?
        .await?;
    publish_js(&js, "good", "prod.good").await?;
    let copy = next_message(&mut rejected, WAIT).await?;
    let reason = copy
        .headers
        .as_ref()
        .and_then(|h| h.get("Signalbox-Error"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("not valid JSON"), "{reason}");
    let msg = next_message(&mut out, WAIT).await?;
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["params"]["table"], "prod.good");

    // Nothing stays pending on the consumer: the bad one was terminated, the good one acked.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream("signalbox", "SIGNALS").await?;
        let info = consumer.info().await?;
        if info.num_ack_pending == 0 && info.num_pending == 0 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "consumer still has work: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn signal_without_id_gets_its_stream_position() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let dir = tempfile::tempdir()?;
    let client = nats.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    let _router = js_router(&nats, dir.path()).await?;
    js.publish("signals.ping", "{}".into()).await?.await?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let reply = admin(
            &client,
            "signalbox.admin",
            "signals.ls",
            r#"{"name": "ping"}"#,
        )
        .await?;
        if let Some(first) = reply["signals"].as_array().and_then(|a| a.first()) {
            assert_eq!(first["id"], "jetstream/SIGNALS/1", "{reply}");
            assert_eq!(first["origin"]["transport"], "jetstream");
            break;
        }
        ensure!(std::time::Instant::now() < deadline, "signal never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
