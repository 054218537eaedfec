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

/// Every admin verb, in the order of the table above: one NATS service
/// endpoint each, one HTTP route each (`POST /v1/admin/{verb}`).
pub const VERBS: &[&str] = &[
    "sub.add",
    "sub.ls",
    "sub.show",
    "sub.rm",
    "signals.ls",
    "signals.show",
    "signals.search",
    "firing.show",
    "explain",
    "wait.show",
    "wait.ls",
    "wait.cancel",
    "lineage.signal",
    "lineage.sub",
    "lineage.firing",
    "lineage.wait",
    "lineage.export",
    "replay",
    "plugin.upload",
    "plugin.deploy",
    "plugin.ls",
    "plugin.inspect",
    "plugin.rollback",
    "plugin.rm",
];

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
        "signals.ls" => signals_ls(shared, &body).await,
        "signals.show" => signals_show(shared, &body).await,
        "signals.search" => signals_search(shared, &body).await,
        "firing.show" => {
            blocking(shared, move |s| {
                match s.store.firing(&body).map_err(unavailable)? {
                    Some(f) => Ok(json!({"firing": f})),
                    None => Err(not_found("id", format!("no firing {body:?}"))),
                }
            })
            .await
        }
        "explain" => explain(shared, &body).await,
        "wait.show" => {
            blocking(shared, move |s| {
                match s.store.wait(&body).map_err(unavailable)? {
                    Some(w) => Ok(json!({"wait": w})),
                    None => Err(not_found("id", format!("no wait {body:?}"))),
                }
            })
            .await
        }
        "wait.ls" => {
            blocking(shared, move |s| {
                let waiting_only = body == "waiting";
                Ok(json!({"waits": s.store.waits(waiting_only).map_err(unavailable)?}))
            })
            .await
        }
        "wait.cancel" => super::waits::cancel(shared, body).await,
        "lineage.signal" => lineage_signal(shared, &body).await,
        "lineage.sub" => blocking(shared, move |s| {
            crate::api::lineage::subscription_lineage(&s.store, &body, 1000).map_err(unavailable)
        })
        .await,
        "lineage.firing" => blocking(shared, move |s| match s.store.firing(&body).map_err(unavailable)? {
            Some(f) => Ok(crate::api::lineage::firing_summary(&f)),
            None => Err(not_found("id", format!("no firing {body:?}"))),
        })
        .await,
        "lineage.wait" => blocking(shared, move |s| match s.store.wait(&body).map_err(unavailable)? {
            Some(w) => Ok(json!({"wait": w.wait.id, "consumer": w.wait.consumer, "state": w.state, "registered_at": signalbox_model::signal::format_rfc3339(w.registered_at_ms)})),
            None => Err(not_found("id", format!("no wait {body:?}"))),
        })
        .await,
        "lineage.export" => lineage_export(shared, &body).await,
        "replay" => replay(shared, &body).await,
        "plugin.upload" => plugin_deploy::upload(shared, &body),
        "plugin.deploy" => plugin_deploy::deploy(shared, &body).await,
        "plugin.ls" => Ok(plugin_deploy::list(shared)),
        "plugin.inspect" => plugin_deploy::inspect(shared, body).await,
        "plugin.rollback" => plugin_deploy::rollback(shared, body).await,
        "plugin.rm" => plugin_deploy::remove(shared, body).await,
        other => Err(ErrorReply::invalid(&FieldError::new(
            "subject",
            format!("unknown admin verb {other:?}; verbs are {}", VERBS.join(", ")),
        ))),
    }
}

async fn sub_add(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let sub = Subscription::from_yaml(body).map_err(invalid)?;
    add_subscription(shared, sub).await
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

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignalsQuery {
    name: Option<String>,
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn signals_ls(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let q: SignalsQuery = if body.is_empty() {
        SignalsQuery::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{\"name\", \"after\", \"limit\"}}: {e}"),
            ))
        })?
    };
    blocking(shared, move |s| match q.name {
        None => {
            let names = s.store.signal_names().map_err(unavailable)?;
            Ok(json!({"names": names.into_iter().map(|(name, last_seq)| json!({"name": name, "last_seq": last_seq})).collect::<Vec<_>>()}))
        }
        Some(name) => {
            let list = s
                .store
                .signals(&name, q.after, q.limit.unwrap_or(100).min(10_000))
                .map_err(unavailable)?;
            Ok(json!({"signals": list}))
        }
    })
    .await
}

/// A reference to one stored signal: `NAME:SEQ`, or a JSON object.
enum SignalKey {
    Seq(String, u64),
    Id(String, String),
}

fn parse_signal_key(body: &str) -> Result<SignalKey, ErrorReply> {
    if body.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| invalid(FieldError::new("", format!("not valid JSON: {e}"))))?;
        let name = v
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| invalid(FieldError::new("name", "required")))?
            .to_string();
        if let Some(seq) = v.get("seq").and_then(serde_json::Value::as_u64) {
            return Ok(SignalKey::Seq(name, seq));
        }
        if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
            return Ok(SignalKey::Id(name, id.to_string()));
        }
        return Err(invalid(FieldError::new("seq", "give seq or id")));
    }
    let (name, seq) = body.rsplit_once(':').ok_or_else(|| {
        invalid(FieldError::new(
            "signal",
            "expected NAME:SEQ, e.g. table_updated:42",
        ))
    })?;
    let seq = seq.parse::<u64>().map_err(|_| {
        invalid(FieldError::new(
            "signal",
            format!("{seq:?} is not a sequence number"),
        ))
    })?;
    Ok(SignalKey::Seq(name.to_string(), seq))
}

fn load_signal(s: &Shared, key: &SignalKey) -> Result<signalbox_model::SignalInstance, ErrorReply> {
    let found = match key {
        SignalKey::Seq(name, seq) => s.store.signal(name, *seq),
        SignalKey::Id(name, id) => s.store.signal_by_id(name, id),
    }
    .map_err(unavailable)?;
    found.ok_or_else(|| {
        let what = match key {
            SignalKey::Seq(n, q) => format!("{n}:{q}"),
            SignalKey::Id(n, i) => format!("{n} with id {i:?}"),
        };
        not_found("signal", format!("no stored signal {what}"))
    })
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

async fn lineage_signal(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let key = parse_signal_key(body)?;
    blocking(shared, move |s| {
        let inst = load_signal(s, &key)?;
        crate::api::lineage::signal_lineage(&s.store, &inst).map_err(unavailable)
    })
    .await
}

async fn lineage_export(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let q: crate::api::lineage::ExportQuery = if body.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{format, since, until, signal, sub, firing, limit}}: {e}"),
            ))
        })?
    };
    blocking(shared, move |s| {
        let graph = crate::api::lineage::export(&s.store, &q).map_err(|e| match e {
            crate::api::lineage::ExportError::Invalid { field, rule } => {
                invalid(FieldError::new(field, rule))
            }
            other => unavailable(other),
        })?;
        match q.format.as_deref().unwrap_or("json") {
            "json" => Ok(graph.to_json()),
            "dot" => Ok(json!({"dot": graph.to_dot()})),
            other => Err(invalid(FieldError::new(
                "format",
                format!("{other:?} is not json or dot"),
            ))),
        }
    })
    .await
}

async fn signals_search(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let q: crate::api::lineage::SearchQuery = if body.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{\"name\", \"where\", \"limit\"}}: {e}"),
            ))
        })?
    };
    blocking(shared, move |s| {
        crate::api::lineage::search(&s.store, &q).map_err(|e| match e {
            crate::api::lineage::ExportError::Invalid { field, rule } => {
                invalid(FieldError::new(field, rule))
            }
            other => unavailable(other),
        })
    })
    .await
}

async fn signals_show(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let key = parse_signal_key(body)?;
    blocking(shared, move |s| {
        Ok(json!({"signal": load_signal(s, &key)?}))
    })
    .await
}

async fn explain(shared: &Arc<Shared>, body: &str) -> AdminResult {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        invalid(FieldError::new(
            "",
            format!("expected {{\"sub\", \"signal\"}}: {e}"),
        ))
    })?;
    let sub = v
        .get("sub")
        .and_then(|s| s.as_str())
        .ok_or_else(|| invalid(FieldError::new("sub", "required")))?
        .to_string();
    let signal = v
        .get("signal")
        .and_then(|s| s.as_str())
        .ok_or_else(|| invalid(FieldError::new("signal", "required: NAME:SEQ")))?;
    let key = parse_signal_key(signal)?;
    blocking(shared, move |s| {
        let instance = load_signal(s, &key)?;
        let compiled = s
            .catalog
            .get(&sub)
            .ok_or_else(|| not_found("sub", format!("no subscription {sub:?}")))?;
        let Some((alias, explanation)) = s.catalog.explain(&sub, &instance) else {
            let wanted: Vec<&str> = compiled
                .subscription
                .signals
                .iter()
                .map(|sp| sp.name.as_str())
                .collect();
            return Ok(json!({
                "matches": false,
                "verdict": format!(
                    "{}:{} cannot fire {sub}: the subscription waits for {wanted:?}, not {:?}",
                    instance.signal.name, instance.seq, instance.signal.name
                ),
                "explain": [],
            }));
        };
        let fed: Vec<String> = s
            .store
            .firings_of_signal(&instance.signal.name, instance.seq)
            .map_err(unavailable)?
            .into_iter()
            .filter(|f| f.firing.subscription == sub)
            .map(|f| f.firing.firing_id)
            .collect();
        let mut out = json!({
            "matches": explanation.matched,
            "alias": alias,
            "explain": explanation.conditions,
            "firings": fed,
        });
        let name = format!("{}:{}", instance.signal.name, instance.seq);
        let mut verdict = if !explanation.matched {
            let failed: Vec<String> = explanation
                .conditions
                .iter()
                .filter(|c| c.verdict == signalbox_matcher::Verdict::Failed)
                .map(|c| c.path.clone())
                .collect();
            format!("{name} does not match {sub}: the condition(s) on {} failed", failed.join(", "))
        } else if !fed.is_empty() {
            format!("{name} matched {sub} and fed firing {}", fed.join(", "))
        } else {
            format!("{name} matched {sub} but fed no firing")
        };
        if let Some(join) = &compiled.subscription.join {
            let key = join.key_for(&alias, &instance.signal.params);
            let pending = s
                .store
                .pending_joins(&sub, compiled.subscription.version)
                .map_err(unavailable)?;
            let waiting_here: Vec<_> = pending
                .iter()
                .filter(|p| Some(&p.key) == key.as_ref())
                .collect();
            let present: std::collections::BTreeSet<&str> =
                waiting_here.iter().map(|p| p.alias.as_str()).collect();
            let missing: Vec<&str> = compiled
                .subscription
                .signals
                .iter()
                .map(|sp| sp.alias.as_str())
                .filter(|a| !present.contains(a))
                .collect();
            let this_waits = waiting_here
                .iter()
                .any(|p| p.name == instance.signal.name && p.seq == instance.seq);
            out["join"] = json!({
                "key": key,
                "within_ms": join.within_ms,
                "waiting": waiting_here,
                "missing": missing,
            });
            if explanation.matched && fed.is_empty() {
                verdict = match (&key, this_waits) {
                    (None, _) => format!("{name} matched {sub} but lacks its join key ({})", join.paths_for(&alias).collect::<Vec<_>>().join(", ")),
                    (Some(k), true) => format!("{name} matched {sub} and waits to join on key {k}: still missing {}", missing.join(", ")),
                    (Some(k), false) => format!("{name} matched {sub} on key {k} but is no longer waiting (consumed by another firing, expired after within, or from an older version)"),
                };
            }
        }
        if let Some(value) = compiled.dedup_value(&[(alias.as_str(), &instance)]) {
            let fid = signalbox_model::dedup_firing_id(&sub, &value);
            let existing = s.store.firing(&fid).map_err(unavailable)?;
            out["dedup"] = json!({"value": value, "firing_id": fid, "fired": existing.is_some()});
            if explanation.matched && fed.is_empty() && existing.is_some() && compiled.subscription.join.is_none() {
                verdict = format!("{name} matched {sub} but dedup value {value:?} already fired as {fid}");
            }
        }
        out["verdict"] = json!(verdict);
        Ok(out)
    })
    .await
}
