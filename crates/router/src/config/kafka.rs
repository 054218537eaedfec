//! The `[[sources.kafka]]` table of the router's configuration, and its
//! translation into librdkafka settings.
//!
//! One entry per consumer-group member: brokers, topics, group, the adapter
//! plugin that decodes records, security, batching and where rejected records
//! go. Checks serde cannot do are in [`validate_all`]; every error names the
//! field as `sources.kafka[<name>].<field>`. Invariant of the translation:
//! auto-commit is always off (offsets are committed by signalbox after the
//! store transaction), whatever `properties` says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// Where a group with no committed offset starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// The oldest record still in the topic (the default: nothing is skipped).
    #[default]
    Earliest,
    /// Only records produced after the group first joins.
    Latest,
}

/// How the client talks to the brokers (Kafka's `security.protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL (the default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn as_kafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One Kafka source: a consumer-group member reading `topics` through `adapter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// The source's name (metrics, logs, dead letters).
    pub name: String,
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// Topics to consume (a topic that does not exist yet is picked up once
    /// it is created).
    pub topics: Vec<String>,
    /// The consumer group; routers with the same group share the partitions.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// The source adapter plugin (a `[[plugins.adapters]]` name) that decodes
    /// each record into signals.
    pub adapter: String,
    /// Where a new group starts: `earliest` (default) or `latest`.
    #[serde(default)]
    pub start: StartPosition,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with a `sasl_*` protocol).
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// The SASL user name.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// The SASL password (prefer `sasl_password_env`).
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// The environment variable holding the SASL password.
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// CA certificates (PEM) to verify the brokers.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Extra librdkafka properties, passed as they are (e.g.
    /// `"fetch.max.bytes" = "1048576"`); `enable.auto.commit` is always false.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Most records per store transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a batch waits to fill after its first record, e.g. `5ms`.
    #[serde(default = "default_batch_max_wait", with = "super::duration::text")]
    pub batch_max_wait: Duration,
    /// Most batches the worker hands to the router before the first of them
    /// is stored: with 2 (the default) the router decodes a batch while it
    /// stores the one before; 1 reads the next batch only once the last one
    /// is stored. A revoke waits until every batch handed out is stored.
    #[serde(default = "default_batches_in_flight")]
    pub batches_in_flight: usize,
    /// Offsets of stored records are committed to the group at most this
    /// often (and always when partitions are revoked and at shutdown), e.g.
    /// `1s`; `0s` commits after every batch. Records stored but not yet
    /// committed when the router dies are read again and taken as duplicates.
    #[serde(default = "default_commit_interval", with = "super::duration::text")]
    pub commit_interval: Duration,
    /// Records the adapter rejects (and records that crash it
    /// `max_decode_attempts` times) are published here, with the reason in
    /// `Signalbox-Error` and the coordinates in `Kafka-*` headers.
    #[serde(default = "default_dead_letter_subject")]
    pub dead_letter_subject: String,
    /// Failed adapter calls (trap, timeout, out of memory) on one record
    /// before that record is dead-lettered; an adapter that asks for a retry,
    /// or a quarantined one, is retried without limit.
    #[serde(default = "default_max_decode_attempts")]
    pub max_decode_attempts: u32,
}

fn default_group() -> String {
    "signalbox".into()
}
fn default_batch_size() -> usize {
    500
}
fn default_batch_max_wait() -> Duration {
    Duration::from_millis(5)
}
fn default_batches_in_flight() -> usize {
    2
}
fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_dead_letter_subject() -> String {
    "signalbox.dead.kafka".into()
}
fn default_max_decode_attempts() -> u32 {
    5
}

/// Checks every Kafka source; `adapters` are the configured adapter names.
pub(crate) fn validate_all(sources: &[KafkaSource], adapters: &[&str]) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for s in sources {
        let invalid = |field: &str, rule: String| ConfigError::Invalid {
            field: format!("sources.kafka[{}].{field}", s.name),
            rule,
        };
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(invalid(
                "name",
                "must be non-empty letters, digits, '-' or '_'".into(),
            ));
        }
        if !names.insert(s.name.as_str()) {
            return Err(invalid("name", "is used by another Kafka source".into()));
        }
        if s.brokers.is_empty() || s.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(invalid(
                "brokers",
                "must list at least one host:port".into(),
            ));
        }
        if s.topics.is_empty() || s.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(invalid("topics", "must list at least one topic".into()));
        }
        if s.group_id.trim().is_empty() {
            return Err(invalid("group_id", "must not be empty".into()));
        }
        if !adapters.contains(&s.adapter.as_str()) {
            return Err(invalid(
                "adapter",
                format!(
                    "no [[plugins.adapters]] named {:?}; configured: {adapters:?}",
                    s.adapter
                ),
            ));
        }
        if s.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        if s.batches_in_flight == 0 {
            return Err(invalid("batches_in_flight", "must be at least 1".into()));
        }
        if s.max_decode_attempts == 0 {
            return Err(invalid("max_decode_attempts", "must be at least 1".into()));
        }
        signalbox_model::subscription::validate_subject(&s.dead_letter_subject)
            .map_err(|r| invalid("dead_letter_subject", r))?;
        if s.security_protocol.uses_sasl() {
            match s.sasl_mechanism.as_deref() {
                Some("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512") => {}
                other => {
                    return Err(invalid(
                        "sasl_mechanism",
                        format!(
                            "{other:?}: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with a sasl_* protocol"
                        ),
                    ));
                }
            }
            if s.sasl_username.is_none() {
                return Err(invalid(
                    "sasl_username",
                    "is required with a sasl_* protocol".into(),
                ));
            }
            if s.sasl_password.is_none() == s.sasl_password_env.is_none() {
                return Err(invalid(
                    "sasl_password",
                    "give exactly one of sasl_password and sasl_password_env".into(),
                ));
            }
        } else if s.sasl_mechanism.is_some() {
            return Err(invalid(
                "sasl_mechanism",
                "needs security_protocol sasl_plaintext or sasl_ssl".into(),
            ));
        }
        if s.tls_cert_file.is_some() != s.tls_key_file.is_some() {
            return Err(invalid(
                "tls_cert_file",
                "tls_cert_file and tls_key_file go together".into(),
            ));
        }
        if s.properties.keys().any(|k| k == "enable.auto.commit") {
            return Err(invalid(
                "properties",
                "enable.auto.commit is managed by signalbox (offsets are committed after the store transaction)".into(),
            ));
        }
    }
    Ok(())
}

impl KafkaSource {
    /// The consumer's group session timeout (`session.timeout.ms` in
    /// `properties`, else 10 s): how long a member that died stays in the
    /// group.
    pub(crate) fn session_timeout(&self) -> Duration {
        self.properties
            .get("session.timeout.ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis)
    }

    /// The librdkafka settings of this source.
    pub(crate) fn client_config(&self) -> Result<rdkafka::ClientConfig, ConfigError> {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("group.id", &self.group_id)
            .set("client.id", format!("signalbox-{}", self.name))
            .set(
                "auto.offset.reset",
                match self.start {
                    StartPosition::Earliest => "earliest",
                    StartPosition::Latest => "latest",
                },
            )
            .set("security.protocol", self.security_protocol.as_kafka())
            // A topic created after start is picked up within seconds.
            .set("topic.metadata.refresh.interval.ms", "5000")
            // Lag for /metrics.
            .set("statistics.interval.ms", "5000")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000");
        if let Some(m) = &self.sasl_mechanism {
            c.set("sasl.mechanism", m);
        }
        if let Some(u) = &self.sasl_username {
            c.set("sasl.username", u);
        }
        let password = match (&self.sasl_password, &self.sasl_password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| ConfigError::Invalid {
                field: format!("sources.kafka[{}].sasl_password_env", self.name),
                rule: format!("environment variable {var} is not set"),
            })?),
            (None, None) => None,
        };
        if let Some(p) = password {
            c.set("sasl.password", p);
        }
        for (key, file) in [
            ("ssl.ca.location", &self.tls_ca_file),
            ("ssl.certificate.location", &self.tls_cert_file),
            ("ssl.key.location", &self.tls_key_file),
        ] {
            if let Some(f) = file {
                c.set(key, f.display().to_string());
            }
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        if self.properties.contains_key("debug") {
            // librdkafka's debug contexts (`debug = "cgrp,fetch"`) log at debug.
            c.set("log_level", "7")
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> KafkaSource {
        toml::from_str(
            r#"
            name = "orders"
            brokers = ["127.0.0.1:9092"]
            topics = ["orders"]
            adapter = "kafka-json"
            "#,
        )
        .expect("parses")
    }

    #[test]
    fn defaults_and_translation() {
        let s = source();
        assert_eq!(s.group_id, "signalbox");
        assert_eq!(s.start, StartPosition::Earliest);
        assert_eq!(s.batches_in_flight, 2);
        validate_all(std::slice::from_ref(&s), &["kafka-json"]).expect("valid");
        let c = s.client_config().expect("config");
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |s: KafkaSource| match validate_all(&[s], &["kafka-json"]) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        let mut s = source();
        s.adapter = "nope".into();
        assert_eq!(field(s), "sources.kafka[orders].adapter");
        let mut s = source();
        s.topics.clear();
        assert_eq!(field(s), "sources.kafka[orders].topics");
        let mut s = source();
        s.security_protocol = SecurityProtocol::SaslSsl;
        assert_eq!(field(s), "sources.kafka[orders].sasl_mechanism");
        let mut s = source();
        s.properties
            .insert("enable.auto.commit".into(), "true".into());
        assert_eq!(field(s), "sources.kafka[orders].properties");
        let mut s = source();
        s.batches_in_flight = 0;
        assert_eq!(field(s), "sources.kafka[orders].batches_in_flight");
    }
}
