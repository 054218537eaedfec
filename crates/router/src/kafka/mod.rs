//! Kafka ingestion: one consumer-group member per configured Kafka source.
//!
//! Each record becomes an envelope for the source's adapter plugin; the
//! resulting signals go through the same store transaction as every other
//! transport, and the record's offset is committed only after that
//! transaction is durable. Kafka gives at-least-once; signalbox's dedup on
//! `(name, id)` (default id `topic/partition/offset`) removes the repeats.
//! Records the adapter rejects go to a NATS dead-letter subject with the
//! reason and their coordinates, and the partition moves on.

pub mod config;
mod consumer;
mod context;
pub mod lag;

pub use config::KafkaSource;
pub(crate) use consumer::run;
pub use lag::LagGauges;
