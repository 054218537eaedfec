//! The librdkafka client context of a Kafka source: its log lines, errors,
//! statistics (lag) and rebalances go to `tracing` and `/metrics`, tagged with
//! the source's name.
//!
//! Nothing here commits offsets: signalbox commits only after its store
//! transaction (see `consumer.rs`), so a rebalance can at worst hand a record
//! whose signals are stored but whose offset is not yet committed to another
//! member, which reads it again (at-least-once; dedup takes the repeat on the
//! same router's store).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, Statistics, TopicPartitionList};

use super::lag::LagGauges;

/// The context of one source's consumer.
pub(crate) struct SourceContext {
    pub source: String,
    pub lag: Arc<LagGauges>,
    /// Offsets of stored records not yet committed: (topic, partition) → the
    /// next offset to read.
    pub pending: Mutex<BTreeMap<(String, i32), i64>>,
}

impl SourceContext {
    /// Takes the pending offsets (of the partitions `keep` accepts) as a list.
    pub(crate) fn take_pending(&self, keep: impl Fn(&str, i32) -> bool) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        let Ok(mut pending) = self.pending.lock() else {
            return list;
        };
        pending.retain(|(topic, partition), offset| {
            if !keep(topic, *partition) {
                return true;
            }
            if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
                tracing::warn!(source = %self.source, error = %e, "bad offset in commit list");
            }
            false
        });
        list
    }
}

fn partitions(list: &TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let source = &self.source;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(%source, fac, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(%source, fac, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(%source, fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(%source, fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker connection losses land here; librdkafka reconnects by itself.
        tracing::warn!(source = %self.source, %error, "Kafka client: {reason}");
    }

    fn stats(&self, stats: Statistics) {
        let mut report = Vec::new();
        for (topic, t) in stats.topics {
            for (partition, p) in t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue;
                // a negative lag means "not known yet".
                if partition >= 0 && p.consumer_lag >= 0 {
                    report.push((topic.clone(), partition, p.consumer_lag));
                }
            }
        }
        self.lag.replace(&self.source, report);
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                tracing::info!(source = %self.source, partitions = %partitions(list), "Kafka partitions revoked");
                // Hand over cleanly: what is stored is committed before the
                // partitions move, so the next owner does not read it again.
                let revoked: Vec<(String, i32)> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let commit =
                    self.take_pending(|t, p| revoked.iter().any(|(rt, rp)| rt == t && *rp == p));
                if commit.count() > 0
                    && let Err(e) = consumer.commit(&commit, CommitMode::Sync)
                {
                    tracing::warn!(source = %self.source, error = %e, "Kafka offsets not committed on revoke");
                }
            }
            Rebalance::Assign(list) => {
                tracing::info!(source = %self.source, partitions = %partitions(list), "Kafka partitions assigned")
            }
            Rebalance::Error(e) => {
                tracing::warn!(source = %self.source, error = %e, "Kafka rebalance failed")
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // After a rebalance the old generation's commit is refused; the new
            // owner re-reads from the last commit, and dedup removes repeats.
            tracing::info!(source = %self.source, error = %e, partitions = %partitions(offsets), "Kafka offset commit not taken");
        }
    }
}
