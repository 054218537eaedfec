//! Every plugin in `plugins/`, in every language it is written in, deployed
//! into one running router (real nats-server, redb, HTTP) and used end to end:
//! operators in subscriptions that must fire for the matching signal and stay
//! silent for the other one; adapters behind `POST /ingest/<route>` whose
//! signals must be stored and matched, and whose bad input must be refused.
//!
//! The cases are the same for each language, so a sibling that passes the
//! host-level cases (`crates/plugin/tests/`) also has to behave the same in
//! the router: deployed at runtime, prepared from a subscription, called per
//! signal, decoding real HTTP requests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use signalbox_testkit::{
    TestNats, TestRouter, WAIT, deploy_plugin, expect_silence, http_request, init_logs,
    js_plugin_component, next_message, plugin_component, publish_signal, python_plugin_component,
};

/// Where a language's build of plugin `name` is.
fn component(lang: &str, name: &str) -> Result<PathBuf> {
    match lang {
        "rust" => plugin_component(&match name {
            "regex" | "semver" | "geo" => format!("operator_{name}"),
            other => format!("adapter_{}", other.replace('-', "_")),
        }),
        "python" => python_plugin_component(name),
        "js" => js_plugin_component(name),
        other => anyhow::bail!("no language {other}"),
    }
}

/// An operator case: the pattern argument, a value that matches, one that does not.
struct OperatorCase {
    plugin: &'static str,
    argument: Value,
    matching: Value,
    other: Value,
}

fn operator_cases() -> Vec<OperatorCase> {
    vec![
        OperatorCase {
            plugin: "regex",
            argument: json!("v[0-9]+\\.[0-9]+"),
            matching: json!("v1.20"),
            other: json!("av1.20"),
        },
        OperatorCase {
            plugin: "semver",
            argument: json!(">=2.1.0 <3"),
            matching: json!("2.4.1"),
            other: json!("3.0.0"),
        },
        OperatorCase {
            plugin: "geo",
            argument: json!({"within_radius": {"lat": 52.52, "lon": 13.405, "meters": 1500}}),
            matching: json!("52.521,13.41"),
            other: json!("48.85,2.35"),
        },
    ]
}

/// The languages each plugin is written in.
fn languages(plugin: &str) -> &'static [&'static str] {
    match plugin {
        "regex" | "webhook-json" => &["rust", "python", "js"],
        _ => &["rust", "python"],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_in_every_language_fires_through_the_router() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();
    for case in operator_cases() {
        for lang in languages(case.plugin) {
            let name = format!("{}-{lang}", case.plugin);
            let deployed = deploy_plugin(
                &client,
                &prefix,
                &name,
                &component(lang, case.plugin)?,
                None,
            )
            .await?;
            ensure!(deployed["outcome"] == "deployed", "{name}: {deployed}");
            let sub = json!({
                "id": format!("uses-{name}"),
                "signal": format!("probe-{name}"),
                "where": {"v": [{(name.clone()): case.argument}]},
                "action": {"trigger": {"subject": format!("runs.{name}")}},
            });
            router.add_subscription(&client, &sub.to_string()).await?;
            let mut runs = client.subscribe(format!("runs.{name}")).await?;
            client.flush().await?;
            for (id, v) in [("other", &case.other), ("match", &case.matching)] {
                let body = json!({"id": id, "params": {"v": v}});
                let ack =
                    publish_signal(&client, &format!("probe-{name}"), &body.to_string()).await?;
                ensure!(ack.get("error").is_none(), "{name}: {ack}");
            }
            let msg = next_message(&mut runs, WAIT)
                .await
                .with_context(|| format!("{name}: no firing for {}", case.matching))?;
            let fired: Value = serde_json::from_slice(&msg.payload)?;
            assert_eq!(fired["signals"][0]["id"], "match", "{name}: {fired}");
            expect_silence(&mut runs, Duration::from_millis(200))
                .await
                .with_context(|| format!("{name}: {} fired too", case.other))?;
        }
    }
    Ok(())
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as GitHub signs a delivery.
fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret);
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!(
        "sha256={}",
        outer.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_in_every_language_takes_webhooks_through_the_router() -> Result<()> {
    init_logs();
    let nats = TestNats::start()?;
    let router = TestRouter::start_configured(&nats, |c| {
        c.http.listen = Some("127.0.0.1:0".into());
    })
    .await?;
    let addr = router.router().http_addr().context("HTTP on")?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();

    for lang in languages("webhook-json") {
        let route = format!("hook-{lang}");
        let settings = [
            ("name", "model_published"),
            ("id-pointer", "/delivery"),
            ("params", r#"{"model": "/model", "version": "/version"}"#),
        ];
        let deployed = deploy_plugin(
            &client,
            &prefix,
            &route,
            &component(lang, "webhook-json")?,
            Some(&settings),
        )
        .await?;
        ensure!(deployed["outcome"] == "deployed", "{route}: {deployed}");
        let body = json!({"delivery": format!("d-{lang}"), "model": "ranker", "version": "2.2.0"});
        let (status, reply) = http_request(
            addr,
            "POST",
            &format!("/ingest/{route}"),
            &[],
            &body.to_string(),
        )
        .await?;
        assert_eq!(status, 200, "{route}: {reply}");
        let v: Value = serde_json::from_str(&reply)?;
        assert_eq!(v["signals"][0]["id"], format!("d-{lang}"), "{route}: {v}");
        let (status, reply) =
            http_request(addr, "POST", &format!("/ingest/{route}"), &[], "not json").await?;
        assert_eq!(status, 422, "{route}: {reply}");
    }

    let secret = "It's a Secret to Everybody";
    router
        .add_subscription(
            &client,
            "id: pushed\nsignal: github.push\nwhere: {branch: [main]}\naction: {trigger: {subject: runs.pushed}}",
        )
        .await?;
    let mut runs = client.subscribe("runs.pushed").await?;
    client.flush().await?;
    for lang in languages("github") {
        let route = format!("github-{lang}");
        let deployed = deploy_plugin(
            &client,
            &prefix,
            &route,
            &component(lang, "github")?,
            Some(&[("secret", secret)]),
        )
        .await?;
        ensure!(deployed["outcome"] == "deployed", "{route}: {deployed}");
        let push = json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": "1111111111111111111111111111111111111111",
            "repository": {"full_name": "octo/signals"},
            "pusher": {"name": "octocat"},
            "commits": [],
        })
        .to_string();
        let delivery = format!("delivery-{lang}");
        let signed = github_signature(secret.as_bytes(), push.as_bytes());
        let headers = [
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", delivery.as_str()),
            ("X-Hub-Signature-256", signed.as_str()),
        ];
        let (status, reply) =
            http_request(addr, "POST", &format!("/ingest/{route}"), &headers, &push).await?;
        assert_eq!(status, 200, "{route}: {reply}");
        let msg = next_message(&mut runs, WAIT)
            .await
            .with_context(|| format!("{route}: the push did not fire"))?;
        let fired: Value = serde_json::from_slice(&msg.payload)?;
        assert_eq!(fired["signals"][0]["id"], delivery, "{route}: {fired}");

        // A wrong signature is refused and nothing fires.
        let forged = github_signature(b"not the secret", push.as_bytes());
        let headers = [
            ("X-GitHub-Event", "push"),
            ("X-GitHub-Delivery", "forged"),
            ("X-Hub-Signature-256", forged.as_str()),
        ];
        let (status, reply) =
            http_request(addr, "POST", &format!("/ingest/{route}"), &headers, &push).await?;
        assert_eq!(status, 422, "{route}: {reply}");
        expect_silence(&mut runs, Duration::from_millis(200)).await?;
    }
    Ok(())
}
