//! Replay (backfill) against a real router: stored signals run through a new
//! subscription fire once; a second replay, or an instance that already fired
//! live, fires nothing again; joins replay in their own scope.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, admin, expect_silence, init_logs, next_message, publish_signal,
};

async fn replay_all(client: &async_nats::Client, prefix: &str, sub: &str) -> Result<(u64, u64)> {
    let mut cursor = Value::Null;
    let (mut fired, mut pages) = (0, 0);
    loop {
        let body = json!({"sub": sub, "limit": 3, "cursor": cursor});
        let v = admin(client, prefix, "replay", &body.to_string()).await?;
        anyhow::ensure!(v.get("error").is_none(), "{v}");
        fired += v["fired"].as_u64().context("fired")?;
        pages += 1;
        cursor = v["cursor"].clone();
        if cursor.is_null() {
            assert_eq!(v["position"], v["total"], "{v}");
            return Ok((fired, pages));
        }
    }
}

#[tokio::test]
async fn replay_fires_stored_signals_once() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let p = router.admin_prefix().to_string();
    for i in 0..8 {
        let body = json!({"id": format!("s{i}"), "params": {"n": i}}).to_string();
        publish_signal(&client, "metric", &body).await?;
    }
    // Subscribed after the fact: only a replay brings the history in.
    router
        .add_subscription(
            &client,
            "id: evens\nsignal: metric\nwhere: {n: [0, 2, 4, 6]}\naction: {publish: {subject: out.evens}}\nparams: {n: '{n}'}",
        )
        .await?;
    // One more, live: it fires now, and the replay must not fire it again.
    let mut out = client.subscribe("out.evens").await?;
    client.flush().await?;
    publish_signal(
        &client,
        "metric",
        &json!({"id": "s8", "params": {"n": 6}}).to_string(),
    )
    .await?;
    next_message(&mut out, WAIT).await?;

    let (fired, pages) = replay_all(&client, &p, "evens").await?;
    assert_eq!(fired, 4, "n = 0, 2, 4, 6 of the history");
    assert!(pages >= 3, "paged: {pages}");
    let seen = signalbox_testkit::first_input_ids(&mut out, 4).await?;
    assert_eq!(seen, vec!["s0", "s2", "s4", "s6"]);
    let (again, _) = replay_all(&client, &p, "evens").await?;
    assert_eq!(again, 0, "a second replay fires nothing");
    expect_silence(&mut out, Duration::from_millis(300)).await?;

    let missing = admin(&client, &p, "replay", r#"{"sub": "nope"}"#).await?;
    assert_eq!(missing["error"]["code"], "not_found", "{missing}");
    let bad = admin(
        &client,
        &p,
        "replay",
        r#"{"sub": "evens", "since": "later"}"#,
    )
    .await?;
    assert_eq!(bad["error"]["field"], "since", "{bad}");
    Ok(())
}

#[tokio::test]
async fn replay_joins_stored_signals_in_their_own_scope() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    for (name, body) in [
        (
            "table_updated",
            json!({"id": "t1", "params": {"partition": 1}}),
        ),
        (
            "table_updated",
            json!({"id": "t2", "params": {"partition": 2}}),
        ),
        (
            "model_published",
            json!({"id": "m2", "params": {"date": 2}}),
        ),
        (
            "model_published",
            json!({"id": "m3", "params": {"date": 3}}),
        ),
    ] {
        publish_signal(&client, name, &body.to_string()).await?;
    }
    router
        .add_subscription(
            &client,
            "id: train\nsignals: [{name: table_updated, as: t}, {name: model_published, as: m}]\njoin: {on: [t.partition, m.date]}\naction: {trigger: {subject: runs.train}}",
        )
        .await?;
    let mut runs = client.subscribe("runs.train").await?;
    client.flush().await?;
    let (fired, _) = replay_all(&client, router.admin_prefix(), "train").await?;
    assert_eq!(fired, 1, "only partition 2 has both sides");
    let msg = next_message(&mut runs, WAIT).await?;
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["signals"][0]["id"], "t2");
    assert_eq!(body["signals"][1]["id"], "m2");
    // The replay did not leave live partial state: a live m1 does not join the replayed t1.
    publish_signal(
        &client,
        "model_published",
        &json!({"id": "m1", "params": {"date": 1}}).to_string(),
    )
    .await?;
    expect_silence(&mut runs, Duration::from_millis(300)).await
}
