//! Consumer lag per Kafka partition, for `/metrics`.
//!
//! librdkafka reports statistics every few seconds (`statistics.interval.ms`);
//! the consumer context copies each assigned partition's `consumer_lag` (high
//! watermark minus the committed offset) here, replacing the previous report of
//! that source, so a partition that moved to another router disappears.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

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

    /// The gauge in the Prometheus text format (nothing when no Kafka source).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(rows) = self.rows.lock() else {
            return out;
        };
        if rows.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "# HELP signalbox_kafka_consumer_lag Records between the committed offset and the high watermark, per assigned partition.\n# TYPE signalbox_kafka_consumer_lag gauge"
        );
        for ((source, topic, partition), lag) in rows.iter() {
            let _ = writeln!(
                out,
                "signalbox_kafka_consumer_lag{{source=\"{source}\",topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_replaces_the_previous_one_of_its_source() {
        let g = LagGauges::default();
        g.replace("a", vec![("t".into(), 0, 5), ("t".into(), 1, 2)]);
        g.replace("b", vec![("u".into(), 0, 1)]);
        g.replace("a", vec![("t".into(), 1, 0)]);
        assert_eq!(g.get("a", "t", 0), None);
        assert_eq!(g.get("a", "t", 1), Some(0));
        let text = g.render();
        assert!(
            text.contains(
                "signalbox_kafka_consumer_lag{source=\"b\",topic=\"u\",partition=\"0\"} 1"
            )
        );
    }
}
