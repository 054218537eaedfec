//! The `[[sources.kafka]]` table of the router's configuration.

use serde::{Deserialize, Serialize};

/// One Kafka source: a consumer-group member reading `topics` through `adapter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// The source's name (metrics, logs, dead letters).
    pub name: String,
}
