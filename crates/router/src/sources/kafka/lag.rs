//! Consumer lag per Kafka partition, for `/metrics`.
//!
//! librdkafka reports statistics every few seconds (`statistics.interval.ms`);
//! the consumer context copies each assigned partition's `consumer_lag` (high
//! watermark minus the committed offset) here, replacing the previous report of
//! that source, so a partition that moved to another router disappears.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;

use crate::metrics::{Labels, Metrics};

/// Lag gauges of every Kafka source of one router.
#[derive(Debug, Default)]
pub struct LagGauges {
    /// (source, topic, partition) → lag in records.
    rows: Mutex<BTreeMap<(String, String, i32), i64>>,
}

impl LagGauges {
    /// Replaces the lags of `source` with `report` (topic, partition, lag).
    pub fn replace(&self, source: &str, report: Vec<(String, i32, i64)>) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        rows.retain(|(s, _, _), _| s != source);
        for (topic, partition, lag) in report {
            rows.insert((source.to_string(), topic, partition), lag);
        }
    }

    /// The lag of one partition, if reported.
    pub fn get(&self, source: &str, topic: &str, partition: i32) -> Option<i64> {
        let rows = self.rows.lock().ok()?;
        rows.get(&(source.to_string(), topic.to_string(), partition))
            .copied()
    }
}

impl prometheus_client::collector::Collector for LagGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(rows) = self.rows.lock() else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "signalbox_kafka_consumer_lag",
            "Records between the committed offset and the high watermark, per assigned partition.",
            None,
            MetricType::Gauge,
        )?;
        for ((source, topic, partition), lag) in rows.iter() {
            let labels: Labels = vec![
                ("source", source.clone()),
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            family.encode_family(&labels)?.encode_gauge(lag)?;
        }
        Ok(())
    }
}

/// The Kafka sources' metrics: worker restarts and consumer lag.
#[derive(Debug)]
pub struct KafkaMetrics {
    /// Worker processes that died and were started again.
    pub worker_restarts: Counter,
    /// Lag per assigned partition, as the workers last reported it.
    pub lag: Arc<LagGauges>,
}

impl KafkaMetrics {
    /// Registers `signalbox_kafka_worker_restarts_total` and the lag gauge.
    pub fn register(metrics: &Metrics) -> Arc<KafkaMetrics> {
        let worker_restarts = Counter::default();
        metrics.register(
            "signalbox_kafka_worker_restarts",
            "Kafka worker processes (one per source) that died and were started again.",
            worker_restarts.clone(),
        );
        let lag = Arc::new(LagGauges::default());
        metrics.register_collector(Box::new(lag.clone()));
        Arc::new(KafkaMetrics {
            worker_restarts,
            lag,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Reports replace each other per source; the gauge renders per partition.

    use super::*;

    #[test]
    fn a_report_replaces_the_previous_one_of_its_source() {
        let g = LagGauges::default();
        g.replace("a", vec![("t".into(), 0, 5), ("t".into(), 1, 2)]);
        g.replace("b", vec![("u".into(), 0, 1)]);
        g.replace("a", vec![("t".into(), 1, 0)]);
        assert_eq!(g.get("a", "t", 0), None);
        assert_eq!(g.get("a", "t", 1), Some(0));
        let metrics = Metrics::new();
        let registered = KafkaMetrics::register(&metrics);
        registered.lag.replace("b", vec![("u".into(), 0, 1)]);
        let text = metrics.render();
        assert!(
            text.contains(
                "signalbox_kafka_consumer_lag{source=\"b\",topic=\"u\",partition=\"0\"} 1"
            )
        );
    }
}
