//! The admin verbs, shared by the NATS micro service (`service_api.rs`,
//! subjects `<admin_prefix>.<verb>`) and the HTTP API (`http.rs`).
//!
//! | subject suffix | request body | reply |
//! |---|---|---|
//! | `sub.add` | a subscription, YAML or JSON | `{"outcome": "created"\|"updated"\|"unchanged", "subscription": {...}}` |
//! | `sub.ls` | empty | `{"subscriptions": [...]}` |
//! | `sub.show` | the id | `{"subscription": {...}}` |
//! | `sub.rm` | the id | `{"removed": true\|false}` |
//! | `signals.ls` | `{"name"?, "after"?, "limit"?}` | `{"names": [{"name", "last_seq"}]}` or `{"signals": [...]}` |
//! | `signals.show` | `NAME:SEQ` or `{"name", "seq"}` or `{"name", "id"}` | `{"signal": {...}}` |
//! | `signals.search` | `{"name"?, "where"?: pattern, "limit"?}` | `{"signals": [{signal, id, params, matched, firings, …}], "scanned", "truncated"}`, newest first |
//! | `firing.show` | the firing id | `{"firing": {...}}` |
//! | `explain` | `{"sub": ID, "signal": "NAME:SEQ"}` | `{"matches", "explain", "verdict", "join"?, "dedup"?}` |
//! | `wait.show` | the wait id | `{"wait": {...}}` |
//! | `wait.ls` | empty, or `waiting` | `{"waits": [...]}` |
//! | `wait.cancel` | the wait id | `{"wait": {...}}` (answered `cancelled` unless already answered) |
//! | `lineage.signal` | `NAME:SEQ` | producer, origin, matched subscriptions, firings fed, waits satisfied |
//! | `lineage.sub` | the id | its firings (newest first) with inputs, target, state, attempts |
//! | `lineage.firing` | the firing id | inputs, target, delivery state, attempts |
//! | `lineage.wait` | the wait id | consumer, state, the signals that satisfied it |
//! | `replay` | `{sub, since?, until?, cursor?, limit?}` | one page: `{processed, matched, fired, cursor, position, total}` |
//! | `plugin.upload` | `{"upload": ID, "offset", "data": base64}` | `{"upload", "received"}` (pieces in order; see `plugins/upload.rs`) |
//! | `plugin.deploy` | `{"name", "upload"? \| "component"? (base64), "sha256"?, "settings"?}` | `{"outcome": "deployed"\|"unchanged", "version", "plugin", "reprepared", "not_reprepared"}` |
//! | `plugin.ls` | empty | `{"plugins": [{name, world, hash, plugin_version, source, calls, quarantined}]}` |
//! | `plugin.inspect` | the name | `{"plugin": {..., description, imports, setting_keys, stats, versions, used_by}}` |
//! | `plugin.rollback` | the name | `{"outcome": "rolled_back", "version", "from", "reprepared", "not_reprepared"}` |
//! | `plugin.rm` | the name | `{"outcome": "removed", "versions", "config_entry_restored", ...}` (refused while in use) |
//! | `cluster.status` | empty | `{"mode": "single"}`, or in a group its members, each partition's owner, lease, positions and lag |
//! | `lineage.export` | `{format: json\|dot, since?, until?, signal?, sub?, firing?, limit?}` | `{nodes, edges}` or `{dot}` |
//!
//! Every failure is `{"error": {"code", "field", "rule", "message"}}`; `code` is
//! `invalid` (fix the request), `not_found`, or `unavailable` (try again). A
//! subscription is compiled before it is stored, so one that does not parse is
//! rejected without touching the store or the live catalog.

use std::sync::Arc;

use serde_json::json;
use signalbox_model::{ErrorReply, FieldError, Subscription};
use signalbox_store::PutOutcome;

use super::plugin_deploy;
use super::reply::{AdminResult, blocking, invalid, not_found, unavailable};
use crate::shared::Shared;

/// The admin verbs of this module; the data verbs (`super::data::VERBS`)
/// complete the set ([`verbs`]).
const OWN_VERBS: &[&str] = &[
    "sub.add",
    "sub.ls",
    "sub.show",
    "sub.rm",
    "wait.cancel",
    "replay",
    "plugin.upload",
    "plugin.deploy",
    "plugin.ls",
    "plugin.inspect",
    "plugin.rollback",
    "plugin.rm",
    "cluster.status",
];

/// Every admin verb: one NATS service endpoint each, one HTTP route each
/// (`POST /v1/admin/{verb}`).
pub fn verbs() -> impl Iterator<Item = &'static str> {
    OWN_VERBS.iter().chain(super::data::VERBS).copied()
}

/// Runs one admin verb (shared by the NATS and the HTTP admin API).
pub(crate) async fn dispatch(shared: &Arc<Shared>, verb: &str, body: String) -> AdminResult {
    match verb {
        "sub.add" => sub_add(shared, &body).await,
        "sub.ls" | "sub.show" | "sub.rm" if shared.group.is_some() => {
            group_subs(shared, verb, body).await
        }
        "sub.ls" => {
            blocking(shared, |s| {
                Ok(json!({"subscriptions": s.store.subscriptions().map_err(unavailable)?}))
            })
            .await
        }
        "sub.show" => {
            blocking(shared, move |s| {
                match s.store.subscription(&body).map_err(unavailable)? {
                    Some(sub) => Ok(json!({"subscription": sub})),
                    None => Err(not_found("id", format!("no subscription {body:?}"))),
                }
            })
            .await
        }
        "sub.rm" => sub_rm(shared, body).await,
        "wait.cancel" => super::waits::cancel(shared, body).await,
        "cluster.status" => match &shared.group {
            None => Ok(json!({"mode": "single"})),
            Some(group) => super::group_query::status(shared, group).await,
        },
        data if super::data::VERBS.contains(&data) => match &shared.group {
            None => {
                let verb = data.to_string();
                blocking(shared, move |s| {
                    super::data::run(&s.store, &s.catalog, &verb, &body)
                })
                .await
            }
            Some(group) => super::group_query::ask(shared, group, data, &body).await,
        },
        "replay" if shared.group.is_some() => Err(unavailable(
            "replay is not available in group mode yet: the signals of a subscription are spread over partitions (docs/SCALING.md, limits)",
        )),
        "replay" => replay(shared, &body).await,
        // A piece is megabytes of base64 in JSON: decoded off the async
        // threads, which keep the NATS connection read meanwhile.
        "plugin.upload" => {
            let s = shared.clone();
            tokio::task::spawn_blocking(move || plugin_deploy::upload(&s, &body))
                .await
                .map_err(|e| unavailable(format!("internal error: {e}")))?
        }
        "plugin.deploy" => {
            let done = plugin_deploy::deploy(shared, &body).await?;
            let name = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["name"].as_str().map(str::to_string))
                .unwrap_or_default();
            shared_with_group(shared, &name, done).await
        }
        "plugin.ls" => Ok(plugin_deploy::list(shared)),
        "plugin.inspect" => plugin_deploy::inspect(shared, body).await,
        "plugin.rollback" => {
            let done = plugin_deploy::rollback(shared, body.clone()).await?;
            shared_with_group(shared, &body, done).await
        }
        "plugin.rm" => {
            let done = plugin_deploy::remove(shared, body.clone()).await?;
            shared_with_group(shared, &body, done).await
        }
        other => Err(ErrorReply::invalid(&FieldError::new(
            "subject",
            format!(
                "unknown admin verb {other:?}; verbs are {}",
                verbs().collect::<Vec<_>>().join(", ")
            ),
        ))),
    }
}

async fn sub_add(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let sub = Subscription::from_yaml(body).map_err(invalid)?;
    add_subscription(shared, sub).await
}

/// In a group, shares the plugin verb's result with every router
/// (`plugin_group.rs`) and says so in the reply.
async fn shared_with_group(
    shared: &Arc<Shared>,
    name: &str,
    mut done: serde_json::Value,
) -> AdminResult {
    if let Some(group) = &shared.group {
        let shared_to = super::plugin_group::publish(shared, group, name).await?;
        if let Some(o) = done.as_object_mut() {
            o.insert("group".into(), shared_to["group"].clone());
        }
    }
    Ok(done)
}

/// Compiles, stores and activates a subscription (used by `sub.add` and at start).
pub(crate) async fn add_subscription(shared: &Arc<Shared>, sub: Subscription) -> AdminResult {
    shared.catalog.compile(&sub).map_err(invalid)?;
    if let Some(group) = &shared.group {
        // The group's bucket is the truth; every router's watcher applies it.
        let (outcome, stored) = crate::group::subs::put(&group.joined.subs, &sub)
            .await
            .map_err(unavailable)?;
        let word = match outcome {
            crate::group::subs::PutOutcome::Created(_) => "created",
            crate::group::subs::PutOutcome::Updated(_) => "updated",
            crate::group::subs::PutOutcome::Unchanged(_) => "unchanged",
        };
        shared
            .catalog
            .insert(shared.catalog.compile(&stored).map_err(invalid)?);
        tracing::info!(subscription = %stored.id, version = stored.version, outcome = word, "group subscription saved");
        return Ok(json!({"outcome": word, "subscription": stored}));
    }
    blocking(shared, move |s| {
        let outcome = s.store.put_subscription(sub.clone()).map_err(unavailable)?;
        let (word, version) = match outcome {
            PutOutcome::Created(v) => ("created", v),
            PutOutcome::Updated(v) => ("updated", v),
            PutOutcome::Unchanged(v) => ("unchanged", v),
        };
        let mut stored = sub;
        stored.version = version;
        let compiled = s.catalog.compile(&stored).map_err(invalid)?;
        s.catalog.insert(compiled);
        tracing::info!(subscription = %stored.id, version, outcome = word, "subscription saved");
        Ok(json!({"outcome": word, "subscription": stored}))
    })
    .await
}

/// `sub.ls`, `sub.show`, `sub.rm` in a group: the group's bucket.
async fn group_subs(shared: &Arc<Shared>, verb: &str, body: String) -> AdminResult {
    let Some(group) = &shared.group else {
        return Err(unavailable("not in a group"));
    };
    let bucket = &group.joined.subs;
    match verb {
        "sub.ls" => Ok(
            json!({"subscriptions": crate::group::subs::list(bucket).await.map_err(unavailable)?}),
        ),
        "sub.show" => match crate::group::subs::get(bucket, &body)
            .await
            .map_err(unavailable)?
        {
            Some(sub) => Ok(json!({"subscription": sub})),
            None => Err(not_found("id", format!("no subscription {body:?}"))),
        },
        _ => {
            if crate::group::subs::remove(bucket, &body)
                .await
                .map_err(unavailable)?
            {
                shared.catalog.remove(&body);
                tracing::info!(subscription = %body, "group subscription removed");
                Ok(json!({"removed": true}))
            } else {
                Err(not_found("id", format!("no subscription {body:?}")))
            }
        }
    }
}

async fn sub_rm(shared: &Arc<Shared>, id: String) -> AdminResult {
    blocking(shared, move |s| {
        let removed = s.store.delete_subscription(&id).map_err(unavailable)?;
        s.catalog.remove(&id);
        if removed {
            tracing::info!(subscription = %id, "subscription removed");
            Ok(json!({"removed": true}))
        } else {
            Err(not_found("id", format!("no subscription {id:?}")))
        }
    })
    .await
}

async fn replay(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let req: crate::api::replay::ReplayRequest = serde_json::from_str(body).map_err(|e| {
        invalid(FieldError::new(
            "",
            format!("expected {{sub, since?, until?, cursor?, limit?}}: {e}"),
        ))
    })?;
    blocking(shared, move |s| {
        crate::api::replay::page(s, &req).map_err(|e| match e {
            crate::api::replay::ReplayError::Invalid(f) => invalid(f),
            crate::api::replay::ReplayError::NotFound(id) => {
                not_found("sub", format!("no subscription {id:?}"))
            }
            other => unavailable(other),
        })
    })
    .await
}
