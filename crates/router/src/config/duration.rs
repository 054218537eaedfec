//! Durations in configuration files are strings like `7d`, `90s` or `5ms`
//! (humantime's format); this is the serde helper every config table uses
//! (`#[serde(with = "crate::config::duration::text")]`), written once.

/// Serialize a `Duration` as humantime text and parse it back.
pub mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` as humantime text (`1h 30m`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads humantime text (`7d`, `90s`, `5ms`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
