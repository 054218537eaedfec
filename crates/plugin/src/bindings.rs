//! The generated bindings of the WIT package in `wit/` (the only place in
//! signalbox that runs `bindgen!`) and the host side of the `host` interface.
//!
//! `operator` and `source-adapter` are generated separately; the second reuses
//! the first's `host` and `types` modules, so one `Host` implementation on the
//! store data (`HostState`) serves both worlds. Guest log lines go to `tracing`
//! under the target `signalbox_plugin::guest`, tagged with the plugin name, cut
//! at 4 KiB and throttled to 100 lines per second per instance (the excess is
//! dropped and its count logged).

use crate::state::HostState;

/// Bindings of world `operator`.
#[allow(missing_docs, clippy::all)]
pub mod operator {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "operator",
    });
}

/// Bindings of world `source-adapter`.
#[allow(missing_docs, clippy::all)]
pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "source-adapter",
        with: {
            "signalbox:plugin/host": super::operator::signalbox::plugin::host,
            "signalbox:plugin/types": super::operator::signalbox::plugin::types,
        },
    });
}

use operator::signalbox::plugin::host::{Host, Level};

/// Longest guest log message kept, in bytes.
const MAX_LOG_BYTES: usize = 4096;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let now = self.now_ms();
        let (admitted, dropped) = self.log_budget.admit(now);
        let plugin = &*self.plugin;
        if dropped > 0 {
            tracing::warn!(target: "signalbox_plugin::guest", plugin, dropped, "guest log lines dropped (over {} per second)", crate::state::LOG_LINES_PER_SECOND);
        }
        if !admitted {
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        match level {
            Level::Trace => tracing::trace!(target: "signalbox_plugin::guest", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "signalbox_plugin::guest", plugin, "{message}"),
            Level::Info => tracing::info!(target: "signalbox_plugin::guest", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "signalbox_plugin::guest", plugin, "{message}"),
            Level::Error => tracing::error!(target: "signalbox_plugin::guest", plugin, "{message}"),
        }
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }

    fn now_ms(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

impl operator::signalbox::plugin::types::Host for HostState {}
