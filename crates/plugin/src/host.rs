//! [`PluginHost`]: loads components as plugins and hands out [`LoadedPlugin`]s.
//!
//! One host owns one engine, its epoch ticker, the compiled-artefact cache and a
//! linker per world (the `host` interface plus a WASI with nothing granted).
//! Loading validates a component completely before anything can use it: it
//! compiles (or finds it in the cache), must export the `operator` or the
//! `source-adapter` world, must link (every import provided, every export of the
//! right type, giving the pre-linked `InstancePre`), and its `describe` must
//! answer within the deadline. Loading the same bytes twice compiles once.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::adapter::WasmAdapter;
use crate::bindings::adapter::{SourceAdapter, SourceAdapterPre};
use crate::bindings::operator::signalbox::plugin::types::Description as WitDescription;
use crate::bindings::operator::{Operator, OperatorPre};
use crate::cache::{ArtifactCache, CacheStats, content_hash};
use crate::engine::{Ticker, build_engine};
use crate::error::LoadError;
use crate::limits::HostConfig;
use crate::operator::{OperatorInner, WasmOperator};
use crate::pool::Pool;
use crate::quarantine::PluginStats;
use crate::state::HostState;
use crate::types::{Description, World};

/// The export that marks the `operator` world.
const OPERATOR_EXPORT: &str = "signalbox:plugin/conditions@0.1.0";
/// The export that marks the `source-adapter` world.
const ADAPTER_EXPORT: &str = "signalbox:plugin/adapter@0.1.0";

/// Loads and runs plugins. Cheap to share behind an `Arc`.
pub struct PluginHost {
    engine: Engine,
    config: Arc<HostConfig>,
    cache: ArtifactCache,
    ticker: Arc<Ticker>,
    operator_linker: Linker<HostState>,
    adapter_linker: Linker<HostState>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A validated plugin, ready to use.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The name it was loaded under.
    pub name: String,
    /// SHA-256 of the component bytes, in hex.
    pub content_hash: String,
    /// What the plugin said about itself.
    pub description: Description,
    /// The interfaces the component imports (`signalbox:plugin/host@0.1.0`,
    /// the WASI interfaces its toolchain needs …), for inspection.
    pub imports: Vec<String>,
    /// The plugin itself.
    pub kind: PluginKind,
}

/// A loaded plugin by world.
#[derive(Debug, Clone)]
pub enum PluginKind {
    /// An operator; register it in the matcher's `OperatorRegistry`.
    Operator(Arc<WasmOperator>),
    /// A source adapter.
    Adapter(Arc<WasmAdapter>),
}

impl LoadedPlugin {
    /// The world the plugin exports.
    pub fn world(&self) -> World {
        match self.kind {
            PluginKind::Operator(_) => World::Operator,
            PluginKind::Adapter(_) => World::SourceAdapter,
        }
    }

    /// The operator, if this plugin is one.
    pub fn operator(&self) -> Option<Arc<WasmOperator>> {
        match &self.kind {
            PluginKind::Operator(o) => Some(o.clone()),
            PluginKind::Adapter(_) => None,
        }
    }

    /// The adapter, if this plugin is one.
    pub fn adapter(&self) -> Option<Arc<WasmAdapter>> {
        match &self.kind {
            PluginKind::Adapter(a) => Some(a.clone()),
            PluginKind::Operator(_) => None,
        }
    }

    /// Call counters and quarantine state.
    pub fn stats(&self) -> PluginStats {
        match &self.kind {
            PluginKind::Operator(o) => o.stats(),
            PluginKind::Adapter(a) => a.stats(),
        }
    }
}

fn from_wit(d: WitDescription) -> Description {
    Description {
        name: d.name,
        argument_shape: d.argument_shape,
        version: d.version,
    }
}

/// Checks a plugin name: 1–64 characters of `[A-Za-z0-9_.-]`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl PluginHost {
    /// A host with its own engine and epoch ticker.
    pub fn new(config: HostConfig) -> Result<PluginHost, LoadError> {
        let engine = build_engine(&config)?;
        let ticker = Arc::new(Ticker::start(&engine, &config)?);
        let link_err =
            |e: wasmtime::Error| LoadError::Host(format!("cannot set up the linker: {e:#}"));
        let mut operator_linker = Linker::new(&engine);
        crate::wasi::add_wasi(&mut operator_linker, config.wasi).map_err(link_err)?;
        Operator::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut operator_linker, |s| s)
            .map_err(link_err)?;
        let mut adapter_linker = Linker::new(&engine);
        crate::wasi::add_wasi(&mut adapter_linker, config.wasi).map_err(link_err)?;
        SourceAdapter::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut adapter_linker,
            |s| s,
        )
        .map_err(link_err)?;
        Ok(PluginHost {
            cache: ArtifactCache::new(&engine, config.cache_dir.clone()),
            engine,
            config: Arc::new(config),
            ticker,
            operator_linker,
            adapter_linker,
        })
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// How the compiled-artefact cache has been used.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Where the compiled artefact of these component bytes is cached on
    /// disk, when there is a cache directory.
    pub fn cache_path(&self, bytes: &[u8]) -> Option<std::path::PathBuf> {
        self.cache.path_for(&content_hash(bytes))
    }

    /// Loads a plugin with no settings.
    pub fn load(&self, bytes: &[u8], name: &str) -> Result<LoadedPlugin, LoadError> {
        self.load_with_settings(bytes, name, BTreeMap::new())
    }

    /// Loads a plugin; `settings` answer its `config-get` calls.
    pub fn load_with_settings(
        &self,
        bytes: &[u8],
        name: &str,
        settings: BTreeMap<String, String>,
    ) -> Result<LoadedPlugin, LoadError> {
        if !valid_name(name) {
            return Err(LoadError::InvalidName(name.to_string()));
        }
        let hash = content_hash(bytes);
        let component = self
            .cache
            .get_or_compile(&self.engine, &hash, bytes)
            .map_err(|message| LoadError::Compile {
                name: name.to_string(),
                message,
            })?;
        let world = self.world_of(&component, name)?;
        let imports: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let link = |e: wasmtime::Error| LoadError::Link {
            name: name.to_string(),
            world: world.wit_name(),
            message: format!("{e:#}"),
        };
        let describe_failed = |source| LoadError::Describe {
            name: name.to_string(),
            source,
        };
        let deadline = self.config.adapter_deadline;
        let (description, kind) = match world {
            World::Operator => {
                let pre = self
                    .operator_linker
                    .instantiate_pre(&component)
                    .map_err(link)?;
                let pre = OperatorPre::new(pre).map_err(link)?;
                let pool = Pool::new(
                    name,
                    &self.engine,
                    pre,
                    self.config.clone(),
                    settings,
                    self.ticker.clone(),
                );
                let d = pool
                    .call(deadline, |slot| {
                        slot.bindings.call_describe(&mut slot.store)
                    })
                    .map_err(describe_failed)?;
                let description = from_wit(d);
                let inner = Arc::new(OperatorInner {
                    pool,
                    description: description.clone(),
                });
                (
                    description,
                    PluginKind::Operator(Arc::new(WasmOperator { inner })),
                )
            }
            World::SourceAdapter => {
                let pre = self
                    .adapter_linker
                    .instantiate_pre(&component)
                    .map_err(link)?;
                let pre = SourceAdapterPre::new(pre).map_err(link)?;
                let pool = Pool::new(
                    name,
                    &self.engine,
                    pre,
                    self.config.clone(),
                    settings,
                    self.ticker.clone(),
                );
                let d = pool
                    .call(deadline, |slot| {
                        slot.bindings.call_describe(&mut slot.store)
                    })
                    .map_err(describe_failed)?;
                let description = from_wit(d);
                let adapter = WasmAdapter {
                    pool,
                    description: description.clone(),
                };
                (description, PluginKind::Adapter(Arc::new(adapter)))
            }
        };
        tracing::info!(plugin = name, world = world.wit_name(), hash = %hash, "plugin loaded");
        Ok(LoadedPlugin {
            name: name.to_string(),
            content_hash: hash,
            description,
            imports,
            kind,
        })
    }

    fn world_of(&self, component: &Component, name: &str) -> Result<World, LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if exports.iter().any(|e| e == OPERATOR_EXPORT) {
            Ok(World::Operator)
        } else if exports.iter().any(|e| e == ADAPTER_EXPORT) {
            Ok(World::SourceAdapter)
        } else {
            Err(LoadError::WrongWorld {
                name: name.to_string(),
                exports,
            })
        }
    }
}
