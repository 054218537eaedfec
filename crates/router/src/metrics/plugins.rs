//! The WebAssembly plugins' call counters, read from the plugin host at
//! scrape time (`signalbox_plugin::PluginStats`), one row per active plugin:
//! calls, failed calls by kind, quarantines, and whether it is quarantined
//! now. Nothing is rendered when no plugin is loaded.

use std::sync::{Arc, RwLock};

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use signalbox_plugin::{PluginStats, WasmAdapter, WasmOperator};

use super::collect::Labels;

/// A loaded WebAssembly plugin, as `/metrics` reports it.
#[derive(Debug, Clone)]
pub enum MeteredPlugin {
    /// An operator plugin.
    Operator(Arc<WasmOperator>),
    /// A source adapter, under its route name.
    Adapter(String, Arc<WasmAdapter>),
}

impl MeteredPlugin {
    /// The name it was loaded under, its world, and its counters right now.
    fn snapshot(&self) -> (&str, &'static str, PluginStats) {
        match self {
            MeteredPlugin::Operator(op) => (op.name(), "operator", op.stats()),
            MeteredPlugin::Adapter(name, a) => (name, "source-adapter", a.stats()),
        }
    }
}

/// Renders the active plugins' counters at each scrape.
#[derive(Debug)]
pub(super) struct PluginCollector(pub(super) Arc<RwLock<Vec<MeteredPlugin>>>);

impl prometheus_client::collector::Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let plugins = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        if plugins.is_empty() {
            return Ok(());
        }
        // Plugin names are `[A-Za-z0-9_.-]` (checked by the host).
        let rows: Vec<(Labels, PluginStats)> = plugins
            .iter()
            .map(|p| {
                let (name, world, stats) = p.snapshot();
                (
                    vec![("plugin", name.to_string()), ("world", world.to_string())],
                    stats,
                )
            })
            .collect();
        let mut calls = encoder.encode_descriptor(
            "signalbox_plugin_calls",
            "Calls into a plugin, including those refused while it is quarantined.",
            None,
            MetricType::Counter,
        )?;
        for (labels, s) in &rows {
            calls
                .encode_family(labels)?
                .encode_counter::<Labels, _, u64>(&s.calls, None)?;
        }
        let mut failures = encoder.encode_descriptor(
            "signalbox_plugin_call_failures",
            "Failed plugin calls, by kind (timeout, oom, trap; quarantined: refused without running).",
            None,
            MetricType::Counter,
        )?;
        for (labels, s) in &rows {
            for (kind, v) in [
                ("timeout", s.timeouts),
                ("oom", s.out_of_memory),
                ("trap", s.traps),
                ("quarantined", s.refused),
            ] {
                let mut with_kind = labels.clone();
                with_kind.push(("kind", kind.to_string()));
                failures
                    .encode_family(&with_kind)?
                    .encode_counter::<Labels, _, u64>(&v, None)?;
            }
        }
        let mut quarantines = encoder.encode_descriptor(
            "signalbox_plugin_quarantines",
            "Times a plugin was quarantined after consecutive failed calls.",
            None,
            MetricType::Counter,
        )?;
        for (labels, s) in &rows {
            quarantines
                .encode_family(labels)?
                .encode_counter::<Labels, _, u64>(&s.quarantines, None)?;
        }
        let mut quarantined = encoder.encode_descriptor(
            "signalbox_plugin_quarantined",
            "1 while the plugin is quarantined (its calls fail fast), else 0.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, s) in &rows {
            quarantined
                .encode_family(labels)?
                .encode_gauge(&u64::from(s.quarantined))?;
        }
        Ok(())
    }
}
