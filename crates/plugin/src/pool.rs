//! Reusable plugin instances and the guarded call that every plugin call goes
//! through.
//!
//! A [`Pool`] belongs to one loaded plugin. It keeps up to `instances_per_plugin`
//! idle instances, each in its own store, created from the pre-linked
//! `InstancePre` (so creating one is only allocation plus initialisation). A call
//! takes an idle instance (or makes one), arms its memory limiter and epoch
//! deadline, runs, and gives the instance back. Invariants: an instance whose
//! call failed (trap, timeout, out of memory) is dropped, never reused, since
//! its memory may be inconsistent; an instance that served
//! `max_calls_per_instance` calls is retired; quarantine is checked before any
//! plugin code runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::ResourceAny;
use wasmtime::{Engine, Store, Trap};

use crate::bindings::adapter::{SourceAdapter, SourceAdapterPre};
use crate::bindings::operator::{Operator, OperatorPre};
use crate::engine::Ticker;
use crate::error::CallError;
use crate::limits::HostConfig;
use crate::quarantine::Health;
use crate::state::HostState;

/// Makes instances of one world from pre-linked bindings.
pub(crate) trait Instantiator: Send + Sync + 'static {
    /// The generated bindings of the world.
    type Bindings: Send + 'static;
    /// Creates one instance in `store`.
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings>;
}

impl Instantiator for OperatorPre<HostState> {
    type Bindings = Operator;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Operator> {
        OperatorPre::instantiate(self, store)
    }
}

impl Instantiator for SourceAdapterPre<HostState> {
    type Bindings = SourceAdapter;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<SourceAdapter> {
        SourceAdapterPre::instantiate(self, store)
    }
}

/// One live instance with its store.
pub(crate) struct Slot<B> {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: B,
    /// Conditions prepared in this instance, by argument (operators only).
    pub(crate) conditions: HashMap<String, ResourceAny>,
    calls: u64,
}

/// The instances of one plugin and everything a call needs.
pub(crate) struct Pool<P: Instantiator> {
    pub(crate) plugin: Arc<str>,
    pub(crate) config: Arc<HostConfig>,
    pub(crate) health: Health,
    engine: Engine,
    pre: P,
    settings: Arc<BTreeMap<String, String>>,
    idle: Mutex<Vec<Slot<P::Bindings>>>,
    _ticker: Arc<Ticker>,
}

impl<P: Instantiator> Pool<P> {
    pub(crate) fn new(
        plugin: &str,
        engine: &Engine,
        pre: P,
        config: Arc<HostConfig>,
        settings: BTreeMap<String, String>,
        ticker: Arc<Ticker>,
    ) -> Pool<P> {
        Pool {
            plugin: Arc::from(plugin),
            health: Health::new(plugin, config.quarantine_after),
            config,
            engine: engine.clone(),
            pre,
            settings: Arc::new(settings),
            idle: Mutex::new(Vec::new()),
            _ticker: ticker,
        }
    }

    /// Runs `f` on an instance within `deadline`, with every failure mapped to
    /// a [`CallError`] and counted.
    pub(crate) fn call<R>(
        &self,
        deadline: Duration,
        f: impl FnOnce(&mut Slot<P::Bindings>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.health.begin()?;
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut slot = match taken {
            Some(slot) => slot,
            None => self.fresh()?,
        };
        slot.store.data_mut().limiter.reset();
        slot.store.set_epoch_deadline(self.config.ticks(deadline));
        match f(&mut slot) {
            Ok(r) => {
                self.health.success();
                slot.calls += 1;
                self.give_back(slot);
                Ok(r)
            }
            Err(e) => {
                let error = self.classify(&e, slot.store.data().limiter.refused, deadline);
                self.health.failure(&error);
                Err(error)
            }
        }
    }

    /// Drops every idle instance (after a configuration change, or to free slots).
    pub(crate) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn fresh(&self) -> Result<Slot<P::Bindings>, CallError> {
        let state = HostState::new(self.plugin.clone(), self.settings.clone(), &self.config);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.config.ticks(self.config.adapter_deadline));
        match self.pre.instantiate(&mut store) {
            Ok(bindings) => {
                self.health.instance_created();
                Ok(Slot {
                    store,
                    bindings,
                    conditions: HashMap::new(),
                    calls: 0,
                })
            }
            Err(e) => {
                let error = if e.downcast_ref::<Trap>().is_some() || store.data().limiter.refused {
                    self.classify(
                        &e,
                        store.data().limiter.refused,
                        self.config.adapter_deadline,
                    )
                } else {
                    CallError::Instantiate {
                        plugin: self.plugin.to_string(),
                        message: short(&e),
                    }
                };
                self.health.failure(&error);
                Err(error)
            }
        }
    }

    fn give_back(&self, slot: Slot<P::Bindings>) {
        if slot.calls >= self.config.max_calls_per_instance {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.config.instances_per_plugin
        {
            idle.push(slot);
        }
    }

    fn classify(&self, e: &wasmtime::Error, refused: bool, deadline: Duration) -> CallError {
        let plugin = self.plugin.to_string();
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Timeout {
                plugin,
                deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            };
        }
        if refused {
            return CallError::OutOfMemory {
                plugin,
                limit_bytes: self.config.max_memory_bytes,
            };
        }
        CallError::Trap {
            plugin,
            message: short(e),
        }
    }
}

/// An error's message without the backtrace, cut at 1 KiB.
fn short(e: &wasmtime::Error) -> String {
    let mut s = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e:#}"),
    };
    if s.len() > 1024 {
        let mut cut = 1024;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
