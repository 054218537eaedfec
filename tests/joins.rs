//! Joins of several signals, end to end against a real nats-server and redb:
//! out-of-order and duplicate arrival, the earliest instance first, window
//! expiry, two subscriptions on the same key, one signal feeding two joins, and
//! a new version dropping the old partial state.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, admin, expect_silence, init_logs, next_message, publish_signal,
};

const TRAIN: &str = r#"
id: train
signals:
  - {name: table_updated, as: t, where: {table: ["prod.events"]}}
  - {name: model_published, as: m, where: {model: ["ranker"]}}
join: {on: [t.partition, m.date], within: 1h}
action: {trigger: {subject: runs.train}}
params: {date: "{t.partition}", model: "{m.model}", location: "{t.payload.location}"}
"#;

fn table(id: &str, partition: i64) -> String {
    json!({"id": id, "params": {"table": "prod.events", "partition": partition},
           "payload": {"location": format!("s3://b/{partition}")}})
    .to_string()
}

fn model(id: &str, date: f64) -> String {
    json!({"id": id, "params": {"model": "ranker", "date": date}}).to_string()
}

async fn setup(
    subs: &[&str],
) -> Result<(
    TestNats,
    TestRouter,
    async_nats::Client,
    async_nats::Subscriber,
)> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    for s in subs {
        router.add_subscription(&client, s).await?;
    }
    let firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    Ok((nats, router, client, firings))
}

fn inputs(msg: &async_nats::Message) -> Result<Vec<(String, u64)>> {
    let body: Value = serde_json::from_slice(&msg.payload)?;
    body["signals"]
        .as_array()
        .context("signals")?
        .iter()
        .map(|s| {
            Ok((
                s["id"].as_str().context("id")?.to_string(),
                s["seq"].as_u64().context("seq")?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn join_fires_once_whatever_the_arrival_order() -> Result<()> {
    let (_nats, _router, client, mut firings) = setup(&[TRAIN]).await?;
    // Model first (out of order), then the table: one firing with both.
    let ack = publish_signal(&client, "model_published", &model("m1", 20261126.0)).await?;
    assert_eq!(ack["matched"], json!(["train"]), "{ack}");
    expect_silence(&mut firings, Duration::from_millis(300)).await?;
    publish_signal(&client, "table_updated", &table("t1", 20261126)).await?;
    let msg = next_message(&mut firings, WAIT).await?;
    assert_eq!(msg.subject.as_str(), "runs.train");
    assert_eq!(inputs(&msg)?, vec![("t1".into(), 1), ("m1".into(), 1)]);
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["params"]["date"], 20261126);
    assert_eq!(body["params"]["model"], "ranker");
    assert_eq!(body["params"]["location"], "s3://b/20261126");

    // A duplicate arrival of either side does nothing more.
    let dup = publish_signal(&client, "table_updated", &table("t1", 20261126)).await?;
    assert_eq!(dup["duplicate"], true);
    publish_signal(&client, "model_published", &model("m1", 20261126.0)).await?;
    expect_silence(&mut firings, Duration::from_millis(400)).await
}

#[tokio::test]
async fn earliest_unconsumed_instance_is_taken_and_each_is_used_once() -> Result<()> {
    let (_nats, router, client, mut firings) = setup(&[TRAIN]).await?;
    publish_signal(&client, "table_updated", &table("t1", 7)).await?;
    publish_signal(&client, "table_updated", &table("t2", 7)).await?;
    publish_signal(&client, "table_updated", &table("other-key", 8)).await?;
    publish_signal(&client, "model_published", &model("m1", 7.0)).await?;
    let first = next_message(&mut firings, WAIT).await?;
    assert_eq!(inputs(&first)?, vec![("t1".into(), 1), ("m1".into(), 1)]);
    publish_signal(&client, "model_published", &model("m2", 7.0)).await?;
    let second = next_message(&mut firings, WAIT).await?;
    assert_eq!(inputs(&second)?, vec![("t2".into(), 2), ("m2".into(), 2)]);
    // A third model has no table left for key 7: it waits, and explain says so.
    publish_signal(&client, "model_published", &model("m3", 7.0)).await?;
    expect_silence(&mut firings, Duration::from_millis(300)).await?;
    let why = admin(
        &client,
        router.admin_prefix(),
        "explain",
        r#"{"sub": "train", "signal": "model_published:3"}"#,
    )
    .await?;
    assert_eq!(why["matches"], true, "{why}");
    assert_eq!(why["join"]["key"], "[7]", "{why}");
    assert_eq!(why["join"]["missing"], json!(["t"]), "{why}");
    let verdict = why["verdict"].as_str().unwrap_or_default();
    assert!(verdict.contains("still missing t"), "{verdict}");
    Ok(())
}

#[tokio::test]
async fn a_partial_join_expires_after_its_window() -> Result<()> {
    let short = TRAIN.replace("within: 1h", "within: 1s");
    let (_nats, _router, client, mut firings) = setup(&[&short]).await?;
    publish_signal(&client, "table_updated", &table("old", 3)).await?;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    publish_signal(&client, "model_published", &model("m1", 3.0)).await?;
    expect_silence(&mut firings, Duration::from_millis(300)).await?;
    // A fresh table joins with the waiting model; the expired one never does.
    publish_signal(&client, "table_updated", &table("new", 3)).await?;
    let msg = next_message(&mut firings, WAIT).await?;
    assert_eq!(inputs(&msg)?, vec![("new".into(), 2), ("m1".into(), 1)]);
    Ok(())
}

#[tokio::test]
async fn two_subscriptions_on_the_same_key_and_one_signal_feeding_both() -> Result<()> {
    let other = TRAIN
        .replace("id: train", "id: evaluate")
        .replace("runs.train", "runs.evaluate");
    let (_nats, _router, client, mut firings) = setup(&[TRAIN, &other]).await?;
    publish_signal(&client, "table_updated", &table("t", 5)).await?;
    let ack = publish_signal(&client, "model_published", &model("m", 5.0)).await?;
    assert_eq!(ack["matched"], json!(["evaluate", "train"]), "{ack}");
    let mut subjects = vec![
        next_message(&mut firings, WAIT).await?.subject.to_string(),
        next_message(&mut firings, WAIT).await?.subject.to_string(),
    ];
    subjects.sort();
    assert_eq!(subjects, vec!["runs.evaluate", "runs.train"]);
    expect_silence(&mut firings, Duration::from_millis(300)).await
}

#[tokio::test]
async fn a_new_version_drops_the_old_partial_state() -> Result<()> {
    let (_nats, router, client, mut firings) = setup(&[TRAIN]).await?;
    publish_signal(&client, "table_updated", &table("t-old", 9)).await?;
    let changed = TRAIN.replace("runs.train", "runs.train-v2");
    let reply = router.add_subscription(&client, &changed).await?;
    assert_eq!(reply["outcome"], "updated");
    assert_eq!(reply["subscription"]["version"], 2);
    // The drop is visible in lineage: which partial joins of version 1 went.
    let l = admin(&client, router.admin_prefix(), "lineage.sub", "train").await?;
    assert_eq!(l["versions"], json!([1, 2]), "{l}");
    assert_eq!(l["dropped_partial_joins"][0]["new_version"], 2, "{l}");
    assert_eq!(
        l["dropped_partial_joins"][0]["dropped"][0]["name"],
        "table_updated"
    );
    assert_eq!(l["dropped_partial_joins"][0]["dropped"][0]["version"], 1);
    // The model finds no table of version 2: nothing fires.
    publish_signal(&client, "model_published", &model("m", 9.0)).await?;
    expect_silence(&mut firings, Duration::from_millis(400)).await?;
    publish_signal(&client, "table_updated", &table("t-new", 9)).await?;
    let msg = next_message(&mut firings, WAIT).await?;
    assert_eq!(msg.subject.as_str(), "runs.train-v2");
    assert_eq!(inputs(&msg)?, vec![("t-new".into(), 2), ("m".into(), 1)]);
    Ok(())
}

#[tokio::test]
async fn join_state_survives_a_restart() -> Result<()> {
    let (nats, mut router, client, _firings) = setup(&[TRAIN]).await?;
    publish_signal(&client, "table_updated", &table("t", 11)).await?;
    router.restart().await?;
    let client = nats.client().await?;
    let mut firings = client.subscribe("runs.>").await?;
    client.flush().await?;
    publish_signal(&client, "model_published", &model("m", 11.0)).await?;
    let msg = next_message(&mut firings, WAIT).await?;
    assert_eq!(inputs(&msg)?, vec![("t".into(), 1), ("m".into(), 1)]);
    Ok(())
}

#[tokio::test]
async fn a_dedup_template_allows_one_firing_per_value() -> Result<()> {
    let per_day = r#"
id: daily
signal: table_updated
action: {trigger: {subject: runs.daily}}
params: {day: "{partition}"}
dedup: "{partition}"
"#;
    let (_nats, _router, client, mut firings) = setup(&[per_day]).await?;
    publish_signal(&client, "table_updated", &table("a", 1)).await?;
    publish_signal(&client, "table_updated", &table("b", 1)).await?;
    publish_signal(&client, "table_updated", &table("c", 2)).await?;
    let first = next_message(&mut firings, WAIT).await?;
    let second = next_message(&mut firings, WAIT).await?;
    assert_eq!(inputs(&first)?, vec![("a".into(), 1)]);
    assert_eq!(inputs(&second)?, vec![("c".into(), 3)]);
    let body: Value = serde_json::from_slice(&second.payload)?;
    assert_eq!(body["params"]["day"], 2);
    expect_silence(&mut firings, Duration::from_millis(300)).await
}
