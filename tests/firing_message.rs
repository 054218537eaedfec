//! The firing message as a consumer that is not signalbox sees it: a Python
//! program with the official NATS client (`tests/clients/firing_consumer.py`,
//! nats-py) receives the firing and we check what it printed. By default a
//! firing carries each consumed signal's name, id, seq, params and payload; a
//! subscription's `carry` narrows that to params or to the bare reference.

use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{TestNats, TestRouter, init_logs, publish_signal};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A subscription without a `params` template, with `carry` as given.
fn subscription(id: &str, subject: &str, carry: Option<&str>) -> String {
    let carry = carry.map(|c| format!("carry: {c}\n")).unwrap_or_default();
    format!(
        "id: {id}\nsignal: table_updated\nwhere: {{table: [\"prod.events\"]}}\naction: {{publish: {{subject: {subject}}}}}\n{carry}"
    )
}

/// Starts the Python consumer on `subject`, waits until it is subscribed.
async fn python_consumer(
    nats: &TestNats,
    subject: &str,
) -> Result<(
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/firing_consumer.py"
    );
    let mut child = tokio::process::Command::new("python3")
        .args([script, &nats.url(), subject, "1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("python3 with nats-py (scripts/setup.sh --test installs it)")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .context("the Python consumer did not start")??;
    ensure!(first.as_deref() == Some("ready"), "consumer said {first:?}");
    Ok((child, lines))
}

/// The one message the consumer printed.
async fn received(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> Result<Value> {
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .context("no firing reached the Python consumer")??
        .context("the consumer ended without a message")?;
    Ok(serde_json::from_str(&line)?)
}

fn table_signal(id: &str) -> String {
    json!({
        "name": "table_updated", "id": id,
        "params": {"table": "prod.events", "partition": 20261126, "rows": 1200000},
        "payload": {"location": "s3://bucket/events/20261126/"}
    })
    .to_string()
}

#[tokio::test]
async fn a_firing_carries_the_consumed_signal_with_params_and_payload() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    router
        .add_subscription(&client, &subscription("tables", "runs.tables", None))
        .await?;
    let (_child, mut lines) = python_consumer(&nats, "runs.tables").await?;
    let ack = publish_signal(&client, "table_updated", &table_signal("load-1")).await?;
    assert_eq!(ack["seq"], 1, "{ack}");
    let got = received(&mut lines).await?;
    let body = &got["body"];
    assert_eq!(got["subject"], "runs.tables");
    assert_eq!(got["headers"]["Nats-Msg-Id"], body["firing_id"], "{got}");
    assert_eq!(got["headers"]["Signalbox-Subscription"], "tables", "{got}");
    assert_eq!(body["subscription"], "tables");
    assert_eq!(body["params"], json!({}), "no template: empty params");
    assert!(
        body.get("payloads").is_none(),
        "no top-level payloads: {body}"
    );
    assert_eq!(
        body["signals"],
        json!([{
            "as": "table_updated", "name": "table_updated", "id": "load-1", "seq": 1,
            "params": {"table": "prod.events", "partition": 20261126, "rows": 1200000},
            "payload": {"location": "s3://bucket/events/20261126/"}
        }]),
        "{body}"
    );
    let id = body["firing_id"].as_str().context("firing_id")?;
    ensure!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    Ok(())
}

#[tokio::test]
async fn carry_narrows_what_each_consumed_signal_carries() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    router
        .add_subscription(&client, &subscription("refs", "runs.refs", Some("refs")))
        .await?;
    router
        .add_subscription(
            &client,
            &subscription("params", "runs.params", Some("params")),
        )
        .await?;
    let (_refs_child, mut refs) = python_consumer(&nats, "runs.refs").await?;
    let (_params_child, mut params) = python_consumer(&nats, "runs.params").await?;
    publish_signal(&client, "table_updated", &table_signal("load-2")).await?;
    let refs = received(&mut refs).await?;
    assert_eq!(
        refs["body"]["signals"],
        json!([{"as": "table_updated", "name": "table_updated", "id": "load-2", "seq": 1}]),
        "{refs}"
    );
    let params = received(&mut params).await?;
    let signal = &params["body"]["signals"][0];
    assert_eq!(signal["params"]["table"], "prod.events", "{params}");
    assert!(
        signal.get("payload").is_none(),
        "carry: params drops the payload: {params}"
    );
    // The stored subscription says what it carries.
    let shown =
        signalbox_testkit::admin(&client, router.admin_prefix(), "sub.show", "refs").await?;
    assert_eq!(shown["subscription"]["carry"], "refs", "{shown}");
    Ok(())
}
