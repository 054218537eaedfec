//! Loading the configured WebAssembly plugins at start: operator plugins become
//! custom operators of the matcher, source adapters become webhook routes.
//!
//! The host (crate `signalbox-plugin`) compiles each component once and caches
//! the compiled artefact under `<data_dir>/plugin-cache`, so a restart does not
//! pay the compile again. A plugin that fails to load (missing file, wrong
//! world, a trap in `describe`) fails the start with an error naming it: a
//! router that silently lacks an operator would reject subscriptions later.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use signalbox_matcher::OperatorRegistry;
use signalbox_plugin::{HostConfig, PluginHost, WasmAdapter, World};

use crate::config::RouterConfig;
use crate::metrics::MeteredPlugin;

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

/// The plugin host (kept alive while plugins are in use), the source adapters
/// by route name, and every loaded plugin for `/metrics`.
type Loaded = (
    Option<PluginHost>,
    HashMap<String, Arc<WasmAdapter>>,
    Vec<MeteredPlugin>,
);

/// Loads every configured plugin; registers operators into `operators`.
pub(crate) async fn load(
    config: &RouterConfig,
    operators: &mut OperatorRegistry,
) -> Result<Loaded, PluginLoadError> {
    let plugins = config.plugins.clone();
    if plugins.operators.is_empty() && plugins.adapters.is_empty() {
        return Ok((None, HashMap::new(), Vec::new()));
    }
    let cache_dir = config.data_dir.join("plugin-cache");
    let limits = config.limits;
    let loaded = tokio::task::spawn_blocking(move || {
        let host = PluginHost::new(HostConfig {
            cache_dir: Some(cache_dir),
            signal_limits: limits,
            ..HostConfig::default()
        })
        .map_err(|e| PluginLoadError::Host(e.to_string()))?;
        let mut ops = Vec::new();
        let mut adapters = HashMap::new();
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
                let wrong = |world: &str| PluginLoadError::Load {
                    kind,
                    name: entry.name.clone(),
                    message: format!("is a {world} plugin, listed under plugins.{kind}"),
                };
                match (kind, plugin.world()) {
                    ("operators", World::Operator) => {
                        ops.push(plugin.operator().ok_or_else(|| wrong("source-adapter"))?)
                    }
                    ("adapters", World::SourceAdapter) => {
                        adapters.insert(
                            entry.name.clone(),
                            plugin.adapter().ok_or_else(|| wrong("operator"))?,
                        );
                    }
                    ("operators", _) => return Err(wrong("source-adapter")),
                    _ => return Err(wrong("operator")),
                }
                tracing::info!(plugin = %entry.name, kind, hash = %plugin.content_hash, "plugin loaded");
            }
        }
        Ok::<_, PluginLoadError>((host, ops, adapters))
    })
    .await
    .map_err(|e| PluginLoadError::Host(e.to_string()))??;
    let (host, ops, adapters) = loaded;
    let mut metered: Vec<MeteredPlugin> =
        ops.iter().cloned().map(MeteredPlugin::Operator).collect();
    let mut by_route: Vec<_> = adapters.iter().collect();
    by_route.sort_by(|a, b| a.0.cmp(b.0));
    metered.extend(
        by_route
            .into_iter()
            .map(|(name, a)| MeteredPlugin::Adapter(name.clone(), a.clone())),
    );
    for op in ops {
        let name = op.description().name.clone();
        operators
            .register(op)
            .map_err(|message| PluginLoadError::Load {
                kind: "operators",
                name,
                message,
            })?;
    }
    Ok((Some(host), adapters, metered))
}
