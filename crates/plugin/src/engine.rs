//! The one wasmtime [`Engine`] of a host and the thread that ticks its epoch.
//!
//! The engine compiles with Cranelift, has the component model on, interrupts
//! code by epoch (every call sets a deadline in ticks) and allocates instances
//! from a pooling allocator sized from [`HostConfig`]. The [`Ticker`] thread
//! increments the epoch every `epoch_tick`; it stops when the last handle to it
//! is dropped, so a plugin outliving its host still gets its deadlines enforced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::LoadError;
use crate::limits::HostConfig;

/// Builds the engine for `config`.
pub(crate) fn build_engine(config: &HostConfig) -> Result<Engine, LoadError> {
    let mut pool = PoolingAllocationConfig::new();
    let instances = config.max_instances.max(1);
    let core_per = config.max_core_instances_per_component.max(1);
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(core_per))
        .max_core_instances_per_component(core_per)
        .total_memories(instances.saturating_mul(2))
        .max_memories_per_component(core_per)
        .total_tables(instances.saturating_mul(4))
        .max_tables_per_component(core_per)
        .table_elements(config.max_table_elements)
        .max_memory_size(config.max_memory_bytes);
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(bytes) = config.memory_reservation {
        wasm.memory_reservation(bytes);
    }
    Engine::new(&wasm)
        .map_err(|e| LoadError::Host(format!("cannot create the wasmtime engine: {e:#}")))
}

/// Advances an engine's epoch from a background thread while it is alive.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `engine` every `config.epoch_tick`.
    pub(crate) fn start(engine: &Engine, config: &HostConfig) -> Result<Ticker, LoadError> {
        let stop = Arc::new(AtomicBool::new(false));
        // A zero tick would spin a core; 100 µs is the floor.
        let tick = config.epoch_tick.max(std::time::Duration::from_micros(100));
        let (engine, flag) = (engine.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("signalbox-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Host(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
