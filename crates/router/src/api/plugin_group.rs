//! Group mode: a plugin deploy, rollback or removal reaches every router of
//! the group. The router that takes the verb does it locally (as a router
//! alone does) and then writes the group's wish for that plugin — its active
//! component's hash and settings, or that it is gone — to KV
//! `SBX_<GROUP>_PLUGINS`, with the component itself in the object store
//! `SBX_<GROUP>_BLOBS` under its hash. Every router watches the bucket and
//! brings its own plugin in line (deploying the wished component from the
//! object store, or removing it), so all converge, routers started later
//! included. Version numbers are each router's own history: a rollback on one
//! router is a deploy of the earlier component on the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::reply::{AdminResult, unavailable};
use crate::group::Group;
use crate::shared::Shared;

/// The group's wish for one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Wish {
    /// Removed from the group.
    #[serde(default)]
    removed: bool,
    /// The active component's SHA-256.
    #[serde(default)]
    hash: String,
    /// Its settings.
    #[serde(default)]
    settings: BTreeMap<String, String>,
}

/// After a local plugin verb succeeded: writes the group's wish for `name`
/// from this router's record (module docs).
pub(crate) async fn publish(shared: &Arc<Shared>, group: &Group, name: &str) -> AdminResult {
    let (store, n) = (shared.store.clone(), name.to_string());
    let record = tokio::task::spawn_blocking(move || store.plugin(&n))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    let wish = match record.as_ref().and_then(|r| r.active_version().cloned()) {
        None => Wish {
            removed: true,
            hash: String::new(),
            settings: BTreeMap::new(),
        },
        Some(v) => {
            let blobs = &group.joined.plugin_blobs;
            if blobs.info(&v.hash).await.is_err() {
                let (store, hash) = (shared.store.clone(), v.hash.clone());
                let bytes = tokio::task::spawn_blocking(move || store.plugin_blob(&hash))
                    .await
                    .map_err(unavailable)?
                    .map_err(unavailable)?
                    .ok_or_else(|| {
                        unavailable(format!("component {} is not stored here", v.hash))
                    })?;
                blobs
                    .put(v.hash.as_str(), &mut bytes.as_slice())
                    .await
                    .map_err(|e| unavailable(format!("cannot share the component: {e}")))?;
            }
            Wish {
                removed: false,
                hash: v.hash.clone(),
                settings: v.settings.clone(),
            }
        }
    };
    let body = serde_json::to_vec(&wish).map_err(unavailable)?;
    group
        .joined
        .plugins
        .put(name, body.into())
        .await
        .map_err(|e| unavailable(format!("cannot share the plugin with the group: {e}")))?;
    Ok(json!({"group": group.config.group}))
}

/// Brings this router's plugins in line with the group's wishes until
/// shutdown.
pub(crate) async fn watch(
    shared: Arc<Shared>,
    group: Arc<Group>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut entries = match group.joined.plugins.watch_with_history(">").await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the group's plugins");
            return;
        }
    };
    loop {
        let entry = tokio::select! {
            e = entries.next() => e,
            _ = shutdown.changed() => return,
        };
        let Some(Ok(entry)) = entry else {
            return;
        };
        let Ok(wish) = serde_json::from_slice::<Wish>(&entry.value) else {
            continue;
        };
        if let Err(e) = align(&shared, &group, &entry.key, &wish).await {
            tracing::warn!(plugin = %entry.key, error = %e.error.message, "plugin not brought in line with the group");
        }
    }
}

/// Deploys or removes `name` here when it differs from the group's wish.
async fn align(shared: &Arc<Shared>, group: &Group, name: &str, wish: &Wish) -> AdminResult {
    let live = shared.plugins.get(name);
    let deployed_here = matches!(
        live.as_ref().map(|p| &p.origin),
        Some(crate::plugins::Origin::Deployed { .. })
    );
    if wish.removed {
        if deployed_here {
            return super::plugin_deploy::remove(shared, name.to_string()).await;
        }
        return Ok(json!({"outcome": "unchanged"}));
    }
    if live
        .as_ref()
        .is_some_and(|p| deployed_here && p.hash == wish.hash && p.settings == wish.settings)
    {
        return Ok(json!({"outcome": "unchanged"}));
    }
    let mut object = group
        .joined
        .plugin_blobs
        .get(wish.hash.as_str())
        .await
        .map_err(|e| unavailable(format!("component {}: {e}", wish.hash)))?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| unavailable(format!("component {}: {e}", wish.hash)))?;
    let body = json!({
        "name": name,
        "component": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "sha256": wish.hash,
        "settings": wish.settings,
    });
    let done = super::plugin_deploy::deploy(shared, &body.to_string()).await?;
    tracing::info!(plugin = %name, hash = %wish.hash, "plugin brought in line with the group");
    Ok(done)
}
