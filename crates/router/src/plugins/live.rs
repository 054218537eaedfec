//! The live set itself: which version of each plugin is active, with what it
//! came from, its description and settings; swapped whole by deploys.

use crate::metrics::MeteredPlugin;
use serde_json::json;
use signalbox_plugin::{PluginHost, WasmAdapter, WasmOperator, World};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use super::upload;

/// Where the active version of a plugin came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Origin {
    /// The config file's `[[plugins.*]]` entry.
    Config {
        /// The component file.
        file: std::path::PathBuf,
    },
    /// A runtime deploy: this stored version.
    Deployed {
        /// The version number (`plugin inspect` lists them).
        version: u64,
    },
}

/// One active plugin.
#[derive(Clone)]
pub(crate) struct LivePlugin {
    /// The plugin itself, by world.
    pub plugin: Active,
    /// SHA-256 of its component, hex.
    pub hash: String,
    /// What its `describe` export said.
    pub description: signalbox_plugin::Description,
    /// The interfaces its component imports.
    pub imports: Vec<String>,
    /// The settings it was loaded with.
    pub settings: BTreeMap<String, String>,
    /// Where it came from.
    pub origin: Origin,
}

/// A live plugin by world.
#[derive(Clone)]
pub(crate) enum Active {
    /// An operator.
    Operator(Arc<WasmOperator>),
    /// A source adapter.
    Adapter(Arc<WasmAdapter>),
}

impl Active {
    /// The world's name as stored and shown: `operator` or `source-adapter`.
    pub fn world(&self) -> &'static str {
        match self {
            Active::Operator(_) => "operator",
            Active::Adapter(_) => "source-adapter",
        }
    }

    /// Call counters and quarantine state.
    pub fn stats(&self) -> signalbox_plugin::PluginStats {
        match self {
            Active::Operator(o) => o.stats(),
            Active::Adapter(a) => a.stats(),
        }
    }
}

/// The world name of a loaded plugin.
pub(crate) fn world_name(world: World) -> &'static str {
    match world {
        World::Operator => "operator",
        World::SourceAdapter => "source-adapter",
    }
}

/// Every live plugin, the host that runs them, and the config-file fallbacks.
pub(crate) struct LivePlugins {
    /// Started on first use: a router without plugins has no epoch ticker.
    host: Mutex<Option<Arc<PluginHost>>>,
    host_config: signalbox_plugin::HostConfig,
    active: RwLock<BTreeMap<String, LivePlugin>>,
    /// The config file's plugins, the fallback when a deploy is removed.
    from_config: BTreeMap<String, LivePlugin>,
    /// Serializes deploys, rollbacks and removals.
    pub changes: tokio::sync::Mutex<()>,
    /// Component uploads in progress (`plugin.upload`).
    pub uploads: upload::Uploads,
}

impl LivePlugins {
    /// Plugins as loaded at start.
    pub fn new(
        host: Option<Arc<PluginHost>>,
        host_config: signalbox_plugin::HostConfig,
        active: BTreeMap<String, LivePlugin>,
        from_config: BTreeMap<String, LivePlugin>,
    ) -> LivePlugins {
        LivePlugins {
            host: Mutex::new(host),
            host_config,
            active: RwLock::new(active),
            from_config,
            changes: tokio::sync::Mutex::new(()),
            uploads: upload::Uploads::default(),
        }
    }

    /// The plugin host, started now if no plugin was loaded before.
    pub fn host(&self) -> Result<Arc<PluginHost>, String> {
        let mut host = self.host.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = host.as_ref() {
            return Ok(h.clone());
        }
        let h = Arc::new(
            PluginHost::new(self.host_config.clone())
                .map_err(|e| format!("cannot start the plugin host: {e}"))?,
        );
        *host = Some(h.clone());
        Ok(h)
    }

    /// The active source adapter with this name.
    pub fn adapter(&self, name: &str) -> Option<Arc<WasmAdapter>> {
        match &self
            .active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)?
            .plugin
        {
            Active::Adapter(a) => Some(a.clone()),
            Active::Operator(_) => None,
        }
    }

    /// Names of the active source adapters, sorted.
    pub fn adapter_names(&self) -> Vec<String> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, p)| matches!(p.plugin, Active::Adapter(_)))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The active plugin with this name.
    pub fn get(&self, name: &str) -> Option<LivePlugin> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every active plugin, by name.
    pub fn all(&self) -> BTreeMap<String, LivePlugin> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The config file's entry for this name, if any.
    pub fn config_fallback(&self, name: &str) -> Option<LivePlugin> {
        self.from_config.get(name).cloned()
    }

    /// Makes `plugin` the active one under `name` (or removes the name).
    pub fn set(&self, name: &str, plugin: Option<LivePlugin>) {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        match plugin {
            Some(p) => active.insert(name.to_string(), p),
            None => active.remove(name),
        };
    }

    /// The active plugins as `/metrics` reports them.
    pub fn metered(&self) -> Vec<MeteredPlugin> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, p)| match &p.plugin {
                Active::Operator(o) => MeteredPlugin::Operator(o.clone()),
                Active::Adapter(a) => MeteredPlugin::Adapter(name.clone(), a.clone()),
            })
            .collect()
    }
}

impl LivePlugin {
    /// The summary `plugin ls` shows.
    pub fn summary(&self, name: &str) -> serde_json::Value {
        let stats = self.plugin.stats();
        json!({
            "name": name,
            "world": self.plugin.world(),
            "hash": self.hash,
            "plugin_version": self.description.version,
            "source": match &self.origin {
                Origin::Config { file } => json!({"config": file}),
                Origin::Deployed { version } => json!({"deployed": version}),
            },
            "calls": stats.calls,
            "quarantined": stats.quarantined,
        })
    }
}
