//! Lineage queries and the graph export against a real router: producer →
//! signal → subscription → firing → target, join sides that matched without
//! firing, and the wait a signal satisfied.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{TestNats, TestRouter, WAIT, admin, init_logs, publish_signal};

const SINGLE: &str = r#"
id: big-tables
signal: table_updated
where: {rows: [{numeric: [">", 100]}]}
action: {trigger: {subject: runs.big}}
"#;

const JOIN: &str = r#"
id: train
signals:
  - {name: table_updated, as: t}
  - {name: model_published, as: m}
join: {on: [t.partition, m.date]}
action: {trigger: {subject: runs.train}}
"#;

async fn delivered(client: &async_nats::Client, prefix: &str, firing: &str) -> Result<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let f = admin(client, prefix, "lineage.firing", firing).await?;
        if f["state"] == "delivered" {
            return Ok(f);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "firing never delivered: {f}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lineage_answers_who_produced_what_and_what_it_fed() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let p = router.admin_prefix().to_string();
    router.add_subscription(&client, SINGLE).await?;
    router.add_subscription(&client, JOIN).await?;
    let reply = client
        .request(
            "signalbox.wait",
            json!({"id": "etl/1/report", "signal": "table_updated", "consumer": {"step": "report"}})
                .to_string()
                .into(),
        )
        .await?;
    let _: Value = serde_json::from_slice(&reply.payload)?;

    let body = json!({"id": "load-1", "params": {"rows": 500, "partition": 7},
                      "producer": {"workflow": "etl", "run": "42", "step": "load"}});
    let ack = publish_signal(&client, "table_updated", &body.to_string()).await?;
    assert_eq!(ack["matched"], json!(["big-tables", "train"]), "{ack}");

    let l = admin(&client, &p, "lineage.signal", "table_updated:1").await?;
    assert_eq!(l["producer"]["workflow"], "etl", "{l}");
    assert_eq!(l["origin"]["transport"], "nats");
    assert_eq!(l["origin"]["address"], "signals.table_updated");
    assert_eq!(
        l["matched"],
        json!(["big-tables", "train"]),
        "join side matched, not fired"
    );
    let firings = l["firings"].as_array().context("firings")?;
    assert_eq!(
        firings.len(),
        2,
        "the subscription's firing and the wait's answer: {l}"
    );
    assert_eq!(l["waits"], json!(["etl/1/report"]));
    let fid = firings
        .iter()
        .find(|f| f["subscription"] == "big-tables")
        .and_then(|f| f["firing_id"].as_str())
        .context("big-tables firing")?
        .to_string();

    let f = delivered(&client, &p, &fid).await?;
    assert_eq!(f["target"], "runs.big");
    assert_eq!(f["inputs"][0]["id"], "load-1");
    assert_eq!(f["attempts"], 1);

    let s = admin(&client, &p, "lineage.sub", "big-tables").await?;
    assert_eq!(s["firings"][0]["firing_id"], fid.as_str(), "{s}");

    let w = admin(&client, &p, "lineage.wait", "etl/1/report").await?;
    assert_eq!(w["consumer"]["step"], "report", "{w}");
    assert_eq!(w["state"]["signals"][0]["seq"], 1);

    // The graph: producer -> signal -> subscription -> firing -> target.
    let g = admin(
        &client,
        &p,
        "lineage.export",
        r#"{"signal": "table_updated:1"}"#,
    )
    .await?;
    let edges: Vec<(String, String, String)> = g["edges"]
        .as_array()
        .context("edges")?
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or_default().to_string(),
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["to"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let has = |from: &str, kind: &str, to: &str| {
        edges
            .iter()
            .any(|(f, k, t)| f == from && k == kind && t == to)
    };
    assert!(
        has("producer:etl/42/load", "produced", "signal:table_updated:1"),
        "{edges:?}"
    );
    assert!(has(
        "signal:table_updated:1",
        "matched",
        "subscription:big-tables"
    ));
    assert!(has(
        "signal:table_updated:1",
        "matched",
        "subscription:train"
    ));
    assert!(has(
        "subscription:big-tables",
        "fired",
        &format!("firing:{fid}")
    ));
    assert!(has(
        "signal:table_updated:1",
        "fed",
        &format!("firing:{fid}")
    ));
    assert!(has(
        &format!("firing:{fid}"),
        "delivered_to",
        "target:runs.big"
    ));
    assert!(has(
        "signal:table_updated:1",
        "satisfied",
        "wait:etl/1/report"
    ));

    let dot = admin(&client, &p, "lineage.export", r#"{"format": "dot"}"#).await?;
    let text = dot["dot"].as_str().context("dot text")?;
    assert!(text.starts_with("digraph lineage {"), "{text}");
    assert!(
        text.contains("\"subscription:big-tables\" -> \"firing:"),
        "{text}"
    );

    let bad = admin(&client, &p, "lineage.export", r#"{"since": "yesterday"}"#).await?;
    assert_eq!(bad["error"]["field"], "since", "{bad}");
    Ok(())
}

#[tokio::test]
async fn signals_search_by_name_and_params_newest_first() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let p = router.admin_prefix().to_string();
    router.add_subscription(&client, SINGLE).await?;
    for (name, id, params) in [
        (
            "table_updated",
            "a",
            json!({"table": "prod.events", "rows": 500}),
        ),
        (
            "table_updated",
            "b",
            json!({"table": "prod.users", "rows": 5}),
        ),
        (
            "model_published",
            "m",
            json!({"table": "prod.events", "date": 7}),
        ),
        (
            "table_updated",
            "c",
            json!({"table": "prod.events", "rows": 50}),
        ),
    ] {
        let body = json!({"id": id, "params": params});
        publish_signal(&client, name, &body.to_string()).await?;
    }
    let ids = |v: &Value| -> Vec<String> {
        v["signals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["signal"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };

    let found = admin(
        &client,
        &p,
        "signals.search",
        &json!({"name": "table_updated", "where": {"table": ["prod.events"]}}).to_string(),
    )
    .await?;
    assert_eq!(
        ids(&found),
        ["table_updated:3", "table_updated:1"],
        "{found}"
    );
    assert_eq!(found["signals"][1]["matched"], json!(["big-tables"]));
    assert_eq!(
        found["signals"][1]["firings"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(found["signals"][1]["id"], "a");

    // The pattern as JSON text (as the HTTP query string carries it), every name.
    let found = admin(
        &client,
        &p,
        "signals.search",
        &json!({"where": r#"{"table": ["prod.events"]}"#, "limit": 2}).to_string(),
    )
    .await?;
    assert_eq!(
        ids(&found),
        ["table_updated:3", "model_published:1"],
        "{found}"
    );
    let all = admin(&client, &p, "signals.search", "").await?;
    assert_eq!(all["signals"].as_array().map(Vec::len), Some(4), "{all}");
    assert_eq!(all["scanned"], 4);

    let bad = admin(
        &client,
        &p,
        "signals.search",
        &json!({"where": {"rows": [{"numeric": ["~", 1]}]}}).to_string(),
    )
    .await?;
    assert_eq!(bad["error"]["code"], "invalid", "{bad}");
    assert_eq!(bad["error"]["field"], "where", "{bad}");
    Ok(())
}
