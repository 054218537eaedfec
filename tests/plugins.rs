//! WebAssembly plugins in the running router, built from `plugins/`: the Rust
//! `semver` operator in a subscription's pattern, and the `webhook-json` source
//! adapter behind `POST /ingest/<name>`, end to end through a real nats-server.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
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
