//! Waits (step dependencies) end to end against a real nats-server and redb:
//! satisfied by a later signal, by a stored one, idempotent by id, timed out,
//! cancelled, joined across a stored and an arriving signal, and answered once.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, admin, expect_silence, init_logs, next_message, publish_signal,
};

async fn setup() -> Result<(TestNats, TestRouter, async_nats::Client)> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    Ok((nats, router, client))
}

async fn register(client: &async_nats::Client, doc: Value) -> Result<Value> {
    let reply = tokio::time::timeout(
        WAIT,
        client.request("signalbox.wait", doc.to_string().into()),
    )
    .await
    .context("no reply to the wait registration")??;
    let v: Value = serde_json::from_slice(&reply.payload)?;
    Ok(v)
}

fn state(reply: &Value) -> &str {
    reply["wait"]["state"]["state"].as_str().unwrap_or_default()
}

fn table(id: &str, partition: i64) -> String {
    json!({"id": id, "params": {"table": "prod.events", "partition": partition}}).to_string()
}

#[tokio::test]
async fn a_wait_is_satisfied_by_a_signal_that_arrives_after_it() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let mut answers = client.subscribe("signalbox.waits.>").await?;
    client.flush().await?;
    let reply = register(
        &client,
        json!({"id": "etl/1/train", "signal": "table_updated",
               "where": {"partition": [{"numeric": [">=", 20261126]}]},
               "consumer": {"workflow": "etl", "run": "1", "step": "train"}}),
    )
    .await?;
    assert_eq!(state(&reply), "waiting", "{reply}");
    publish_signal(&client, "table_updated", &table("old-partition", 20261120)).await?;
    expect_silence(&mut answers, Duration::from_millis(300)).await?;
    publish_signal(&client, "table_updated", &table("new-partition", 20261126)).await?;
    let answer = next_message(&mut answers, WAIT).await?;
    assert_eq!(answer.subject.as_str(), "signalbox.waits.etl/1/train");
    let body: Value = serde_json::from_slice(&answer.payload)?;
    assert_eq!(body["params"]["state"], "satisfied");
    assert_eq!(body["params"]["table_updated"]["partition"], 20261126);
    assert_eq!(body["signals"][0]["id"], "new-partition");
    // Answered exactly once: a further matching signal does not answer again.
    publish_signal(&client, "table_updated", &table("later", 20261127)).await?;
    expect_silence(&mut answers, Duration::from_millis(400)).await?;
    let shown = admin(&client, router.admin_prefix(), "wait.show", "etl/1/train").await?;
    assert_eq!(shown["wait"]["state"]["signals"][0]["seq"], 2, "{shown}");
    assert_eq!(shown["wait"]["wait"]["consumer"]["step"], "train");
    Ok(())
}

#[tokio::test]
async fn a_wait_is_satisfied_at_once_by_a_stored_signal_and_retries_get_the_same_answer()
-> Result<()> {
    let (_nats, _router, client) = setup().await?;
    publish_signal(&client, "table_updated", &table("first", 5)).await?;
    publish_signal(&client, "table_updated", &table("second", 5)).await?;
    let doc = json!({"id": "etl/2/load", "signal": "table_updated", "where": {"partition": [5]}});
    let reply = register(&client, doc.clone()).await?;
    assert_eq!(state(&reply), "satisfied", "{reply}");
    assert_eq!(
        reply["wait"]["state"]["signals"][0]["id"], "first",
        "earliest stored"
    );
    // A retried step registers the same id: same answer, no second wait.
    publish_signal(&client, "table_updated", &table("third", 5)).await?;
    let again = register(&client, doc).await?;
    assert_eq!(again["wait"], reply["wait"], "same record");
    Ok(())
}

#[tokio::test]
async fn lookback_none_and_within_limit_what_counts() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    publish_signal(&client, "table_updated", &table("stored", 1)).await?;
    let none = register(
        &client,
        json!({"id": "w-none", "signal": "table_updated", "lookback": "none"}),
    )
    .await?;
    assert_eq!(state(&none), "waiting", "{none}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let within = register(
        &client,
        json!({"id": "w-within", "signal": "table_updated", "lookback": {"within": "1s"}}),
    )
    .await?;
    assert_eq!(
        state(&within),
        "waiting",
        "the stored signal is older than 1s: {within}"
    );
    Ok(())
}

#[tokio::test]
async fn timeouts_and_cancels_answer_the_waiter() -> Result<()> {
    let (_nats, router, client) = setup().await?;
    let mut answers = client.subscribe("signalbox.waits.>").await?;
    client.flush().await?;
    let reply = register(
        &client,
        json!({"id": "short", "signal": "never_sent", "timeout": "300ms"}),
    )
    .await?;
    assert_eq!(state(&reply), "waiting");
    let answer = next_message(&mut answers, WAIT).await?;
    let body: Value = serde_json::from_slice(&answer.payload)?;
    assert_eq!(body["params"]["state"], "timed_out", "{body}");

    register(&client, json!({"id": "to-cancel", "signal": "never_sent"})).await?;
    let cancelled = admin(&client, router.admin_prefix(), "wait.cancel", "to-cancel").await?;
    assert_eq!(
        cancelled["wait"]["state"]["state"], "cancelled",
        "{cancelled}"
    );
    let answer = next_message(&mut answers, WAIT).await?;
    assert_eq!(answer.subject.as_str(), "signalbox.waits.to-cancel");
    // A signal after the cancel does not revive it.
    publish_signal(&client, "never_sent", "{}").await?;
    expect_silence(&mut answers, Duration::from_millis(300)).await
}

#[tokio::test]
async fn a_joined_wait_completes_across_a_stored_and_an_arriving_signal() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    let mut answers = client.subscribe("signalbox.waits.>").await?;
    client.flush().await?;
    publish_signal(&client, "table_updated", &table("t", 42)).await?;
    let reply = register(
        &client,
        json!({"id": "both", "signals": [
                 {"name": "table_updated", "as": "t"},
                 {"name": "model_published", "as": "m"}],
               "join": {"on": ["t.partition", "m.date"]}}),
    )
    .await?;
    assert_eq!(state(&reply), "waiting", "{reply}");
    publish_signal(
        &client,
        "model_published",
        &json!({"params": {"date": 41}}).to_string(),
    )
    .await?;
    expect_silence(&mut answers, Duration::from_millis(300)).await?;
    publish_signal(
        &client,
        "model_published",
        &json!({"params": {"date": 42}}).to_string(),
    )
    .await?;
    let answer = next_message(&mut answers, WAIT).await?;
    let body: Value = serde_json::from_slice(&answer.payload)?;
    assert_eq!(body["signals"][0]["id"], "t", "{body}");
    assert_eq!(body["signals"][1]["seq"], 2, "{body}");
    Ok(())
}

#[tokio::test]
async fn bad_wait_documents_are_rejected_with_the_field() -> Result<()> {
    let (_nats, _router, client) = setup().await?;
    for (doc, field) in [
        (json!({"signal": "x"}), "id"),
        (
            json!({"id": "a", "signal": "x", "timeout": "soon"}),
            "timeout",
        ),
        (
            json!({"id": "a", "signal": "x", "where": {"n": [{"numeric": ["=>", 1]}]}}),
            "where.n",
        ),
        (json!({"id": "a", "signal": "x", "then": 1}), "then"),
    ] {
        let reply = register(&client, doc.clone()).await?;
        let got = reply["error"]["field"].as_str().unwrap_or_default();
        assert!(got.starts_with(field), "{doc}: {reply}");
    }
    Ok(())
}
