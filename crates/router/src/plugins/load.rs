//! Loading the plugins at start: the config file's `[[plugins.*]]` entries,
//! then the active version of every runtime deploy stored in redb (which wins
//! over a config entry of the same name). Operator plugins become custom
//! operators of the matcher, source adapters webhook routes and decoders.
//!
//! The host (crate `signalbox-plugin`) compiles each component once and caches
//! the compiled artefact under `<data_dir>/plugin-cache`, so a restart does not
//! pay the compile again. A plugin that fails to load (missing file, wrong
//! world, a trap in `describe`) fails the start with an error naming it: a
//! router that silently lacks an operator would reject subscriptions later.
//! So does a stored deploy whose component no longer loads (a wasmtime upgrade
//! that refuses it, say): the error names it and `plugin rm` is the way out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use signalbox_matcher::OperatorRegistry;
use signalbox_plugin::{HostConfig, LoadedPlugin, PluginHost, PluginKind};
use signalbox_store::Store;

use super::live::{Active, LivePlugin, LivePlugins, Origin, world_name};
use crate::config::RouterConfig;

/// Why a configured plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    /// The plugin host could not start.
    #[error("cannot start the plugin host: {0}")]
    Host(String),
    /// The component file could not be read.
    #[error("plugins.{kind}[{name}]: cannot read {file}: {source}")]
    Read {
        /// `operators` or `adapters`.
        kind: &'static str,
        /// The plugin name.
        name: String,
        /// The file.
        file: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A stored deploy could not be read or did not load.
    #[error("deployed plugin {name}: {message} (remove it with `signalbox plugin rm {name}`)")]
    Deployed {
        /// The plugin name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The component did not load (compile, link, describe).
    #[error("plugins.{kind}[{name}]: {message}")]
    Load {
        /// `operators` or `adapters`.
        kind: &'static str,
        /// The plugin name.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// The host configuration of this router's plugins.
pub(crate) fn host_config(config: &RouterConfig) -> HostConfig {
    let p = &config.plugins;
    HostConfig {
        cache_dir: Some(config.data_dir.join("plugin-cache")),
        signal_limits: config.limits,
        operator_deadline: p.operator_deadline,
        prepare_deadline: p.prepare_deadline,
        adapter_deadline: p.adapter_deadline,
        max_memory_bytes: p.max_memory_mib.saturating_mul(1024 * 1024),
        quarantine_after: p.quarantine_after,
        ..HostConfig::default()
    }
}

/// Turns a loaded plugin into a live one.
pub(crate) fn live(
    loaded: LoadedPlugin,
    settings: BTreeMap<String, String>,
    origin: Origin,
) -> LivePlugin {
    LivePlugin {
        plugin: match loaded.kind {
            PluginKind::Operator(o) => Active::Operator(o),
            PluginKind::Adapter(a) => Active::Adapter(a),
        },
        hash: loaded.content_hash,
        description: loaded.description,
        imports: loaded.imports,
        settings,
        origin,
    }
}

/// Loads the configured plugins, then the stored deploys; registers every
/// active operator into `operators`.
pub(crate) async fn load(
    config: &RouterConfig,
    store: &Arc<Store>,
    operators: &mut OperatorRegistry,
) -> Result<LivePlugins, PluginLoadError> {
    let plugins = config.plugins.clone();
    let host_config = host_config(config);
    let stored = store.plugins().map_err(|e| PluginLoadError::Deployed {
        name: "*".into(),
        message: format!("cannot read the deployed plugins: {e}"),
    })?;
    if plugins.operators.is_empty() && plugins.adapters.is_empty() && stored.is_empty() {
        return Ok(LivePlugins::new(
            None,
            host_config,
            BTreeMap::new(),
            BTreeMap::new(),
        ));
    }
    let store = store.clone();
    let hc = host_config.clone();
    let (host, from_config, active) = tokio::task::spawn_blocking(move || {
        let host = PluginHost::new(hc).map_err(|e| PluginLoadError::Host(e.to_string()))?;
        let mut from_config = BTreeMap::new();
        for (kind, entries) in [("operators", &plugins.operators), ("adapters", &plugins.adapters)] {
            for entry in entries {
                let bytes = std::fs::read(&entry.file).map_err(|source| PluginLoadError::Read {
                    kind,
                    name: entry.name.clone(),
                    file: entry.file.clone(),
                    source,
                })?;
                let plugin = host
                    .load_with_settings(&bytes, &entry.name, entry.settings.clone())
                    .map_err(|e| PluginLoadError::Load {
                        kind,
                        name: entry.name.clone(),
                        message: e.to_string(),
                    })?;
                let expected = if kind == "operators" { "operator" } else { "source-adapter" };
                let world = world_name(plugin.world());
                if world != expected {
                    return Err(PluginLoadError::Load {
                        kind,
                        name: entry.name.clone(),
                        message: format!("is a {world} plugin, listed under plugins.{kind}"),
                    });
                }
                tracing::info!(plugin = %entry.name, kind, hash = %plugin.content_hash, "plugin loaded");
                from_config.insert(
                    entry.name.clone(),
                    live(plugin, entry.settings.clone(), Origin::Config { file: entry.file.clone() }),
                );
            }
        }
        let mut active = from_config.clone();
        for record in stored {
            let deployed = |message: String| PluginLoadError::Deployed {
                name: record.name.clone(),
                message,
            };
            let Some(version) = record.active_version() else {
                return Err(deployed(format!("active version {} is missing", record.active)));
            };
            let bytes = store
                .plugin_blob(&version.hash)
                .map_err(|e| deployed(e.to_string()))?
                .ok_or_else(|| deployed(format!("component {} is missing from the store", version.hash)))?;
            let plugin = host
                .load_with_settings(&bytes, &record.name, version.settings.clone())
                .map_err(|e| deployed(e.to_string()))?;
            if world_name(plugin.world()) != record.world {
                return Err(deployed(format!(
                    "stored as a {} plugin, but the component is a {} plugin",
                    record.world,
                    world_name(plugin.world())
                )));
            }
            if active.contains_key(&record.name) {
                tracing::info!(plugin = %record.name, version = version.version, "the deployed version overrides the config file's entry");
            }
            tracing::info!(plugin = %record.name, version = version.version, hash = %version.hash, "deployed plugin loaded");
            active.insert(
                record.name.clone(),
                live(plugin, version.settings.clone(), Origin::Deployed { version: version.version }),
            );
        }
        Ok::<_, PluginLoadError>((host, from_config, active))
    })
    .await
    .map_err(|e| PluginLoadError::Host(e.to_string()))??;
    for (name, p) in &active {
        if let Active::Operator(op) = &p.plugin {
            operators
                .register(op.clone())
                .map_err(|message| PluginLoadError::Load {
                    kind: "operators",
                    name: name.clone(),
                    message,
                })?;
        }
    }
    Ok(LivePlugins::new(
        Some(Arc::new(host)),
        host_config,
        active,
        from_config,
    ))
}
