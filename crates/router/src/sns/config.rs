//! The `[[sources.sns]]` table of the router's configuration.

use serde::{Deserialize, Serialize};

/// One SNS source: an HTTP endpoint that takes an SNS subscription's deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsSource {
    /// The source's name: the endpoint is `POST /sns/<name>`.
    pub name: String,
}
