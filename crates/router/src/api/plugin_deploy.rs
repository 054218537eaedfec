//! The plugin admin verbs: `plugin.upload`, `plugin.deploy`, `plugin.ls`,
//! `plugin.inspect`, `plugin.rollback`, `plugin.rm`.
//!
//! A deploy validates first and changes state last: the component is compiled,
//! its world checked and its `describe` called (in `PluginHost::load`), then it
//! is stored in redb (one transaction), then activated: an operator is
//! registered and every subscription and wait using it is re-prepared and
//! swapped whole; an adapter replaces the route's entry. A component that fails
//! validation changes nothing. Subscriptions that no longer prepare with the new
//! version are listed in the reply (`not_reprepared`) and in the log; they keep
//! running on the version they were prepared with until they are fixed or the
//! plugin is rolled back. Rollback and removal go through the same activation.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use signalbox_matcher::BUILTIN_OPERATORS;
use signalbox_model::{ErrorReply, FieldError};
use signalbox_store::{DeployOutcome, PluginRecord, PluginStoreError, PluginVersion};

use super::reply::{AdminResult, invalid, not_found, unavailable};
use crate::plugins::live;
use crate::plugins::upload::{MAX_COMPONENT_BYTES, Piece, valid_id};
use crate::plugins::{Active, LivePlugin, Origin, world_name};
use crate::shared::Shared;

/// A `plugin.deploy` request.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployRequest {
    /// The name to deploy under.
    name: String,
    /// A finished `plugin.upload` id holding the component.
    #[serde(default)]
    upload: Option<String>,
    /// The component inline, base64 (small components, HTTP callers).
    #[serde(default)]
    component: Option<String>,
    /// SHA-256 the client computed, hex; checked when given.
    #[serde(default)]
    sha256: Option<String>,
    /// Settings for `config-get`; none: the config file's entry's settings
    /// when it lists this name, else none.
    #[serde(default)]
    settings: Option<BTreeMap<String, String>>,
}

/// `plugin.upload`: one piece of a component, in order.
pub(crate) fn upload(shared: &Shared, body: &str) -> AdminResult {
    let piece: Piece = serde_json::from_str(body)
        .map_err(|e| invalid(FieldError::new("", format!("not an upload piece: {e}"))))?;
    let id = piece.upload.clone();
    let received = shared.plugins.uploads.add(piece).map_err(invalid)?;
    Ok(json!({"upload": id, "received": received}))
}

/// `plugin.ls`: every live plugin with its summary.
pub(crate) fn list(shared: &Shared) -> serde_json::Value {
    json!({
        "plugins": shared
            .plugins
            .all()
            .iter()
            .map(|(name, p)| p.summary(name))
            .collect::<Vec<_>>()
    })
}

/// `plugin.deploy`: validate, store, activate (module docs).
pub(crate) async fn deploy(shared: &Arc<Shared>, body: &str) -> AdminResult {
    // Decoding and hashing megabytes run off the async threads, which keep
    // the NATS connection read meanwhile.
    let (s, body) = (shared.clone(), body.to_string());
    let (req, bytes, hash) = tokio::task::spawn_blocking(move || decode_deploy(&s, &body))
        .await
        .map_err(|e| unavailable(format!("internal error: {e}")))??;
    deploy_decoded(shared, req, bytes, hash).await
}

/// The deploy request, its component's bytes and their hash, checked.
fn decode_deploy(
    shared: &Shared,
    body: &str,
) -> Result<(DeployRequest, Vec<u8>, String), ErrorReply> {
    let req: DeployRequest = serde_json::from_str(body)
        .map_err(|e| invalid(FieldError::new("", format!("not a deploy request: {e}"))))?;
    let bytes = match (&req.upload, &req.component) {
        (Some(id), None) => {
            if !valid_id(id) {
                return Err(invalid(FieldError::new("upload", "not an upload id")));
            }
            shared.plugins.uploads.take(id).ok_or_else(|| {
                invalid(FieldError::new(
                    "upload",
                    format!(
                        "no upload {id:?} (it is taken by one deploy, and expires after 10 minutes)"
                    ),
                ))
            })?
        }
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| invalid(FieldError::new("component", format!("must be base64: {e}"))))?,
        _ => {
            return Err(invalid(FieldError::new(
                "component",
                "give exactly one of `upload` (an upload id) and `component` (base64)",
            )));
        }
    };
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(invalid(FieldError::new(
            "component",
            format!("larger than {MAX_COMPONENT_BYTES} bytes"),
        )));
    }
    let hash = signalbox_plugin::content_hash(&bytes);
    if let Some(expected) = &req.sha256
        && !expected.eq_ignore_ascii_case(&hash)
    {
        return Err(invalid(FieldError::new(
            "sha256",
            format!(
                "the component received hashes to {hash}, not {expected}: the upload was damaged or mixed up"
            ),
        )));
    }
    Ok((req, bytes, hash))
}

/// `plugin.deploy` once its component is decoded and checked.
async fn deploy_decoded(
    shared: &Arc<Shared>,
    req: DeployRequest,
    bytes: Vec<u8>,
    hash: String,
) -> AdminResult {
    let name = req.name.clone();
    if BUILTIN_OPERATORS.contains(&name.as_str()) {
        return Err(invalid(FieldError::new(
            "name",
            format!("{name:?} is a built-in operator"),
        )));
    }
    let settings = match req.settings {
        Some(s) => s,
        None => shared
            .plugins
            .config_fallback(&name)
            .map(|p| p.settings)
            .unwrap_or_default(),
    };
    let _one_change = shared.plugins.changes.lock().await;
    let host = shared.plugins.host().map_err(unavailable)?;
    let (loaded, bytes) = {
        let (name, settings) = (name.clone(), settings.clone());
        tokio::task::spawn_blocking(move || {
            let loaded = host.load_with_settings(&bytes, &name, settings);
            (loaded, bytes)
        })
        .await
        .map_err(|e| unavailable(format!("internal error: {e}")))?
    };
    let loaded = loaded.map_err(|e| invalid(FieldError::new("component", e.to_string())))?;
    let world = world_name(loaded.world());
    if let Some(current) = shared.plugins.get(&name)
        && current.plugin.world() != world
    {
        return Err(invalid(FieldError::new(
            "name",
            format!(
                "{name:?} is a {} plugin; this component is a {world} plugin (remove it first, or deploy under another name)",
                current.plugin.world()
            ),
        )));
    }
    let version = PluginVersion {
        version: 0,
        hash: loaded.content_hash.clone(),
        size: 0,
        settings: settings.clone(),
        description: json!({
            "name": loaded.description.name,
            "argument_shape": loaded.description.argument_shape,
            "version": loaded.description.version,
        }),
        deployed_at_ms: crate::clock::now_ms(),
    };
    let outcome = {
        let shared = shared.clone();
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            shared.store.deploy_plugin(&name, world, &bytes, version)
        })
        .await
        .map_err(|e| unavailable(format!("internal error: {e}")))?
        .map_err(store_error)?
    };
    let record = outcome.record().clone();
    let unchanged = matches!(outcome, DeployOutcome::Unchanged(_))
        && shared.plugins.get(&name).is_some_and(|p| {
            p.origin
                == Origin::Deployed {
                    version: record.active,
                }
        });
    if unchanged {
        return Ok(json!({
            "outcome": "unchanged",
            "plugin": shared.plugins.get(&name).map(|p| p.summary(&name)),
        }));
    }
    let plugin = live(
        loaded,
        settings,
        Origin::Deployed {
            version: record.active,
        },
    );
    let report = activate(shared, &name, Some(plugin));
    tracing::info!(plugin = %name, version = record.active, hash = %hash, world, "plugin deployed");
    Ok(json!({
        "outcome": "deployed",
        "version": record.active,
        "plugin": shared.plugins.get(&name).map(|p| p.summary(&name)),
        "reprepared": report.0,
        "not_reprepared": report.1,
    }))
}

/// `plugin.rollback`.
pub(crate) async fn rollback(shared: &Arc<Shared>, name: String) -> AdminResult {
    let _one_change = shared.plugins.changes.lock().await;
    let record = stored(shared, &name).await?;
    let earlier = record
        .versions
        .iter()
        .filter(|v| v.version < record.active)
        .max_by_key(|v| v.version)
        .cloned()
        .ok_or_else(|| {
            store_error(PluginStoreError::NoEarlierVersion {
                name: name.clone(),
                active: record.active,
            })
        })?;
    // Load the earlier version before the store switches to it.
    let plugin = load_version(shared, &name, &earlier).await?;
    let rolled = {
        let (shared, name) = (shared.clone(), name.clone());
        tokio::task::spawn_blocking(move || shared.store.rollback_plugin(&name))
            .await
            .map_err(|e| unavailable(format!("internal error: {e}")))?
            .map_err(store_error)?
    };
    let report = activate(shared, &name, Some(plugin));
    tracing::info!(plugin = %name, from = record.active, to = rolled.active, "plugin rolled back");
    Ok(json!({
        "outcome": "rolled_back",
        "version": rolled.active,
        "from": record.active,
        "plugin": shared.plugins.get(&name).map(|p| p.summary(&name)),
        "reprepared": report.0,
        "not_reprepared": report.1,
    }))
}

/// `plugin.rm`.
pub(crate) async fn remove(shared: &Arc<Shared>, name: String) -> AdminResult {
    let _one_change = shared.plugins.changes.lock().await;
    let record = match stored(shared, &name).await {
        Ok(r) => r,
        Err(e) if shared.plugins.config_fallback(&name).is_some() => {
            return Err(invalid(FieldError::new(
                "name",
                format!(
                    "{name:?} is loaded from the config file ([[plugins.*]]), not deployed; remove it there ({})",
                    e.error.message
                ),
            )));
        }
        Err(e) => return Err(e),
    };
    let fallback = shared.plugins.config_fallback(&name);
    if fallback.is_none() {
        let users = users(shared, &name, &record.world);
        if !users.is_empty() {
            return Err(invalid(FieldError::new(
                "name",
                format!("{name:?} is in use by {users:?}; remove or change those first"),
            )));
        }
    }
    {
        let (shared, name) = (shared.clone(), name.clone());
        tokio::task::spawn_blocking(move || shared.store.remove_plugin(&name))
            .await
            .map_err(|e| unavailable(format!("internal error: {e}")))?
            .map_err(store_error)?;
    }
    let restored = fallback.is_some();
    let report = activate(shared, &name, fallback);
    tracing::info!(plugin = %name, versions = record.versions.len(), restored_config = restored, "plugin removed");
    Ok(json!({
        "outcome": "removed",
        "versions": record.versions.len(),
        "config_entry_restored": restored,
        "reprepared": report.0,
        "not_reprepared": report.1,
    }))
}

/// `plugin.inspect`.
pub(crate) async fn inspect(shared: &Arc<Shared>, name: String) -> AdminResult {
    let live = shared.plugins.get(&name);
    let record = {
        let (shared, name) = (shared.clone(), name.clone());
        tokio::task::spawn_blocking(move || shared.store.plugin(&name))
            .await
            .map_err(|e| unavailable(format!("internal error: {e}")))?
            .map_err(unavailable)?
    };
    let Some(live) = live else {
        return Err(not_found(
            "name",
            format!(
                "no plugin {name:?}; plugins: {:?}",
                shared.plugins.all().keys().collect::<Vec<_>>()
            ),
        ));
    };
    let stats = live.plugin.stats();
    // Settings may hold secrets (a webhook secret): only their keys are shown.
    let versions: Vec<serde_json::Value> = record
        .iter()
        .flat_map(|r| r.versions.iter())
        .map(|v| {
            json!({
                "version": v.version,
                "hash": v.hash,
                "size": v.size,
                "setting_keys": v.settings.keys().collect::<Vec<_>>(),
                "description": v.description,
                "deployed_at": signalbox_model::signal::format_rfc3339(v.deployed_at_ms),
                "active": record.as_ref().is_some_and(|r| r.active == v.version),
            })
        })
        .collect();
    let mut out = live.summary(&name);
    if let Some(o) = out.as_object_mut() {
        o.insert(
            "description".into(),
            json!({
                "name": live.description.name,
                "argument_shape": live.description.argument_shape,
                "version": live.description.version,
            }),
        );
        o.insert("imports".into(), json!(live.imports));
        o.insert(
            "setting_keys".into(),
            json!(live.settings.keys().collect::<Vec<_>>()),
        );
        o.insert(
            "stats".into(),
            json!({
                "calls": stats.calls,
                "timeouts": stats.timeouts,
                "out_of_memory": stats.out_of_memory,
                "traps": stats.traps,
                "refused": stats.refused,
                "quarantines": stats.quarantines,
                "instances_created": stats.instances_created,
                "consecutive_failures": stats.consecutive_failures,
                "quarantined": stats.quarantined,
            }),
        );
        o.insert("versions".into(), json!(versions));
        o.insert(
            "used_by".into(),
            json!(users(shared, &name, live.plugin.world())),
        );
    }
    Ok(json!({"plugin": out}))
}

/// The stored record of a deployed plugin, or `not_found`.
async fn stored(shared: &Arc<Shared>, name: &str) -> Result<PluginRecord, ErrorReply> {
    let (s, n) = (shared.clone(), name.to_string());
    tokio::task::spawn_blocking(move || s.store.plugin(&n))
        .await
        .map_err(|e| unavailable(format!("internal error: {e}")))?
        .map_err(unavailable)?
        .ok_or_else(|| not_found("name", format!("no deployed plugin {name:?}")))
}

/// Loads one stored version (validating it again).
async fn load_version(
    shared: &Arc<Shared>,
    name: &str,
    version: &PluginVersion,
) -> Result<LivePlugin, ErrorReply> {
    let host = shared.plugins.host().map_err(unavailable)?;
    let (s, n, v) = (shared.clone(), name.to_string(), version.clone());
    tokio::task::spawn_blocking(move || {
        let bytes = s
            .store
            .plugin_blob(&v.hash)
            .map_err(unavailable)?
            .ok_or_else(|| {
                unavailable(format!("component {} is missing from the store", v.hash))
            })?;
        let loaded = host
            .load_with_settings(&bytes, &n, v.settings.clone())
            .map_err(|e| {
                invalid(FieldError::new(
                    "version",
                    format!("version {} no longer loads: {e}", v.version),
                ))
            })?;
        Ok(live(
            loaded,
            v.settings.clone(),
            Origin::Deployed { version: v.version },
        ))
    })
    .await
    .map_err(|e| unavailable(format!("internal error: {e}")))?
}

/// What uses plugin `name`: subscriptions and waits (operators), Kafka and
/// SNS sources (adapters).
fn users(shared: &Shared, name: &str, world: &str) -> Vec<String> {
    if world == "operator" {
        return shared.catalog.operator_users(name);
    }
    let sources = &shared.config.sources;
    let mut out: Vec<String> = sources
        .kafka
        .iter()
        .filter(|s| s.adapter == name)
        .map(|s| format!("sources.kafka[{}]", s.name))
        .collect();
    out.extend(
        sources
            .sns
            .iter()
            .filter(|s| s.adapter == name)
            .map(|s| format!("sources.sns[{}]", s.name)),
    );
    out
}

/// Makes `plugin` active under `name` (`None`: gone). For operators, registers
/// it and re-prepares its users; returns `(reprepared, not_reprepared)`.
fn activate(
    shared: &Shared,
    name: &str,
    plugin: Option<LivePlugin>,
) -> (Vec<String>, Vec<serde_json::Value>) {
    let was_operator = shared
        .plugins
        .get(name)
        .is_some_and(|p| matches!(p.plugin, Active::Operator(_)));
    let operator = plugin.as_ref().and_then(|p| match &p.plugin {
        Active::Operator(o) => Some(o.clone()),
        Active::Adapter(_) => None,
    });
    shared.plugins.set(name, plugin);
    shared.metrics.set_plugins(shared.plugins.metered());
    match operator {
        Some(op) => {
            if let Err(e) = shared.catalog.register_operator(op) {
                // Checked before storing (built-in names); never expected here.
                tracing::error!(plugin = %name, error = %e, "cannot register the operator");
            }
        }
        None if was_operator => {
            shared.catalog.unregister_operator(name);
            return (Vec::new(), Vec::new());
        }
        None => return (Vec::new(), Vec::new()),
    }
    let report = shared.catalog.reprepare(name);
    let failed: Vec<serde_json::Value> = report
        .failed
        .iter()
        .map(|(id, e)| {
            tracing::warn!(plugin = %name, subscription = %id, field = %e.field, rule = %e.rule, "subscription no longer prepares with the new plugin version; it keeps the previous one");
            json!({"id": id, "field": e.field, "rule": e.rule})
        })
        .collect();
    (report.reprepared, failed)
}

fn store_error(e: PluginStoreError) -> ErrorReply {
    match e {
        PluginStoreError::NotFound(name) => {
            not_found("name", format!("no deployed plugin {name:?}"))
        }
        e @ PluginStoreError::WorldChange { .. } => invalid(FieldError::new("name", e.to_string())),
        e @ PluginStoreError::NoEarlierVersion { .. } => {
            invalid(FieldError::new("name", e.to_string()))
        }
        e => unavailable(e.to_string()),
    }
}
