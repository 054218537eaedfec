//! Plugins in a group of routers, as users deploy them: a real component
//! (the `semver` operator built from `plugins/`) deployed in upload pieces
//! through one router's admin API reaches every router of the group — the
//! ones running and one started later — through the group's KV bucket and
//! object store; subscriptions that use it fire on whichever router owns
//! their signals' partition; a second component under the same name and a
//! rollback through another router reach every router, and so does the
//! removal (docs/SCALING.md, "Plugins"). The chunks an unfinished
//! component upload left in that object store are deleted, and the live
//! component stays whole.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use signalbox_testkit::{GroupCase, deploy_requests, init_logs, plugin_component};
use tokio::io::AsyncReadExt;

use crate::group::{BIN, publish, reaches, read_all, target, unfinished_upload_is_swept};

/// Deploys `file` as plugin `name` through router `i`'s admin API over
/// HTTP, in upload pieces as `signalbox plugin deploy` sends them.
async fn deploy(case: &GroupCase, i: usize, name: &str, file: &Path) -> Result<Value> {
    let (pieces, deploy) = deploy_requests(name, file, None)?;
    for piece in pieces {
        let reply = case.admin(i, "plugin.upload", &piece).await?;
        ensure!(reply.get("error").is_none(), "plugin.upload: {reply}");
    }
    case.admin(i, "plugin.deploy", &deploy).await
}

/// The hash of plugin `name`'s active component on router `i`, `None` when
/// the router has no such plugin.
async fn active_hash(case: &GroupCase, i: usize, name: &str) -> Result<Option<String>> {
    let listed = case.admin(i, "plugin.ls", "").await?;
    let Some(plugins) = listed["plugins"].as_array() else {
        bail!("plugin.ls on router {i}: {listed}");
    };
    Ok(plugins
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["hash"].as_str().unwrap_or_default().to_string()))
}

/// Waits until router `i`'s active component of `name` is `want` (`None`:
/// until it has no such plugin); a router still starting does not answer yet.
async fn converges(case: &GroupCase, i: usize, name: &str, want: Option<&str>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = active_hash(case, i, name)
            .await
            .map_err(|e| format!("{e:#}"));
        if now.as_ref().is_ok_and(|h| h.as_deref() == want) {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "router {i} did not bring plugin {name} in line within 60 s: has {now:?}, the group wants {want:?}\n{}",
            case.routers[i].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A signal name whose partition router `owner` owns (16 partitions).
fn name_owned_by(case: &GroupCase, status: &Value, owner: usize) -> Option<String> {
    let member = case.routers[owner].member.as_str();
    (0..500).map(|k| format!("probe{k}")).find(|name| {
        let p = signalbox_router::group::hash::signal_partition("signals", name, 16) as usize;
        status["partitions"][p]["owner"].as_str() == Some(member)
    })
}

/// Two signal names, the first in a partition router 0 owns, the second in
/// one router 1 owns, once the group has spread its partitions over both
/// (right after start one router may own them all).
async fn names_on_each_router(case: &GroupCase) -> Result<[String; 2]> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = case.settle().await?;
        if let (Some(a), Some(b)) = (
            name_owned_by(case, &status, 0),
            name_owned_by(case, &status, 1),
        ) {
            return Ok([a, b]);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the partitions were not spread over both routers within 60 s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_deployed_through_one_router_reaches_every_router() -> Result<()> {
    init_logs();
    let mut case = GroupCase::start(Path::new(BIN), 2, "g9", 16, &[], "").await?;
    let client = case.cluster.client().await?;
    let out = target(&client, "OUT", &["out.>"]).await?;
    let names = names_on_each_router(&case).await?;

    // Deployed through router 0; router 1 takes it from the group.
    let semver = plugin_component("operator_semver")?;
    let deployed = deploy(&case, 0, "ver", &semver).await?;
    ensure!(deployed["outcome"] == "deployed", "{deployed}");
    let hash = signalbox_plugin::content_hash(&std::fs::read(&semver)?);
    converges(&case, 0, "ver", Some(&hash)).await?;
    converges(&case, 1, "ver", Some(&hash)).await?;

    // Subscriptions that use it, added through router 1, one per name: the
    // signals of each are matched by a different router.
    for name in &names {
        let sub = format!(
            "id: ver-{name}\nsignal: {name}\nwhere: {{v: [{{ver: '>=2.1.0'}}]}}\naction: {{publish: {{subject: out.{name}}}}}\n"
        );
        let added = case.admin(1, "sub.add", &sub).await?;
        ensure!(added.get("error").is_none(), "sub.add ver-{name}: {added}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for i in 0..2 {
        loop {
            let listed = case.admin(i, "sub.ls", "").await?;
            let text = listed.to_string();
            if names.iter().all(|n| text.contains(&format!("ver-{n}"))) {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "router {i} does not list both subscriptions: {listed}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let versions = ["2.3.0", "1.9.9", "2.1.0", "not-a-version"];
    for name in &names {
        for v in versions {
            publish(&client, name, &json!({"params": {"v": v}})).await?;
        }
    }
    // The two versions at or above 2.1.0 fire for each name, once.
    let n = reaches(&out, 4, Duration::from_secs(60)).await?;
    ensure!(n == 4, "{n} firings, not 4\n{}", case.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let firings = read_all(&out, 100).await?;
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (subject, _, body) in &firings {
        let v = body["signals"][0]["params"]["v"]
            .as_str()
            .with_context(|| format!("a firing without its signal's params: {body}"))?;
        fired
            .entry(subject.clone())
            .or_default()
            .push(v.to_string());
    }
    for name in &names {
        let mut got = fired.remove(&format!("out.{name}")).unwrap_or_default();
        got.sort();
        ensure!(
            got == ["2.1.0", "2.3.0"],
            "{name} fired for {got:?}, not for 2.1.0 and 2.3.0 once each\n{}",
            case.logs()
        );
    }
    ensure!(fired.is_empty(), "firings on other subjects: {fired:?}");

    // A router started later brings its plugin in line as well.
    let late = case.add_router()?;
    converges(&case, late, "ver", Some(&hash)).await?;

    // A second component under the name, deployed through router 0, then
    // rolled back through router 1: every router follows both.
    let regex = plugin_component("operator_regex")?;
    let second = deploy(&case, 0, "ver", &regex).await?;
    ensure!(second["outcome"] == "deployed", "{second}");
    let second_hash = signalbox_plugin::content_hash(&std::fs::read(&regex)?);
    for i in 0..case.routers.len() {
        converges(&case, i, "ver", Some(&second_hash)).await?;
    }
    let rolled = case.admin(1, "plugin.rollback", "ver").await?;
    ensure!(rolled["outcome"] == "rolled_back", "{rolled}");
    for i in 0..case.routers.len() {
        converges(&case, i, "ver", Some(&hash)).await?;
    }

    // Removed through the late router (its subscriptions first): gone on
    // every router.
    for name in &names {
        let removed = case.admin(late, "sub.rm", &format!("ver-{name}")).await?;
        ensure!(
            removed.get("error").is_none(),
            "sub.rm ver-{name}: {removed}"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let removed = loop {
        // The other routers may still use it until the removals reach them.
        let removed = case.admin(late, "plugin.rm", "ver").await?;
        if removed.get("error").is_none() {
            break removed;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "plugin.rm through router {late} still refused after 60 s: {removed}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(removed["outcome"] == "removed", "{removed}");
    for i in 0..case.routers.len() {
        converges(&case, i, "ver", None).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chunks_of_an_unfinished_component_upload_are_deleted_and_the_live_component_stays()
-> Result<()> {
    init_logs();
    let case = GroupCase::start_tuned(
        Path::new(BIN),
        2,
        "g10",
        16,
        &[],
        "",
        "snapshot_orphan_age = \"2s\"",
    )
    .await?;
    case.settle().await?;
    let semver = plugin_component("operator_semver")?;
    let deployed = deploy(&case, 0, "ver", &semver).await?;
    ensure!(deployed["outcome"] == "deployed", "{deployed}");
    let hash = signalbox_plugin::content_hash(&std::fs::read(&semver)?);
    converges(&case, 1, "ver", Some(&hash)).await?;

    // What a router that died while it shared a component leaves: chunks,
    // no metadata.
    let client = case.cluster.client().await?;
    let js = async_nats::jetstream::new(client);
    unfinished_upload_is_swept(
        &case,
        &js,
        "SBX_G10_BLOBS",
        "UNFINISHEDCOMPONENT01",
        "component",
    )
    .await?;
    // The deployed component, older than the age too, still reads back whole.
    let blobs = js.get_object_store("SBX_G10_BLOBS").await?;
    let bytes = tokio::time::timeout(Duration::from_secs(30), async {
        let mut object = blobs.get(hash.as_str()).await?;
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await?;
        anyhow::Ok(bytes)
    })
    .await
    .context("the live component did not read back within 30 s")??;
    ensure!(
        signalbox_plugin::content_hash(&bytes) == hash,
        "the live component reads back changed ({} bytes)",
        bytes.len()
    );
    Ok(())
}
