//! WebAssembly plugins in the running router, built from `plugins/`: the Rust
//! `semver` operator in a subscription's pattern, and the `webhook-json` source
//! adapter behind `POST /ingest/<name>`, end to end through a real nats-server;
//! and the hostile operator's traps and quarantine counted in `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use signalbox_router::PluginEntry;
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, admin, expect_silence, http_request, init_logs, next_message,
    plugin_component, publish_signal,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_operator_and_webhook_adapter_route_signals() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = TestRouter::config(&nats.url(), dir.path());
    config.plugins.operators.push(PluginEntry {
        name: "semver".into(),
        file: plugin_component("operator_semver")?,
        settings: BTreeMap::new(),
    });
    config.plugins.adapters.push(PluginEntry {
        name: "deploys".into(),
        file: plugin_component("adapter_webhook_json")?,
        settings: BTreeMap::from([
            ("name".to_string(), "model_published".to_string()),
            ("id-pointer".to_string(), "/delivery".to_string()),
            (
                "params".to_string(),
                r#"{"model": "/model", "version": "/version"}"#.to_string(),
            ),
        ]),
    });
    config.http.listen = Some("127.0.0.1:0".into());
    let router = TestRouter::start_with(config).await?;
    let addr = router.router().http_addr().expect("HTTP on");
    let client = nats.client().await?;

    // A subscription with the Wasm operator; an unknown operator is refused
    // with the list of the ones that exist.
    router
        .add_subscription(
            &client,
            "id: new-ranker\nsignal: model_published\nwhere: {model: [ranker], version: [{semver: '>=2.1.0 <3'}]}\naction: {trigger: {subject: runs.rank}}",
        )
        .await?;
    let refused = admin(
        &client,
        router.admin_prefix(),
        "sub.add",
        "id: x\nsignal: model_published\nwhere: {version: [{calver: '2026'}]}\naction: {trigger: {subject: runs.x}}",
    )
    .await?;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("calver") && message.contains("semver"),
        "{refused}"
    );

    let mut runs = client.subscribe("runs.rank").await?;
    client.flush().await?;
    for (id, version) in [("a", "2.0.9"), ("b", "2.4.1"), ("c", "3.0.0")] {
        let body = json!({"id": id, "params": {"model": "ranker", "version": version}});
        publish_signal(&client, "model_published", &body.to_string()).await?;
    }
    let msg = next_message(&mut runs, WAIT).await?;
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["signals"][0]["id"], "b", "only 2.4.1 is in range");
    expect_silence(&mut runs, Duration::from_millis(300)).await?;

    // The webhook adapter: a JSON POST becomes a signal and fires.
    let hook = json!({"delivery": "d-1", "model": "ranker", "version": "2.2.0"}).to_string();
    let (status, reply) = http_request(addr, "POST", "/ingest/deploys", &[], &hook).await?;
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply)?;
    assert_eq!(v["signals"][0]["id"], "d-1", "{v}");
    assert_eq!(v["signals"][0]["matched"], json!(["new-ranker"]));
    let msg = next_message(&mut runs, WAIT).await?;
    let body: Value = serde_json::from_slice(&msg.payload)?;
    assert_eq!(body["signals"][0]["id"], "d-1");
    let lineage = admin(
        &client,
        router.admin_prefix(),
        "lineage.signal",
        "model_published:4",
    )
    .await?;
    assert_eq!(lineage["origin"]["adapter"], "deploys", "{lineage}");

    // Bad input: rejected by the adapter (422), unknown adapter (404); good
    // requests behind them still flow.
    let (status, reply) = http_request(addr, "POST", "/ingest/deploys", &[], "not json").await?;
    assert_eq!(status, 422, "{reply}");
    let (status, _) = http_request(addr, "POST", "/ingest/nope", &[], "{}").await?;
    assert_eq!(status, 404);
    let again = json!({"delivery": "d-2", "model": "ranker", "version": "2.9.0"}).to_string();
    let (status, _) = http_request(addr, "POST", "/ingest/deploys", &[], &again).await?;
    assert_eq!(status, 200);
    next_message(&mut runs, WAIT).await?;
    Ok(())
}

/// The value of the `/metrics` line that starts with `prefix` (labels included).
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_traps_and_quarantine_show_in_metrics() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = TestRouter::config(&nats.url(), dir.path());
    config.plugins.operators.push(PluginEntry {
        name: "hostile".into(),
        file: plugin_component("hostile_operator")?,
        settings: BTreeMap::new(),
    });
    config.http.listen = Some("127.0.0.1:0".into());
    // The case counts traps: a deadline a loaded machine cannot miss, so
    // that no call is counted as a timeout instead.
    config.plugins.operator_deadline = std::time::Duration::from_secs(5);
    let router = TestRouter::start_with(config).await?;
    let addr = router.router().http_addr().expect("HTTP on");
    let client = nats.client().await?;
    router
        .add_subscription(
            &client,
            "id: trapped\nsignal: t\nwhere: {v: [{hostile: trap}]}\naction: {trigger: {subject: runs.trapped}}",
        )
        .await?;
    let labels = "plugin=\"hostile\",world=\"operator\"";
    let scrape = || async {
        let (status, text) = http_request(addr, "GET", "/metrics", &[], "").await?;
        anyhow::ensure!(status == 200, "/metrics: {status}");
        Ok::<_, anyhow::Error>(text)
    };
    let calls = format!("signalbox_plugin_calls_total{{{labels}}} ");
    let failures =
        |kind: &str| format!("signalbox_plugin_call_failures_total{{{labels},kind=\"{kind}\"}} ");
    let quarantines = format!("signalbox_plugin_quarantines_total{{{labels}}} ");
    let quarantined = format!("signalbox_plugin_quarantined{{{labels}}} ");

    let before = scrape().await?;
    let calls_before = metric(&before, &calls).context("plugin calls row")?;
    for (name, want) in [
        (failures("trap"), 0),
        (failures("timeout"), 0),
        (failures("oom"), 0),
        (failures("quarantined"), 0),
        (quarantines.clone(), 0),
        (quarantined.clone(), 0),
    ] {
        assert_eq!(metric(&before, &name), Some(want), "{name}\n{before}");
    }

    // Every test call traps: the fifth failure in a row (the default
    // quarantine_after) quarantines the plugin, the sixth call is refused.
    for i in 0..6 {
        let body = json!({"id": format!("s{i}"), "params": {"v": i}});
        let ack = publish_signal(&client, "t", &body.to_string()).await?;
        assert_eq!(ack["matched"], json!([]), "a trap is no match: {ack}");
    }
    let after = scrape().await?;
    let want = [
        (calls.clone(), calls_before + 6),
        (failures("trap"), 5),
        (failures("timeout"), 0),
        (failures("oom"), 0),
        (failures("quarantined"), 1),
        (quarantines, 1),
        (quarantined, 1),
        (
            "signalbox_signals_received_total{transport=\"nats\"} ".into(),
            6,
        ),
        (
            "signalbox_signals_received_total{transport=\"sns\"} ".into(),
            0,
        ),
        (
            "signalbox_signals_received_total{transport=\"kafka\"} ".into(),
            0,
        ),
    ];
    for (name, want) in want {
        assert_eq!(metric(&after, &name), Some(want), "{name}\n{after}");
    }
    Ok(())
}
