//! Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! Counters are plain atomics bumped on the hot path (no locks, no allocation);
//! gauges that live in the store (outbox depth, file size, row counts) are read
//! when scraped, and so are the WebAssembly plugins' call counters (kept by the
//! plugin host, `signalbox_plugin::PluginStats`), one row per plugin. Names
//! follow the Prometheus conventions: a `signalbox_` prefix, base units
//! (`_seconds`, `_bytes`) and `_total` on counters.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use signalbox_plugin::{PluginStats, WasmAdapter, WasmOperator};

/// Upper bounds (seconds) of the firing latency histogram buckets.
const FIRING_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Upper bounds (seconds) of the commit latency histogram buckets.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Every counter the router keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Signals taken in from core NATS.
    pub received_nats: AtomicU64,
    /// Signals taken in from JetStream.
    pub received_jetstream: AtomicU64,
    /// Signals taken in from webhooks (source adapters).
    pub received_http: AtomicU64,
    /// Signals taken in from Kafka consumer groups.
    pub received_kafka: AtomicU64,
    /// Signals taken in from SNS endpoints.
    pub received_sns: AtomicU64,
    /// Kafka worker processes that died and were started again.
    pub kafka_worker_restarts: AtomicU64,
    /// Messages rejected as bad input.
    pub rejected: AtomicU64,
    /// SNS messages rejected, by the rule they broke.
    pub sns_rejected: crate::sns::RejectCounters,
    /// Rejections by (transport, reason: the field of the error, or `adapter`).
    rejections: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
    /// Admin requests answered 401 (no token or a wrong one).
    pub unauthorized: AtomicU64,
    firing_buckets: [AtomicU64; FIRING_BUCKETS.len()],
    firing_count: AtomicU64,
    firing_micros: AtomicU64,
    /// Signals acknowledged as duplicates.
    pub duplicates: AtomicU64,
    /// Signals stored.
    pub stored: AtomicU64,
    /// Subscription matches (a join side counts).
    pub matches: AtomicU64,
    /// Firings written to the outbox.
    pub firings_created: AtomicU64,
    /// Firings acked by a JetStream stream.
    pub firings_published_jetstream: AtomicU64,
    /// Firings published on core NATS (flushed).
    pub firings_published_core: AtomicU64,
    /// Failed publish attempts.
    pub firing_failures: AtomicU64,
    /// Firings given up and dead-lettered.
    pub firings_dead_lettered: AtomicU64,
    /// Store transactions that failed.
    pub commit_failures: AtomicU64,
    /// NATS connection events (slow consumers, disconnects).
    nats_events: Arc<crate::connect::NatsEvents>,
    commit_buckets: [AtomicU64; COMMIT_BUCKETS.len()],
    commit_count: AtomicU64,
    commit_micros: AtomicU64,
    /// The active plugins, whose counters are read at scrape time (replaced
    /// on deploy, rollback and removal).
    plugins: std::sync::RwLock<Vec<MeteredPlugin>>,
}

/// A loaded WebAssembly plugin, as `/metrics` reports it.
#[derive(Debug, Clone)]
pub enum MeteredPlugin {
    /// An operator plugin (`[[plugins.operators]]`).
    Operator(Arc<WasmOperator>),
    /// A source adapter (`[[plugins.adapters]]`), under its route name.
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

/// Gauges read from the store at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreGauges {
    /// Firings waiting in the outbox.
    pub outbox_pending: u64,
    /// Stored signal instances.
    pub signals: u64,
    /// Stored firings.
    pub firings: u64,
    /// `(name, id)` rows (dedup entries, live or expired, until their
    /// instance's history is compacted).
    pub signal_ids: u64,
    /// Size of the redb file.
    pub file_bytes: u64,
    /// Age of the oldest firing in the outbox, in milliseconds (0 when empty).
    pub outbox_oldest_age_ms: u64,
    /// Join offers held (signals waiting for their join partners).
    pub join_offers: u64,
}

fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Counters at zero that also report these plugins' call counters.
    pub fn with_plugins(plugins: Vec<MeteredPlugin>) -> Metrics {
        Metrics {
            plugins: std::sync::RwLock::new(plugins),
            ..Metrics::default()
        }
    }

    /// Also reports these NATS connection events.
    pub fn counting_nats(mut self, events: Arc<crate::connect::NatsEvents>) -> Metrics {
        self.nats_events = events;
        self
    }

    /// Replaces the plugins reported (after a deploy, rollback or removal).
    pub fn set_plugins(&self, plugins: Vec<MeteredPlugin>) {
        *self.plugins.write().unwrap_or_else(|e| e.into_inner()) = plugins;
    }

    /// Adds `n` to a counter.
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        inc(counter, n);
    }

    /// Counts one rejected message of `transport` for `reason` (the field of
    /// its error, `adapter` for an adapter's reject); also bumps `rejected`.
    pub fn reject(&self, transport: &str, reason: &str) {
        inc(&self.rejected, 1);
        let reason = if reason.is_empty() { "body" } else { reason };
        if let Ok(mut r) = self.rejections.lock() {
            *r.entry((transport.to_string(), reason.to_string()))
                .or_default() += 1;
        }
    }

    /// Records one firing published `seconds` after it was created (in the
    /// store transaction of the signal that completed it).
    pub fn observe_firing(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        for (bound, bucket) in FIRING_BUCKETS.iter().zip(&self.firing_buckets) {
            if seconds <= *bound {
                inc(bucket, 1);
            }
        }
        inc(&self.firing_count, 1);
        inc(&self.firing_micros, (seconds * 1e6) as u64);
    }

    /// Records one ingest commit that took `seconds`.
    pub fn observe_commit(&self, seconds: f64) {
        for (bound, bucket) in COMMIT_BUCKETS.iter().zip(&self.commit_buckets) {
            if seconds <= *bound {
                inc(bucket, 1);
            }
        }
        inc(&self.commit_count, 1);
        inc(&self.commit_micros, (seconds * 1e6) as u64);
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self, store: Option<StoreGauges>, live_subscriptions: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        };
        counter(
            "signalbox_signals_received_total",
            "Signals taken in, by transport.",
            &[
                ("transport=\"nats\"", get(&self.received_nats)),
                ("transport=\"jetstream\"", get(&self.received_jetstream)),
                ("transport=\"http\"", get(&self.received_http)),
                ("transport=\"sns\"", get(&self.received_sns)),
                ("transport=\"kafka\"", get(&self.received_kafka)),
            ],
        );
        counter(
            "signalbox_kafka_worker_restarts_total",
            "Kafka worker processes (one per source) that died and were started again.",
            &[("", get(&self.kafka_worker_restarts))],
        );
        counter(
            "signalbox_signals_rejected_total",
            "Messages rejected as bad input (dead-lettered to the rejected subject).",
            &[("", get(&self.rejected))],
        );
        counter(
            "signalbox_signals_duplicate_total",
            "Signals acknowledged as duplicates of a stored (name, id).",
            &[("", get(&self.duplicates))],
        );
        counter(
            "signalbox_signals_stored_total",
            "Signals stored.",
            &[("", get(&self.stored))],
        );
        counter(
            "signalbox_matches_total",
            "Subscription matches (a join side counts).",
            &[("", get(&self.matches))],
        );
        counter(
            "signalbox_firings_created_total",
            "Firings written to the outbox.",
            &[("", get(&self.firings_created))],
        );
        counter(
            "signalbox_firings_published_total",
            "Firings published, by route (jetstream: acked by a stream; core: flushed).",
            &[
                (
                    "route=\"jetstream\"",
                    get(&self.firings_published_jetstream),
                ),
                ("route=\"core\"", get(&self.firings_published_core)),
            ],
        );
        counter(
            "signalbox_firing_publish_failures_total",
            "Failed firing publish attempts.",
            &[("", get(&self.firing_failures))],
        );
        counter(
            "signalbox_firings_dead_lettered_total",
            "Firings given up after repeated failures.",
            &[("", get(&self.firings_dead_lettered))],
        );
        counter(
            "signalbox_commit_failures_total",
            "Store transactions that failed (their batch was not stored).",
            &[("", get(&self.commit_failures))],
        );
        counter(
            "signalbox_nats_slow_consumer_events_total",
            "Slow-consumer events from the NATS client: messages dropped for a subscription the router did not drain fast enough (at least one each, not a message count; core ingest loses those signals, JetStream ingest redelivers them).",
            &[("", get(&self.nats_events.slow_consumer))],
        );
        counter(
            "signalbox_nats_disconnects_total",
            "Times the NATS connection was lost (the router reconnects).",
            &[("", get(&self.nats_events.disconnects))],
        );
        let sns_rows = self.sns_rejected.rows();
        let sns_rows: Vec<(&str, u64)> = sns_rows.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "signalbox_sns_rejected_total",
            "SNS messages rejected, by the rule they broke (the field of the error reply).",
            &sns_rows,
        );
        let by_reason: Vec<(String, u64)> = self
            .rejections
            .lock()
            .map(|r| {
                r.iter()
                    .map(|((t, why), n)| (format!("transport=\"{t}\",reason=\"{why}\""), *n))
                    .collect()
            })
            .unwrap_or_default();
        let by_reason: Vec<(&str, u64)> = by_reason.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "signalbox_signals_rejected_by_reason_total",
            "Messages rejected as bad input, by transport and reason (the field named by the error, or adapter).",
            &by_reason,
        );
        counter(
            "signalbox_http_unauthorized_total",
            "Admin API requests answered 401 (no bearer token or a wrong one).",
            &[("", get(&self.unauthorized))],
        );
        let _ = writeln!(
            out,
            "# HELP signalbox_firing_latency_seconds From a firing's creation (the store transaction of the signal that completed its match) to its publish being acked (JetStream) or flushed (core).\n# TYPE signalbox_firing_latency_seconds histogram"
        );
        for (bound, bucket) in FIRING_BUCKETS.iter().zip(&self.firing_buckets) {
            let _ = writeln!(
                out,
                "signalbox_firing_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let fired = get(&self.firing_count);
        let _ = writeln!(
            out,
            "signalbox_firing_latency_seconds_bucket{{le=\"+Inf\"}} {fired}\nsignalbox_firing_latency_seconds_sum {}\nsignalbox_firing_latency_seconds_count {fired}",
            get(&self.firing_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP signalbox_commit_seconds Latency of one ingest store transaction (a batch).\n# TYPE signalbox_commit_seconds histogram"
        );
        for (bound, bucket) in COMMIT_BUCKETS.iter().zip(&self.commit_buckets) {
            let _ = writeln!(
                out,
                "signalbox_commit_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.commit_count);
        let _ = writeln!(
            out,
            "signalbox_commit_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "signalbox_commit_seconds_sum {}",
            get(&self.commit_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "signalbox_commit_seconds_count {count}");
        self.render_plugins(&mut out);
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "signalbox_subscriptions",
            "Live subscriptions.",
            live_subscriptions as u64,
        );
        if let Some(g) = store {
            gauge(
                "signalbox_outbox_pending",
                "Firings waiting in the outbox.",
                g.outbox_pending,
            );
            gauge(
                "signalbox_store_signals",
                "Stored signal instances.",
                g.signals,
            );
            gauge("signalbox_store_firings", "Stored firings.", g.firings);
            gauge(
                "signalbox_store_signal_ids",
                "Stored (name, id) rows: dedup entries, live or expired, kept until their instance's history is compacted.",
                g.signal_ids,
            );
            gauge(
                "signalbox_store_file_bytes",
                "Size of the redb file.",
                g.file_bytes,
            );
            let _ = writeln!(
                out,
                "# HELP signalbox_outbox_oldest_age_seconds Age of the oldest firing still in the outbox (0 when empty).\n# TYPE signalbox_outbox_oldest_age_seconds gauge\nsignalbox_outbox_oldest_age_seconds {}",
                g.outbox_oldest_age_ms as f64 / 1000.0
            );
            let _ = writeln!(
                out,
                "# HELP signalbox_join_offers Signals held in join state, waiting for their join partners.\n# TYPE signalbox_join_offers gauge\nsignalbox_join_offers {}",
                g.join_offers
            );
        }
        out
    }

    /// The plugin rows: calls, failed calls by kind, quarantines, and whether
    /// each plugin is quarantined now. Nothing when no plugin is loaded.
    fn render_plugins(&self, out: &mut String) {
        let plugins = self
            .plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if plugins.is_empty() {
            return;
        }
        // Plugin names are `[A-Za-z0-9_.-]` (checked by the host): no escaping.
        let rows: Vec<(String, PluginStats)> = plugins
            .iter()
            .map(|p| {
                let (name, world, stats) = p.snapshot();
                (format!("plugin=\"{name}\",world=\"{world}\""), stats)
            })
            .collect();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            out,
            "signalbox_plugin_calls_total",
            "counter",
            "Calls into a plugin, including those refused while it is quarantined.",
        );
        for (labels, s) in &rows {
            let _ = writeln!(out, "signalbox_plugin_calls_total{{{labels}}} {}", s.calls);
        }
        family(
            out,
            "signalbox_plugin_call_failures_total",
            "counter",
            "Failed plugin calls, by kind (timeout, oom, trap; quarantined: refused without running).",
        );
        for (labels, s) in &rows {
            for (kind, v) in [
                ("timeout", s.timeouts),
                ("oom", s.out_of_memory),
                ("trap", s.traps),
                ("quarantined", s.refused),
            ] {
                let _ = writeln!(
                    out,
                    "signalbox_plugin_call_failures_total{{{labels},kind=\"{kind}\"}} {v}"
                );
            }
        }
        family(
            out,
            "signalbox_plugin_quarantines_total",
            "counter",
            "Times a plugin was quarantined after consecutive failed calls.",
        );
        for (labels, s) in &rows {
            let _ = writeln!(
                out,
                "signalbox_plugin_quarantines_total{{{labels}}} {}",
                s.quarantines
            );
        }
        family(
            out,
            "signalbox_plugin_quarantined",
            "gauge",
            "1 while the plugin is quarantined (its calls fail fast), else 0.",
        );
        for (labels, s) in &rows {
            let _ = writeln!(
                out,
                "signalbox_plugin_quarantined{{{labels}}} {}",
                u64::from(s.quarantined)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_histogram() {
        let m = Metrics::default();
        m.add(&m.received_nats, 3);
        m.observe_commit(0.002);
        m.observe_commit(2.0);
        let text = m.render(None, 1);
        assert!(text.contains("signalbox_signals_received_total{transport=\"nats\"} 3"));
        assert!(text.contains("signalbox_signals_received_total{transport=\"sns\"} 0"));
        assert!(text.contains("signalbox_signals_received_total{transport=\"kafka\"} 0"));
        assert!(
            !text.contains("signalbox_plugin_"),
            "no plugin rows without plugins"
        );
        assert!(text.contains("signalbox_commit_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("signalbox_commit_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("signalbox_commit_seconds_count 2"));
        assert!(text.contains("# TYPE signalbox_subscriptions gauge\nsignalbox_subscriptions 1"));
        assert!(text.contains("signalbox_nats_slow_consumer_events_total 0"));
        assert!(text.contains("signalbox_nats_disconnects_total 0"));
        let events = Arc::new(crate::connect::NatsEvents::default());
        events.slow_consumer.store(2, Ordering::Relaxed);
        let text = Metrics::default().counting_nats(events).render(None, 0);
        assert!(
            text.contains("signalbox_nats_slow_consumer_events_total 2"),
            "{text}"
        );
    }
}
