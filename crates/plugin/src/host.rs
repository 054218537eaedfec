//! [`PluginHost`]: loads components as plugins and hands out [`LoadedPlugin`]s.
//!
//! One host owns one engine, its epoch ticker, the compiled-artefact cache and a
//! linker per world (the `host` interface plus a WASI with nothing granted).
//! Loading validates a component completely before anything can use it: it
//! compiles (or finds it in the cache), must export the `operator` or the
//! `source-adapter` world, must link (every import provided, every export of the
//! right type, giving the pre-linked `InstancePre`), and its `describe` must
//! answer within the deadline. Loading the same bytes twice compiles once.
//! Both worlds load through one generic path ([`PluginWorld`], over the
//! generated `*Pre` types the pool instantiates from); only the world's
//! types differ.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::adapter::WasmAdapter;
use crate::bindings::adapter::{SourceAdapter, SourceAdapterPre};
use crate::bindings::operator::signalbox::plugin::types::Description as WitDescription;
use crate::bindings::operator::{Operator, OperatorPre};
use crate::cache::{ArtifactCache, CacheStats, content_hash};
use crate::engine::{Ticker, build_engine};
use crate::error::LoadError;
use crate::limits::HostConfig;
use crate::operator::{OperatorInner, WasmOperator};
use crate::pool::{Instantiator, Pool, Slot};
use crate::quarantine::PluginStats;
use crate::state::HostState;
use crate::types::{Description, World};

/// The export that marks the `operator` world.
const OPERATOR_EXPORT: &str = "signalbox:plugin/conditions@0.1.0";
/// The export that marks the `source-adapter` world.
const ADAPTER_EXPORT: &str = "signalbox:plugin/adapter@0.1.0";

/// What loading a plugin needs from its world: the world's functions in a
/// linker, its pre-linked bindings, its `describe` call and the
/// [`PluginKind`] its pool becomes.
trait PluginWorld: Instantiator + Sized {
    /// The world, for errors.
    const WORLD: World;
    /// Adds the world's host functions to `linker`.
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()>;
    /// Checks the pre-linked component against the world's exports.
    fn from_pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self>;
    /// Calls the plugin's `describe` export.
    fn describe(slot: &mut Slot<Self::Bindings>) -> wasmtime::Result<WitDescription>;
    /// The loaded plugin.
    fn plugin(pool: Pool<Self>, description: Description) -> PluginKind;
}

impl PluginWorld for OperatorPre<HostState> {
    const WORLD: World = World::Operator;
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        Operator::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)
    }
    fn from_pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        OperatorPre::new(pre)
    }
    fn describe(slot: &mut Slot<Operator>) -> wasmtime::Result<WitDescription> {
        slot.bindings.call_describe(&mut slot.store)
    }
    fn plugin(pool: Pool<Self>, description: Description) -> PluginKind {
        let inner = Arc::new(OperatorInner { pool, description });
        PluginKind::Operator(Arc::new(WasmOperator { inner }))
    }
}

impl PluginWorld for SourceAdapterPre<HostState> {
    const WORLD: World = World::SourceAdapter;
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
        SourceAdapter::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)
    }
    fn from_pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        SourceAdapterPre::new(pre)
    }
    fn describe(slot: &mut Slot<SourceAdapter>) -> wasmtime::Result<WitDescription> {
        slot.bindings.call_describe(&mut slot.store)
    }
    fn plugin(pool: Pool<Self>, description: Description) -> PluginKind {
        PluginKind::Adapter(Arc::new(WasmAdapter { pool, description }))
    }
}

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
        let operator_linker = linker::<OperatorPre<HostState>>(&engine, &config)?;
        let adapter_linker = linker::<SourceAdapterPre<HostState>>(&engine, &config)?;
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
        let (description, kind) = match world {
            World::Operator => self.load_world::<OperatorPre<HostState>>(
                &self.operator_linker,
                &component,
                name,
                settings,
            ),
            World::SourceAdapter => self.load_world::<SourceAdapterPre<HostState>>(
                &self.adapter_linker,
                &component,
                name,
                settings,
            ),
        }?;
        tracing::info!(plugin = name, world = world.wit_name(), hash = %hash, "plugin loaded");
        Ok(LoadedPlugin {
            name: name.to_string(),
            content_hash: hash,
            description,
            imports,
            kind,
        })
    }

    /// Links `component` as world `W`, starts its pool with `settings` and
    /// asks it to describe itself within the adapter deadline.
    fn load_world<W: PluginWorld>(
        &self,
        linker: &Linker<HostState>,
        component: &Component,
        name: &str,
        settings: BTreeMap<String, String>,
    ) -> Result<(Description, PluginKind), LoadError> {
        let link = |e: wasmtime::Error| LoadError::Link {
            name: name.to_string(),
            world: W::WORLD.wit_name(),
            message: format!("{e:#}"),
        };
        let pre = linker.instantiate_pre(component).map_err(link)?;
        let pre = W::from_pre(pre).map_err(link)?;
        let pool = Pool::new(
            name,
            &self.engine,
            pre,
            self.config.clone(),
            settings,
            self.ticker.clone(),
        );
        let description = pool
            .call(self.config.adapter_deadline, W::describe)
            .map_err(|source| LoadError::Describe {
                name: name.to_string(),
                source,
            })?;
        let description = from_wit(description);
        Ok((description.clone(), W::plugin(pool, description)))
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

/// A linker for world `W`: WASI as `config` grants it, and the world's own
/// host functions.
fn linker<W: PluginWorld>(
    engine: &Engine,
    config: &HostConfig,
) -> Result<Linker<HostState>, LoadError> {
    let link_err = |e: wasmtime::Error| LoadError::Host(format!("cannot set up the linker: {e:#}"));
    let mut linker = Linker::new(engine);
    crate::wasi::add_wasi(&mut linker, config.wasi).map_err(link_err)?;
    W::add_to_linker(&mut linker).map_err(link_err)?;
    Ok(linker)
}
