//! The data of one wasmtime store: what a plugin instance can reach.
//!
//! A [`HostState`] holds the plugin's name and settings (for `config-get`), the
//! memory limiter, and a WASI context with nothing in it: no preopened
//! directories, no environment, no arguments, stdin empty and stdout/stderr
//! discarded; TCP, UDP and name lookups disabled and every socket address
//! denied (the default socket check). What is linked is decided in `wasi.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::{HostConfig, MemoryLimiter};

/// The store data of every plugin instance.
pub struct HostState {
    /// The plugin's name (for log lines).
    pub(crate) plugin: Arc<str>,
    /// The plugin's settings, answered by `config-get`.
    pub(crate) settings: Arc<BTreeMap<String, String>>,
    /// Bounds memory and table growth.
    pub(crate) limiter: MemoryLimiter,
    /// Throttles guest log lines.
    pub(crate) log_budget: LogBudget,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A state with an empty WASI context.
    pub(crate) fn new(
        plugin: Arc<str>,
        settings: Arc<BTreeMap<String, String>>,
        config: &HostConfig,
    ) -> HostState {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            plugin,
            settings,
            limiter: MemoryLimiter::new(config),
            log_budget: LogBudget::default(),
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Guest log lines allowed per instance and second; the rest are dropped and
/// counted.
pub(crate) const LOG_LINES_PER_SECOND: u32 = 100;

/// A one-second window of guest log lines.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    window_start_ms: i64,
    lines: u32,
    dropped: u32,
}

impl LogBudget {
    /// Whether a line logged at `now_ms` may be written; when a new window
    /// starts, also how many lines the previous one dropped.
    pub(crate) fn admit(&mut self, now_ms: i64) -> (bool, u32) {
        let mut dropped_before = 0;
        if now_ms.saturating_sub(self.window_start_ms) >= 1000 || now_ms < self.window_start_ms {
            dropped_before = self.dropped;
            *self = LogBudget {
                window_start_ms: now_ms,
                lines: 0,
                dropped: 0,
            };
        }
        if self.lines < LOG_LINES_PER_SECOND {
            self.lines += 1;
            (true, dropped_before)
        } else {
            self.dropped = self.dropped.saturating_add(1);
            (false, dropped_before)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_drops_past_the_limit_and_reports_it() {
        let mut b = LogBudget::default();
        for _ in 0..LOG_LINES_PER_SECOND {
            assert_eq!(b.admit(5_000), (true, 0));
        }
        assert_eq!(b.admit(5_500), (false, 0));
        assert_eq!(b.admit(5_999), (false, 0));
        assert_eq!(b.admit(6_000), (true, 2));
        assert_eq!(b.admit(6_001), (true, 0));
    }
}
