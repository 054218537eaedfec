//! Deploying plugins into a running router (`plugin.*` admin verbs), with real
//! components built from `plugins/`, a real nats-server and redb: deploy,
//! re-prepare, roll back and remove an operator while signals flow; swap a
//! webhook adapter; survive a restart; refuse bad components.
//!
//! The operator cases deploy two different components under one name, `ver`:
//! version 1 is the `semver` operator, version 2 the `regex` operator. A
//! pattern argument that both accept (`">=2.1.0"`) changes meaning visibly
//! when re-prepared; one only semver accepts (`"*"`) cannot be re-prepared
//! with regex and must keep running on semver, reported, not dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use signalbox_router::PluginEntry;
use signalbox_testkit::{
    TestNats, TestRouter, admin, admin_slow, deploy_plugin, http_request, init_logs,
    plugin_component, publish_signal,
};

/// Deploys `file` under `name` (in `plugin.upload` pieces, as the CLI does).
async fn deploy(
    client: &async_nats::Client,
    prefix: &str,
    name: &str,
    file: &std::path::Path,
    settings: Option<BTreeMap<&str, &str>>,
) -> Result<Value> {
    let settings: Option<Vec<(&str, &str)>> = settings.map(|s| s.into_iter().collect());
    deploy_plugin(client, prefix, name, file, settings.as_deref()).await
}

/// Sends `plugin.deploy` as given (inline components, bad requests).
async fn deploy_request(client: &async_nats::Client, prefix: &str, body: &Value) -> Result<Value> {
    admin_slow(client, prefix, "plugin.deploy", &body.to_string()).await
}

/// Firings of subscription `sub` in the store (lineage, newest first).
async fn firings(client: &async_nats::Client, prefix: &str, sub: &str) -> Result<Vec<Value>> {
    let reply = admin(client, prefix, "lineage.sub", sub).await?;
    Ok(reply["firings"].as_array().cloned().unwrap_or_default())
}

/// The `v` param of the single signal of each firing, oldest first.
async fn fired_values(client: &async_nats::Client, prefix: &str, sub: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in firings(client, prefix, sub).await?.iter().rev() {
        let signal = format!(
            "{}:{}",
            f["inputs"][0]["name"].as_str().unwrap_or_default(),
            f["inputs"][0]["seq"]
        );
        let shown = admin(client, prefix, "signals.show", &signal).await?;
        out.push(
            shown["signal"]["signal"]["params"]["v"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_is_deployed_reprepared_rolled_back_and_removed_while_signals_flow()
-> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let mut router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();
    let semver = plugin_component("operator_semver")?;
    let regex = plugin_component("operator_regex")?;
    let sub = |id: &str, arg: &str| {
        format!(
            "id: {id}\nsignal: probe\nwhere: {{v: [{{ver: '{arg}'}}]}}\naction: {{trigger: {{subject: runs.{id}}}}}"
        )
    };

    // Not deployed yet: a subscription naming it is refused with the list.
    let refused = admin(&client, &prefix, "sub.add", &sub("ranged", ">=2.1.0")).await?;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"ver\"") && message.contains("\"numeric\""),
        "{refused}"
    );

    // Version 1: semver.
    let v1 = deploy(&client, &prefix, "ver", &semver, None).await?;
    assert_eq!(v1["outcome"], "deployed", "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["plugin"]["world"], "operator");
    let again = deploy(&client, &prefix, "ver", &semver, None).await?;
    assert_eq!(again["outcome"], "unchanged", "{again}");
    router
        .add_subscription(&client, &sub("ranged", ">=2.1.0"))
        .await?;
    router.add_subscription(&client, &sub("any", "*")).await?;
    for v in ["2.4.1", "1.0.0"] {
        publish_signal(&client, "probe", &json!({"params": {"v": v}}).to_string()).await?;
    }

    // Signals flow while version 2 is deployed and then rolled back.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"id": format!("flow-{i}"), "params": {"v": "9.9.9"}});
                let ack = publish_signal(&client, "probe", &body.to_string()).await?;
                ensure!(ack.get("error").is_none(), "signal refused: {ack}");
                sent.fetch_add(1, Ordering::Relaxed);
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<u64, anyhow::Error>(i)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Version 2: regex. "ranged" re-prepares (">=2.1.0" is a valid regex);
    // "any" cannot ("*" is not) and keeps running on semver, reported.
    let v2 = deploy(&client, &prefix, "ver", &regex, None).await?;
    assert_eq!(v2["outcome"], "deployed", "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["reprepared"], json!(["ranged"]), "{v2}");
    assert_eq!(v2["not_reprepared"][0]["id"], "any", "{v2}");
    assert!(
        v2["not_reprepared"][0]["rule"]
            .as_str()
            .unwrap_or_default()
            .contains("rejected its argument"),
        "{v2}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Under regex, "ranged" matches the literal text, not the range.
    for v in ["2.4.1", ">=2.1.0"] {
        publish_signal(&client, "probe", &json!({"params": {"v": v}}).to_string()).await?;
    }
    let rolled = admin(&client, &prefix, "plugin.rollback", "ver").await?;
    assert_eq!(rolled["outcome"], "rolled_back", "{rolled}");
    assert_eq!(
        (rolled["from"].clone(), rolled["version"].clone()),
        (json!(2), json!(1))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let flowed = producer.await??;
    assert!(flowed > 10, "only {flowed} signals flowed during the swaps");
    publish_signal(
        &client,
        "probe",
        &json!({"params": {"v": "2.5.0"}}).to_string(),
    )
    .await?;

    // No signal lost: "any" (semver "*", never swapped) fired for every one
    // but ">=2.1.0", which is not a version.
    let total = 2 + flowed + 2 + 1;
    let listed = admin(&client, &prefix, "signals.ls", "{}").await?;
    assert_eq!(listed["names"][0]["last_seq"], json!(total), "{listed}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut any = firings(&client, &prefix, "any").await?.len() as u64;
    while any < total - 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        any = firings(&client, &prefix, "any").await?.len() as u64;
    }
    assert_eq!(
        any,
        total - 1,
        "every version probe fired `any` exactly once"
    );
    assert!(
        !fired_values(&client, &prefix, "any")
            .await?
            .contains(&">=2.1.0".to_string()),
        "semver never matched a non-version"
    );
    // "ranged": semver before and after, regex in between.
    assert_eq!(
        fired_values(&client, &prefix, "ranged")
            .await?
            .into_iter()
            .filter(|v| v != "9.9.9")
            .collect::<Vec<_>>(),
        ["2.4.1", ">=2.1.0", "2.5.0"]
    );

    // Inspect shows both versions, the active one, and who uses it.
    let shown = admin(&client, &prefix, "plugin.inspect", "ver").await?;
    let p = &shown["plugin"];
    assert_eq!(p["source"], json!({"deployed": 1}), "{shown}");
    assert_eq!(p["versions"].as_array().map(Vec::len), Some(2), "{shown}");
    assert_eq!(p["versions"][0]["active"], true);
    assert_eq!(p["used_by"], json!(["any", "ranged"]));
    assert_eq!(p["description"]["name"], "semver");
    let no_more = admin(&client, &prefix, "plugin.rollback", "ver").await?;
    assert!(
        no_more["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing to roll back"),
        "{no_more}"
    );

    // A restart keeps the active version (1, after the rollback).
    router.restart().await?;
    let listed = admin(&client, &prefix, "plugin.ls", "").await?;
    assert_eq!(listed["plugins"][0]["name"], "ver", "{listed}");
    assert_eq!(listed["plugins"][0]["source"], json!({"deployed": 1}));
    publish_signal(
        &client,
        "probe",
        &json!({"params": {"v": "2.6.0"}}).to_string(),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !fired_values(&client, &prefix, "ranged")
        .await?
        .contains(&"2.6.0".to_string())
    {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "2.6.0 did not fire after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Removal is refused while subscriptions use it, then allowed.
    let busy = admin(&client, &prefix, "plugin.rm", "ver").await?;
    let message = busy["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("any") && message.contains("ranged"),
        "{busy}"
    );
    for id in ["any", "ranged"] {
        admin(&client, &prefix, "sub.rm", id).await?;
    }
    let removed = admin(&client, &prefix, "plugin.rm", "ver").await?;
    assert_eq!(removed["outcome"], "removed", "{removed}");
    assert_eq!(removed["versions"], 2);
    let refused = admin(&client, &prefix, "sub.add", &sub("ranged", ">=2.1.0")).await?;
    assert!(refused.get("error").is_some(), "{refused}");
    router.restart().await?;
    let listed = admin(&client, &prefix, "plugin.ls", "").await?;
    assert_eq!(listed["plugins"], json!([]), "{listed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_adapter_is_swapped_and_rolled_back_at_runtime() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start_configured(&nats, |c| {
        c.http.listen = Some("127.0.0.1:0".into());
    })
    .await?;
    let addr = router.router().http_addr().context("HTTP on")?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();

    let (status, _) = http_request(addr, "POST", "/ingest/hook", &[], "{}").await?;
    assert_eq!(status, 404, "no adapter yet");
    let json_settings = BTreeMap::from([
        ("name", "hooked"),
        ("id-pointer", "/delivery"),
        ("params", r#"{"model": "/model"}"#),
    ]);
    let v1 = deploy(
        &client,
        &prefix,
        "hook",
        &plugin_component("adapter_webhook_json")?,
        Some(json_settings),
    )
    .await?;
    assert_eq!(v1["plugin"]["world"], "source-adapter", "{v1}");
    let body = json!({"delivery": "d-1", "model": "ranker"}).to_string();
    let (status, reply) = http_request(addr, "POST", "/ingest/hook", &[], &body).await?;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("d-1"), "{reply}");

    // Version 2: the key=value lines adapter under the same route.
    let v2 = deploy(
        &client,
        &prefix,
        "hook",
        &plugin_component("adapter_kv_lines")?,
        Some(BTreeMap::from([("name", "hooked")])),
    )
    .await?;
    assert_eq!(v2["version"], 2, "{v2}");
    let (status, reply) = http_request(addr, "POST", "/ingest/hook", &[], &body).await?;
    assert_eq!(status, 422, "JSON is not key=value lines: {reply}");

    // An operator cannot take an adapter's name; garbage is not a component.
    let clash = deploy(
        &client,
        &prefix,
        "hook",
        &plugin_component("operator_semver")?,
        None,
    )
    .await?;
    assert!(
        clash["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("source-adapter"),
        "{clash}"
    );
    let garbage = deploy_request(
        &client,
        &prefix,
        &json!({"name": "junk", "component": base64::engine::general_purpose::STANDARD.encode(b"not wasm")}),
    )
    .await?;
    assert_eq!(garbage["error"]["field"], "component", "{garbage}");
    let wrong_hash = deploy_request(
        &client,
        &prefix,
        &json!({"name": "junk", "component": "AAAA", "sha256": "00"}),
    )
    .await?;
    assert_eq!(wrong_hash["error"]["field"], "sha256", "{wrong_hash}");
    let builtin = deploy_request(
        &client,
        &prefix,
        &json!({"name": "prefix", "component": "AAAA"}),
    )
    .await?;
    assert_eq!(builtin["error"]["field"], "name", "{builtin}");
    let listed = admin(&client, &prefix, "plugin.ls", "").await?;
    assert_eq!(
        listed["plugins"].as_array().map(Vec::len),
        Some(1),
        "nothing half-deployed: {listed}"
    );

    // Rollback: JSON works again; the settings of version 1 came back too.
    let rolled = admin(&client, &prefix, "plugin.rollback", "hook").await?;
    assert_eq!(rolled["version"], 1, "{rolled}");
    let body = json!({"delivery": "d-2", "model": "ranker"}).to_string();
    let (status, reply) = http_request(addr, "POST", "/ingest/hook", &[], &body).await?;
    assert_eq!(status, 200, "{reply}");
    let shown = admin(&client, &prefix, "signals.show", "hooked:2").await?;
    assert_eq!(
        shown["signal"]["signal"]["params"]["model"], "ranker",
        "{shown}"
    );
    let inspect = admin(&client, &prefix, "plugin.inspect", "hook").await?;
    assert_eq!(
        inspect["plugin"]["setting_keys"],
        json!(["id-pointer", "name", "params"]),
        "setting values are not shown: {inspect}"
    );
    let metrics = http_request(addr, "GET", "/metrics", &[], "").await?.1;
    assert!(
        metrics.contains("signalbox_plugin_calls_total{plugin=\"hook\",world=\"source-adapter\"}"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_overrides_the_config_file_entry_and_rm_restores_it() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let semver = plugin_component("operator_semver")?;
    let mut router = TestRouter::start_configured(&nats, |c| {
        c.plugins.operators.push(PluginEntry {
            name: "ver".into(),
            file: semver.clone(),
            settings: BTreeMap::new(),
        });
    })
    .await?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();
    let listed = admin(&client, &prefix, "plugin.ls", "").await?;
    assert!(
        listed["plugins"][0]["source"].get("config").is_some(),
        "{listed}"
    );
    let not_deployed = admin(&client, &prefix, "plugin.rm", "ver").await?;
    assert!(
        not_deployed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("config file"),
        "{not_deployed}"
    );
    router
        .add_subscription(
            &client,
            "id: ranged\nsignal: probe\nwhere: {v: [{ver: '>=2.1.0'}]}\naction: {trigger: {subject: runs.ranged}}",
        )
        .await?;
    let v1 = deploy(
        &client,
        &prefix,
        "ver",
        &plugin_component("operator_regex")?,
        None,
    )
    .await?;
    assert_eq!(v1["reprepared"], json!(["ranged"]), "{v1}");
    router.restart().await?;
    let listed = admin(&client, &prefix, "plugin.ls", "").await?;
    assert_eq!(
        listed["plugins"][0]["source"],
        json!({"deployed": 1}),
        "{listed}"
    );
    assert_eq!(
        admin(&client, &prefix, "plugin.inspect", "ver").await?["plugin"]["description"]["name"],
        "regex"
    );
    // In use, but the config entry takes over: removal is allowed.
    let removed = admin(&client, &prefix, "plugin.rm", "ver").await?;
    assert_eq!(removed["config_entry_restored"], true, "{removed}");
    assert_eq!(removed["reprepared"], json!(["ranged"]), "{removed}");
    let shown = admin(&client, &prefix, "plugin.inspect", "ver").await?;
    assert_eq!(shown["plugin"]["description"]["name"], "semver", "{shown}");
    Ok(())
}
