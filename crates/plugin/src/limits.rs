//! The host's configuration and the per-store resource limiter.
//!
//! [`HostConfig`] holds every bound the host enforces, with the defaults of the
//! design (5 ms per operator call, 50 ms per adapter call, 64 MiB of memory per
//! instance, quarantine after 5 consecutive failures). [`MemoryLimiter`] is the
//! wasmtime [`ResourceLimiter`] of one store: it refuses memory and table growth
//! past the limits and remembers that it did, so a trap that follows a refused
//! growth is reported as out-of-memory rather than as a plain trap.

use std::path::PathBuf;
use std::time::Duration;

use signalbox_model::Limits;
use wasmtime::ResourceLimiter;

use crate::wasi::WasiLinking;

/// Every limit and default of the plugin host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Deadline of one operator `test` call (default 5 ms).
    pub operator_deadline: Duration,
    /// Deadline of one operator `prepare` call, which compiles the argument
    /// (default 100 ms).
    pub prepare_deadline: Duration,
    /// Deadline of one adapter `decode` call, of `describe`, and of creating
    /// an instance (default 50 ms).
    pub adapter_deadline: Duration,
    /// How often the background ticker advances the engine's epoch (default
    /// 1 ms, at least 100 µs); deadlines are rounded up to whole ticks, plus one.
    pub epoch_tick: Duration,
    /// Largest linear memory of one instance, in bytes (default 64 MiB).
    pub max_memory_bytes: usize,
    /// Most elements in one table of an instance (default 20 000).
    pub max_table_elements: usize,
    /// Component instances the pooling allocator holds, across all plugins
    /// (default 128); idle pooled instances count too.
    pub max_instances: u32,
    /// Core instances one component may contain (default 16).
    pub max_core_instances_per_component: u32,
    /// Idle instances kept per plugin for reuse (default 4).
    pub instances_per_plugin: usize,
    /// Calls after which an instance is retired and replaced, so memory that
    /// creeps in a long-lived instance is returned (default 100 000).
    pub max_calls_per_instance: u64,
    /// Prepared conditions cached per operator instance before the cache is
    /// cleared (default 1 024).
    pub max_conditions_per_instance: usize,
    /// Consecutive failed calls after which a plugin is quarantined (default 5).
    pub quarantine_after: u32,
    /// Most signals one adapter call may return (default 1 000).
    pub max_signals_per_decode: usize,
    /// Limits every returned signal is validated against.
    pub signal_limits: Limits,
    /// Where compiled artefacts are cached on disk; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Virtual memory reserved per linear memory; `None` keeps wasmtime's
    /// default (4 GiB on 64-bit hosts, which lets it elide bounds checks).
    pub memory_reservation: Option<u64>,
    /// Which WASI interfaces plugins may import (default: inert filesystem and
    /// sockets included, nothing granted behind them).
    pub wasi: WasiLinking,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            operator_deadline: Duration::from_millis(5),
            prepare_deadline: Duration::from_millis(100),
            adapter_deadline: Duration::from_millis(50),
            epoch_tick: Duration::from_millis(1),
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_instances: 128,
            max_core_instances_per_component: 16,
            instances_per_plugin: 4,
            max_calls_per_instance: 100_000,
            max_conditions_per_instance: 1024,
            quarantine_after: 5,
            max_signals_per_decode: 1000,
            signal_limits: Limits::default(),
            cache_dir: None,
            memory_reservation: None,
            wasi: WasiLinking::default(),
        }
    }
}

impl HostConfig {
    /// The number of epoch ticks that covers `deadline`: rounded up, plus one
    /// because the current tick may end at any moment.
    pub(crate) fn ticks(&self, deadline: Duration) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(100_000);
        let n = deadline.as_nanos().div_ceil(tick);
        u64::try_from(n).unwrap_or(u64::MAX / 2).saturating_add(1)
    }
}

/// The resource limiter of one store.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    /// Set when a growth was refused since the last [`MemoryLimiter::reset`].
    pub(crate) refused: bool,
}

impl MemoryLimiter {
    /// A limiter with the config's bounds.
    pub fn new(config: &HostConfig) -> MemoryLimiter {
        MemoryLimiter {
            max_memory_bytes: config.max_memory_bytes,
            max_table_elements: config.max_table_elements,
            refused: false,
        }
    }

    /// Forgets refusals; called before every call.
    pub fn reset(&mut self) {
        self.refused = false;
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_memory_bytes && maximum.is_none_or(|m| desired <= m);
        if !ok {
            self.refused = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_table_elements && maximum.is_none_or(|m| desired <= m);
        if !ok {
            self.refused = true;
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_ticks_plus_one() {
        let c = HostConfig::default();
        assert_eq!(c.ticks(Duration::from_millis(5)), 6);
        assert_eq!(c.ticks(Duration::from_micros(4500)), 6);
        assert_eq!(c.ticks(Duration::ZERO), 1);
        assert!(c.ticks(Duration::MAX) > 1_000_000);
        let zero_tick = HostConfig {
            epoch_tick: Duration::ZERO,
            ..HostConfig::default()
        };
        assert_eq!(zero_tick.ticks(Duration::from_millis(1)), 11);
    }

    #[test]
    fn the_limiter_refuses_and_remembers() {
        let mut l = MemoryLimiter::new(&HostConfig {
            max_memory_bytes: 1 << 20,
            ..HostConfig::default()
        });
        assert!(l.memory_growing(0, 1 << 20, None).unwrap_or(false));
        assert!(!l.refused);
        assert!(!l.memory_growing(1 << 20, 2 << 20, None).unwrap_or(true));
        assert!(l.refused);
        l.reset();
        assert!(!l.refused);
        assert!(!l.table_growing(0, 1_000_000, None).unwrap_or(true));
        assert!(l.refused);
    }
}
