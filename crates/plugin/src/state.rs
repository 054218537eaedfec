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
