//! Deploy time (issue 4, "Benchmarks"): how long `plugin.deploy` takes in a
//! running router, against `sub.add` (an admin write that also stores and
//! compiles) measured in the same run on the same router.
//!
//! One router (in this process, with a local `nats-server`, data directory on
//! disk) and one name, `ver`, deployed alternately with the `semver` and the
//! `regex` operator components (both already compiled into the router's cache
//! after the first round, as a redeploy of a known component is): each deploy
//! uploads the component in 256 KiB pieces, validates it (load, world check,
//! `describe`), stores a new version in redb, registers it and re-prepares the
//! subscriptions that use it. Measured with 0, 10 and 100 such subscriptions.
//! The baseline adds a subscription whose content changes every time (a new
//! version stored and compiled). A cold deploy (first compile) is timed once.
//!
//! Run: `cargo bench --bench plugin_deploy` (options after `--`: `--reps N`
//! (default 20)). Bounded: every request has a timeout.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use serde_json::{Value, json};
use signalbox_testkit::{TestNats, TestRouter, admin, plugin_component};

async fn request(client: &async_nats::Client, subject: String, body: String) -> Result<Value> {
    let req = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(Duration::from_secs(120)));
    let reply = client.send_request(subject, req).await.context("request")?;
    let v: Value = serde_json::from_slice(&reply.payload)?;
    ensure!(v.get("error").is_none(), "{v}");
    Ok(v)
}

async fn deploy(client: &async_nats::Client, prefix: &str, bytes: &[u8]) -> Result<Duration> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let piece = 256 * 1024;
    let start = Instant::now();
    for (i, chunk) in bytes.chunks(piece).enumerate() {
        let body = json!({"upload": "bench", "offset": i * piece, "data": b64.encode(chunk)});
        request(client, format!("{prefix}.plugin.upload"), body.to_string()).await?;
    }
    let body = json!({"name": "ver", "upload": "bench"});
    request(client, format!("{prefix}.plugin.deploy"), body.to_string()).await?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut reps = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--reps" {
            reps = args.next().context("--reps N")?.parse()?;
        }
    }
    let semver = std::fs::read(plugin_component("operator_semver")?)?;
    let regex = std::fs::read(plugin_component("operator_regex")?)?;
    let nats = TestNats::start()?;
    let router = TestRouter::start(&nats).await?;
    let client = nats.client().await?;
    let prefix = router.admin_prefix().to_string();

    let cold = deploy(&client, &prefix, &semver).await?;
    let cold_regex = deploy(&client, &prefix, &regex).await?;
    println!(
        "cold deploy (first compile): semver ({} B) {cold:.1?}, regex ({} B) {cold_regex:.1?}",
        semver.len(),
        regex.len()
    );
    let mut users = 0usize;
    for target in [0usize, 10, 100] {
        while users < target {
            // An argument both semver and regex accept.
            let doc = format!(
                "id: u{users}\nsignal: probe\nwhere: {{v: [{{ver: '>=1.{users}.0'}}]}}\naction: {{trigger: {{subject: runs.u}}}}"
            );
            request(&client, format!("{prefix}.sub.add"), doc).await?;
            users += 1;
        }
        let mut deploys = Vec::with_capacity(reps);
        let mut adds = Vec::with_capacity(reps);
        for i in 0..reps {
            let bytes = if i % 2 == 0 { &semver } else { &regex };
            deploys.push(deploy(&client, &prefix, bytes).await?);
            let doc = format!(
                "id: baseline\nsignal: probe\nwhere: {{v: [{{prefix: 'x{i}'}}]}}\naction: {{trigger: {{subject: runs.b}}}}"
            );
            let start = Instant::now();
            request(&client, format!("{prefix}.sub.add"), doc).await?;
            adds.push(start.elapsed());
        }
        let (d, a) = (median(deploys), median(adds));
        println!(
            "{target:>3} subscriptions using it: plugin.deploy median {d:.2?} ({} B pieces + deploy), sub.add median {a:.2?}; ratio {:.1}x",
            (semver.len() + regex.len()) / 2,
            d.as_secs_f64() / a.as_secs_f64()
        );
    }
    let shown = admin(&client, &prefix, "plugin.inspect", "ver").await?;
    println!(
        "versions stored: {}",
        shown["plugin"]["versions"].as_array().map_or(0, Vec::len)
    );
    router.shutdown().await;
    Ok(())
}
