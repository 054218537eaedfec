//! Prometheus metrics at `GET /metrics`, each declared once: a counter,
//! histogram or family is registered with its name and help right where it is
//! made ([`Metrics::new`]), and the registry renders them all (the
//! `prometheus-client` crate, OpenMetrics text). Rooms with metrics of their
//! own register them in the same registry at start ([`Metrics::register`],
//! [`Metrics::register_collector`]): a source its rejections or lag, the NATS
//! connection its events, the service the store gauges read at scrape time.
//! So this module names no particular source.
//!
//! Invariants:
//! - the names are a public interface (dashboards and alerts use them): a
//!   counter registered as `x` is exposed as `x_total`; renames go in the
//!   changelog (`CHANGELOG.md`);
//! - counters on the hot path are atomics (no lock, no allocation); labelled
//!   families take a read lock per update, so they are bumped once per batch,
//!   not once per signal;
//! - values read at scrape time (store gauges, plugin call counters) come
//!   from collectors, which read their source when `/metrics` is asked.

mod collect;
mod plugins;

use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

pub use collect::{GaugeRow, Gauges, Labels};
pub use plugins::MeteredPlugin;

/// Upper bounds (seconds) of the firing latency histogram buckets.
const FIRING_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Upper bounds (seconds) of the commit latency histogram buckets.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The router's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    received: Family<Labels, Counter>,
    /// Messages rejected as bad input.
    pub rejected: Counter,
    rejected_by_reason: Family<Labels, Counter>,
    /// Admin requests answered 401 (no token or a wrong one).
    pub unauthorized: Counter,
    /// Signals acknowledged as duplicates.
    pub duplicates: Counter,
    /// Signals stored.
    pub stored: Counter,
    /// Subscription matches (a join side counts).
    pub matches: Counter,
    /// Firings written to the outbox.
    pub firings_created: Counter,
    published: Family<Labels, Counter>,
    /// Failed publish attempts.
    pub firing_failures: Counter,
    /// Firings given up and dead-lettered.
    pub firings_dead_lettered: Counter,
    /// Store transactions that failed.
    pub commit_failures: Counter,
    firing_latency: Histogram,
    commit_seconds: Histogram,
    /// The active plugins, whose counters are read at scrape time.
    plugins: Arc<RwLock<Vec<MeteredPlugin>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every router metric at zero, registered.
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let plugins = Arc::new(RwLock::new(Vec::new()));
        let m = Metrics {
            received: declare(
                &mut r,
                "signalbox_signals_received",
                "Signals taken in, by transport.",
                Family::default(),
            ),
            rejected: declare(
                &mut r,
                "signalbox_signals_rejected",
                "Messages rejected as bad input (dead-lettered to the rejected subject).",
                Counter::default(),
            ),
            rejected_by_reason: declare(
                &mut r,
                "signalbox_signals_rejected_by_reason",
                "Messages rejected as bad input, by transport and reason (the field named by the error, or adapter).",
                Family::default(),
            ),
            unauthorized: declare(
                &mut r,
                "signalbox_http_unauthorized",
                "Admin API requests answered 401 (no bearer token or a wrong one).",
                Counter::default(),
            ),
            duplicates: declare(
                &mut r,
                "signalbox_signals_duplicate",
                "Signals acknowledged as duplicates of a stored (name, id).",
                Counter::default(),
            ),
            stored: declare(
                &mut r,
                "signalbox_signals_stored",
                "Signals stored.",
                Counter::default(),
            ),
            matches: declare(
                &mut r,
                "signalbox_matches",
                "Subscription matches (a join side counts).",
                Counter::default(),
            ),
            firings_created: declare(
                &mut r,
                "signalbox_firings_created",
                "Firings written to the outbox.",
                Counter::default(),
            ),
            published: declare(
                &mut r,
                "signalbox_firings_published",
                "Firings published, by route (jetstream: acked by a stream; core: flushed).",
                Family::default(),
            ),
            firing_failures: declare(
                &mut r,
                "signalbox_firing_publish_failures",
                "Failed firing publish attempts.",
                Counter::default(),
            ),
            firings_dead_lettered: declare(
                &mut r,
                "signalbox_firings_dead_lettered",
                "Firings given up after repeated failures.",
                Counter::default(),
            ),
            commit_failures: declare(
                &mut r,
                "signalbox_commit_failures",
                "Store transactions that failed (their batch was not stored).",
                Counter::default(),
            ),
            firing_latency: declare(
                &mut r,
                "signalbox_firing_latency_seconds",
                "From a firing's creation (the store transaction of the signal that completed its match) to its publish being acked (JetStream) or flushed (core).",
                Histogram::new(FIRING_BUCKETS),
            ),
            commit_seconds: declare(
                &mut r,
                "signalbox_commit_seconds",
                "Latency of one ingest store transaction (a batch).",
                Histogram::new(COMMIT_BUCKETS),
            ),
            plugins: plugins.clone(),
            registry: Mutex::new(Registry::default()),
        };
        for route in ["jetstream", "core"] {
            let _ = m
                .published
                .get_or_create(&vec![("route", route.to_string())]);
        }
        r.register_collector(Box::new(plugins::PluginCollector(plugins)));
        Metrics {
            registry: Mutex::new(r),
            ..m
        }
    }

    /// Registers a metric of another room (a source's family, say), declared
    /// once there; `help` ends with a period or gets one.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.register(name, help.trim_end_matches('.'), metric);
    }

    /// Registers values read at scrape time.
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.register_collector(collector);
    }

    /// Shows `transport` in `signalbox_signals_received_total` from the start
    /// (at 0), so dashboards see every source the router serves.
    pub fn declare_transport(&self, transport: &str) {
        self.received(transport, 0);
    }

    /// Replaces the plugins reported (after a deploy, rollback or removal).
    pub fn set_plugins(&self, plugins: Vec<MeteredPlugin>) {
        *self.plugins.write().unwrap_or_else(|e| e.into_inner()) = plugins;
    }

    /// Adds `n` to a counter.
    pub fn add(&self, counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    /// Counts `n` signals taken in from `transport`.
    pub fn received(&self, transport: &str, n: u64) {
        self.received
            .get_or_create(&vec![("transport", transport.to_string())])
            .inc_by(n);
    }

    /// Counts one firing published by `route` (`jetstream` or `core`).
    pub fn published(&self, route: &str, n: u64) {
        self.published
            .get_or_create(&vec![("route", route.to_string())])
            .inc_by(n);
    }

    /// Counts one rejected message of `transport` for `reason` (the field of
    /// its error, `adapter` for an adapter's reject); also bumps `rejected`.
    pub fn reject(&self, transport: &str, reason: &str) {
        self.rejected.inc();
        let reason = if reason.is_empty() { "body" } else { reason };
        self.rejected_by_reason
            .get_or_create(&vec![
                ("transport", transport.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    /// Records one firing published `seconds` after it was created (in the
    /// store transaction of the signal that completed it).
    pub fn observe_firing(&self, seconds: f64) {
        self.firing_latency.observe(seconds.max(0.0));
    }

    /// Records one ingest commit that took `seconds`.
    pub fn observe_commit(&self, seconds: f64) {
        self.commit_seconds.observe(seconds);
    }

    /// Renders everything (OpenMetrics text, [`CONTENT_TYPE`]). Collectors
    /// read their sources now, so call it off the async threads.
    pub fn render(&self) -> String {
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
            tracing::error!(error = %e, "cannot render the metrics");
        }
        out
    }
}

/// Registers `metric` under `name` with `help` and returns it: the one place
/// a metric of this module is declared.
fn declare<M: Metric + Clone>(r: &mut Registry, name: &str, help: &str, metric: M) -> M {
    r.register(name, help.trim_end_matches('.'), metric.clone());
    metric
}

#[cfg(test)]
mod tests {
    //! The rendered text: names, labels and histogram rows as scrapers see them.

    use super::*;

    #[test]
    fn renders_counters_and_a_histogram() {
        let m = Metrics::new();
        m.declare_transport("sns");
        m.received("nats", 3);
        m.observe_commit(0.002);
        m.observe_commit(2.0);
        m.add(&m.stored, 2);
        m.reject("nats", "");
        let text = m.render();
        assert!(
            text.contains("signalbox_signals_received_total{transport=\"nats\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("signalbox_signals_received_total{transport=\"sns\"} 0"),
            "{text}"
        );
        assert!(text.contains("signalbox_signals_stored_total 2"), "{text}");
        assert!(
            text.contains("# HELP signalbox_signals_stored Signals stored.\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "signalbox_signals_rejected_by_reason_total{transport=\"nats\",reason=\"body\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("signalbox_firings_published_total{route=\"core\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("signalbox_plugin_"),
            "no plugin rows without plugins"
        );
        assert!(
            text.contains("signalbox_commit_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("signalbox_commit_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("signalbox_commit_seconds_count 2"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn gauges_of_other_rooms_render_at_scrape_time() {
        let m = Metrics::new();
        let value = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let v = value.clone();
        m.register_collector(Box::new(Gauges::new(move || {
            vec![GaugeRow::plain(
                "signalbox_subscriptions",
                "Live subscriptions.",
                v.load(std::sync::atomic::Ordering::Relaxed) as f64,
            )]
        })));
        assert!(
            m.render()
                .contains("# TYPE signalbox_subscriptions gauge\nsignalbox_subscriptions 1\n")
        );
        value.store(5, std::sync::atomic::Ordering::Relaxed);
        assert!(m.render().contains("signalbox_subscriptions 5\n"));
    }
}
