//! Kafka ingestion: one consumer-group member per configured Kafka source.
//!
//! Each record becomes an envelope for the source's adapter plugin; the
//! resulting signals go through the same store transaction as every other
//! transport, and the record's offset is committed only after that
//! transaction is durable. Kafka gives at-least-once; signalbox's dedup on
//! `(name, id)` (default id `topic/partition/offset`) removes the repeats.

pub mod config;

pub use config::KafkaSource;
