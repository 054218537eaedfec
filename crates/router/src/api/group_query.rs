//! Group mode: any router answers the data verbs for the whole group. The
//! asking router sends the verb to `sbx.<group>.q` (every router listens, no
//! queue group); each answers with the verb run on every partition it works
//! (`api/data.rs`), and the asker puts the answers together per verb: one
//! partition's answer when the verb names a signal (its name's partition),
//! the one that found it for an id (firing, wait), the union for lists. It
//! waits until every partition answered, or for [`ASK_FOR`]; an answer put
//! together without some partitions says which (`partial`). A router answers
//! for a partition only while it knows its lease held (`answers_now`), so a
//! router resumed after a pause past its lease stays silent rather than
//! answering from a store the new owner has moved past.
//!
//! Internal carriers (join offers travelling between partitions, published
//! to the group's input) are not firings of a subscription: lists leave them
//! out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signalbox_model::ErrorReply;
use tokio::sync::watch;

use super::data::{self, SignalKey, parse_signal_key};
use super::reply::{AdminResult, not_found, unavailable};
use crate::group::Group;
use crate::shared::Shared;

/// How long the asking router gathers answers.
const ASK_FOR: Duration = Duration::from_secs(3);

/// A query to the routers of a group.
#[derive(Debug, Serialize, Deserialize)]
struct Query {
    verb: String,
    body: String,
    /// Only this partition answers (its owner).
    #[serde(default)]
    partition: Option<u32>,
}

/// One router's answer: per partition it works, the verb's result.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    member: String,
    results: Vec<(u32, Result<Value, ErrorReply>)>,
}

/// Answers the group's queries for the partitions worked here, until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    group: Arc<Group>,
    mut shutdown: watch::Receiver<bool>,
) {
    let subject = group.names.query("data");
    let mut sub = match shared.client.subscribe(subject.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%subject, error = %e, "cannot answer the group's queries");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => None,
        };
        let Some(msg) = msg else { break };
        let Some(reply) = msg.reply.clone() else {
            continue;
        };
        let Ok(q) = serde_json::from_slice::<Query>(&msg.payload) else {
            continue;
        };
        let parts: Vec<_> = shared
            .partitions
            .all()
            .into_iter()
            .filter(|p| q.partition.is_none_or(|want| want == p.id) && p.answers_now())
            .collect();
        if q.partition.is_some() && parts.is_empty() {
            continue;
        }
        let s = shared.clone();
        let member = group.member.clone();
        tokio::spawn(async move {
            let catalog = s.catalog.clone();
            let results = tokio::task::spawn_blocking(move || {
                parts
                    .iter()
                    .map(|p| {
                        let r = match q.verb.as_str() {
                            "wait.cancel" => super::wait_ops::cancel_on(p, &catalog, &q.body),
                            "partition.status" => Ok(partition_status(p)),
                            verb => data::run(&p.store, &catalog, verb, &q.body),
                        };
                        (p.id, r)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            let answer = Answer { member, results };
            crate::nats::reply::respond(&s.client, reply, &answer).await;
        });
    }
}

/// How one partition worked here stands: its positions and lag.
fn partition_status(p: &crate::pipeline::partition::Partition) -> Value {
    json!({
        "input_seq": p.store.input_seq().ok().flatten().unwrap_or(0),
        "changelog_seq": p.store.changelog_seq().unwrap_or(0),
        "lag": p.input_pending.load(std::sync::atomic::Ordering::Relaxed),
        "outbox_pending": p.store.stats().map(|s| s.pending).unwrap_or(0),
    })
}

/// `cluster.status`: the members, each partition's owner (by its lease and
/// by who answered for it), its positions and lag.
pub(crate) async fn status(shared: &Arc<Shared>, group: &Group) -> AdminResult {
    let members = crate::group::members::live(&group.joined.members)
        .await
        .map_err(unavailable)?;
    let mut owner_of: BTreeMap<u32, String> = BTreeMap::new();
    for m in &members {
        for p in &m.owned {
            owner_of.insert(*p, m.member.clone());
        }
    }
    let answers = gather_raw(shared, group, "partition.status", "", None).await?;
    let mut partitions = Vec::new();
    let mut unowned = Vec::new();
    for p in 0..group.partitions() {
        let lease = match group.leases.read(p).await {
            Ok(crate::group::lease::LeaseState::Held { owner, .. }) => Some(owner),
            _ => None,
        };
        let (answered_by, detail) = match answers.get(&p) {
            Some((member, Ok(v))) => (Some(member.clone()), v.clone()),
            _ => (None, Value::Null),
        };
        if answered_by.is_none() {
            unowned.push(p);
        }
        partitions.push(json!({
            "partition": p,
            "owner": answered_by,
            "lease": lease,
            "input_seq": detail.get("input_seq"),
            "changelog_seq": detail.get("changelog_seq"),
            "lag": detail.get("lag"),
            "outbox_pending": detail.get("outbox_pending"),
        }));
    }
    Ok(json!({
        "mode": "group",
        "group": group.config.group,
        "member": group.member,
        "partition_count": group.partitions(),
        "members": members,
        "partitions": partitions,
        "unowned": unowned,
    }))
}

/// Runs `verb` for the whole group and puts the answers together.
pub(crate) async fn ask(
    shared: &Arc<Shared>,
    group: &Group,
    verb: &str,
    body: &str,
) -> AdminResult {
    let n = group.partitions();
    // Verbs about one signal go to its name's partition only.
    let target = match verb {
        "signals.show" | "lineage.signal" => Some(partition_of_key(group, body)?),
        "explain" => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            match v.get("signal").and_then(Value::as_str) {
                Some(signal) => Some(partition_of_key(group, signal)?),
                None => None,
            }
        }
        "signals.ls" => serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
            .map(|name| group.front.partition_of(&name)),
        _ => None,
    };
    let results = gather(shared, group, verb, body, target).await?;
    let wanted: BTreeSet<u32> = match target {
        Some(p) => BTreeSet::from([p]),
        None => (0..n).collect(),
    };
    let answered: BTreeSet<u32> = results.keys().copied().collect();
    let missing: Vec<u32> = wanted.difference(&answered).copied().collect();
    if let Some(p) = target {
        return match results.into_values().next() {
            Some(r) => r,
            None => Err(unavailable(format!(
                "partition {p} has no owner answering right now (a takeover in progress?); try again"
            ))),
        };
    }
    let mut merged = merge(verb, results)?;
    if !missing.is_empty()
        && let Some(obj) = merged.as_object_mut()
    {
        obj.insert("partial".into(), json!({"missing_partitions": missing}));
    }
    Ok(merged)
}

fn partition_of_key(group: &Group, key: &str) -> Result<u32, ErrorReply> {
    let name = match parse_signal_key(key)? {
        SignalKey::Seq(name, _) | SignalKey::Id(name, _) => name,
    };
    Ok(group.front.partition_of(&name))
}

/// Sends the query and gathers the answers by partition.
async fn gather(
    shared: &Shared,
    group: &Group,
    verb: &str,
    body: &str,
    partition: Option<u32>,
) -> Result<BTreeMap<u32, AdminResult>, ErrorReply> {
    Ok(gather_raw(shared, group, verb, body, partition)
        .await?
        .into_iter()
        .map(|(p, (_, r))| (p, r))
        .collect())
}

/// [`gather`], with the member that answered for each partition.
async fn gather_raw(
    shared: &Shared,
    group: &Group,
    verb: &str,
    body: &str,
    partition: Option<u32>,
) -> Result<BTreeMap<u32, (String, AdminResult)>, ErrorReply> {
    let inbox = shared.client.new_inbox();
    let mut answers = shared
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unavailable(format!("cannot ask the group: {e}")))?;
    let q = Query {
        verb: verb.to_string(),
        body: body.to_string(),
        partition,
    };
    let payload = serde_json::to_vec(&q).map_err(unavailable)?;
    shared
        .client
        .publish_with_reply(group.names.query("data"), inbox, payload.into())
        .await
        .map_err(|e| unavailable(format!("cannot ask the group: {e}")))?;
    let want = match partition {
        Some(_) => 1,
        None => group.partitions() as usize,
    };
    let mut results = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + ASK_FOR;
    while results.len() < want {
        match tokio::time::timeout_at(deadline, answers.next()).await {
            Ok(Some(msg)) => {
                if let Ok(a) = serde_json::from_slice::<Answer>(&msg.payload) {
                    for (p, r) in a.results {
                        results.entry(p).or_insert((a.member.clone(), r));
                    }
                }
            }
            _ => break,
        }
    }
    Ok(results)
}

/// Whether a firing (as `firing_summary` or `Firing` JSON shows it) is an
/// internal carrier rather than a subscription's firing.
fn internal(firing: &Value) -> bool {
    let subject = firing
        .get("target")
        .or_else(|| firing.get("subject"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    subject.starts_with("sbx.") && subject.contains(".in.")
}

/// Puts the per-partition answers of a broadcast verb together.
fn merge(verb: &str, results: BTreeMap<u32, AdminResult>) -> AdminResult {
    let oks: Vec<Value> = results
        .values()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let first_err = results.values().find_map(|r| r.as_ref().err().cloned());
    match verb {
        "firing.show" | "lineage.firing" | "wait.show" | "lineage.wait" | "wait.cancel" => oks
            .into_iter()
            .find(|v| !internal(v.get("firing").unwrap_or(v)))
            .ok_or_else(|| {
                first_err
                    .filter(|e| e.error.code != "not_found")
                    .unwrap_or_else(|| not_found("id", "not found in any partition".into()))
            }),
        "signals.ls" => {
            let mut names: Vec<Value> = oks
                .iter()
                .flat_map(|v| v["names"].as_array().cloned().unwrap_or_default())
                .collect();
            names.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(json!({"names": names}))
        }
        "wait.ls" => {
            let mut waits: Vec<Value> = oks
                .iter()
                .flat_map(|v| v["waits"].as_array().cloned().unwrap_or_default())
                .collect();
            waits.sort_by(|a, b| a["wait"]["id"].as_str().cmp(&b["wait"]["id"].as_str()));
            Ok(json!({"waits": waits}))
        }
        "lineage.sub" => {
            let mut firings: Vec<Value> = oks
                .iter()
                .flat_map(|v| v["firings"].as_array().cloned().unwrap_or_default())
                .filter(|f| !internal(f))
                .collect();
            firings.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
            firings.truncate(1000);
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for f in &firings {
                *counts
                    .entry(f["state"].as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
            let dropped: Vec<Value> = oks
                .iter()
                .flat_map(|v| {
                    v["dropped_partial_joins"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            Ok(json!({"firings": firings, "counts": counts, "dropped_partial_joins": dropped}))
        }
        "signals.search" => {
            let mut signals: Vec<Value> = oks
                .iter()
                .flat_map(|v| v["signals"].as_array().cloned().unwrap_or_default())
                .collect();
            signals.sort_by(|a, b| b["received_at"].as_str().cmp(&a["received_at"].as_str()));
            let scanned: u64 = oks.iter().filter_map(|v| v["scanned"].as_u64()).sum();
            let truncated = oks.iter().any(|v| v["truncated"].as_bool() == Some(true));
            Ok(json!({"signals": signals, "scanned": scanned, "truncated": truncated}))
        }
        "lineage.export" => {
            if oks.iter().any(|v| v.get("dot").is_some()) {
                let dot: Vec<&str> = oks.iter().filter_map(|v| v["dot"].as_str()).collect();
                return Ok(json!({"dot": dot.join("\n")}));
            }
            let mut nodes = BTreeMap::new();
            let mut edges = BTreeSet::new();
            for v in &oks {
                for n in v["nodes"].as_array().into_iter().flatten() {
                    nodes.insert(n["id"].to_string(), n.clone());
                }
                for e in v["edges"].as_array().into_iter().flatten() {
                    edges.insert(e.to_string());
                }
            }
            let edges: Vec<Value> = edges
                .iter()
                .filter_map(|e| serde_json::from_str(e).ok())
                .collect();
            Ok(json!({"nodes": nodes.into_values().collect::<Vec<_>>(), "edges": edges}))
        }
        _ => oks
            .into_iter()
            .next()
            .ok_or_else(|| first_err.unwrap_or_else(|| unavailable("no partition answered"))),
    }
}
