//! Kafka ingestion: one consumer-group member per configured Kafka source.
//!
//! Each source's librdkafka consumer runs in a worker process of its own
//! (`signalbox kafka-worker`, see `worker.rs`), so a crash in the C library
//! costs a worker restart, not the router. Each record the worker reads
//! becomes an envelope for the source's adapter plugin in the router; the
//! resulting signals go through the same store transaction as every other
//! transport, and the record's offset is committed only after that
//! transaction is durable. Kafka gives at-least-once; signalbox's dedup on
//! `(name, id)` (default id `topic/partition/offset`) removes the repeats.
//! Records the adapter rejects go to a NATS dead-letter subject with the
//! reason and their coordinates, and the partition moves on.

mod consumer;
pub mod lag;
pub mod wire;
pub mod worker;
mod worker_process;

pub use crate::config::KafkaSource;
pub(crate) use consumer::{TRANSPORT, run};
pub use lag::{KafkaMetrics, LagGauges};
pub use worker_process::SUBCOMMAND as WORKER_SUBCOMMAND;
