//! WebAssembly component plugins for signalbox: the wasmtime host that runs
//! custom operators and source adapters (the WIT package in `wit/`).
//!
//! [`PluginHost::load`] validates a component (compiles it once, caching the
//! artefact; checks it exports the `operator` or `source-adapter` world; links
//! it; calls `describe`) and returns a [`LoadedPlugin`]: a [`WasmOperator`]
//! (a matcher `CustomOperator`) or a [`WasmAdapter`] (`decode(envelope)` into
//! validated signals). Invariants: a plugin can only fail its own call, never
//! the caller — every call is bounded by an epoch deadline and every instance's
//! memory by a limiter, and a trap, timeout or out-of-memory becomes a typed
//! [`CallError`], counted, with the failed instance thrown away; a plugin that
//! fails `quarantine_after` calls in a row is quarantined. Plugins see only the
//! `host` interface (log, settings, clock) and an empty WASI: no files, no
//! network. This is the only crate that runs `wasmtime::component::bindgen!`.

pub mod adapter;
pub mod bindings;
pub mod cache;
mod engine;
pub mod error;
pub mod host;
pub mod limits;
pub mod operator;
mod pool;
pub mod quarantine;
mod state;
pub mod types;
pub mod wasi;

pub use adapter::WasmAdapter;
pub use cache::{CacheStats, content_hash};
pub use error::{CallError, DecodeError, LoadError};
pub use host::{LoadedPlugin, PluginHost, PluginKind};
pub use limits::HostConfig;
pub use operator::{WasmCondition, WasmOperator};
pub use quarantine::PluginStats;
pub use types::{Description, Envelope, Transport, World};
pub use wasi::WasiLinking;
