//! Router configuration: the TOML file, with defaults for everything.
//!
//! The CLI layers flags and `SIGNALBOX_*` environment variables over this file;
//! this module only defines the shape, the defaults and the checks. Unknown keys
//! are rejected (a typo in a config file is an error, not a silent default).

pub mod cluster;
pub mod duration;
mod error;
pub mod kafka;
pub mod sns;
pub(crate) mod sns_url;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use signalbox_model::Limits;

pub use cluster::ClusterConfig;
pub use error::ConfigError;
pub use kafka::KafkaSource;
pub use sns::SnsSource;

/// Everything the router needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// How to reach NATS.
    pub nats: NatsConfig,
    /// Signals arrive on `<subject_prefix>.<name>`.
    pub subject_prefix: String,
    /// Queue group of the ingest subscription (several routers share the load).
    pub queue_group: String,
    /// Admin requests arrive on `<admin_prefix>.<verb>`.
    pub admin_prefix: String,
    /// Waits are registered by requests to this subject.
    pub wait_subject: String,
    /// A wait's answer is published to `<wait_prefix>.<wait id>`.
    pub wait_prefix: String,
    /// Bad messages are copied here with the reason in a `Signalbox-Error` header.
    pub rejected_subject: String,
    /// Directory of the redb file (`signalbox.redb`).
    pub data_dir: PathBuf,
    /// Files or directories of subscriptions (YAML/JSON) loaded at start.
    pub subscriptions: Vec<PathBuf>,
    /// Limits on each signal message.
    pub limits: Limits,
    /// How long `(name, id)` pairs are remembered for dedup, e.g. `7d`.
    #[serde(with = "duration::text")]
    pub dedup_retention: Duration,
    /// How long signal instances, delivered firings, answered waits and their
    /// lineage are kept, e.g. `30d` (pending firings and live waits are kept).
    #[serde(with = "duration::text")]
    pub history_retention: Duration,
    /// Most signals per store transaction.
    pub batch_size: usize,
    /// A firing whose publish failed this many times (while connected to NATS)
    /// is given up and published to `dead_letter_subject` with the reason.
    pub firing_max_attempts: u32,
    /// Where given-up firings go (header `Signalbox-Error` holds the reason).
    pub dead_letter_subject: String,
    /// WebAssembly plugins loaded at start: custom operators and source adapters.
    pub plugins: PluginsConfig,
    /// The HTTP admin API (health, admin verbs, lineage); off unless `listen` is set.
    pub http: HttpConfig,
    /// Where signals are taken from: `core` (a queue subscription; requests get
    /// signalbox's ack) or `jetstream` (a durable pull consumer on a stream; acked
    /// after commit, so nothing is lost while the router is down).
    pub ingest: IngestMode,
    /// The stream and consumer of `ingest = "jetstream"`.
    pub jetstream: JetStreamIngest,
    /// Sources besides NATS: Kafka consumer groups and SNS endpoints, each
    /// decoded by a source adapter plugin.
    pub sources: SourcesConfig,
    /// `[telemetry]`: OTLP export of the spans; none: nothing is exported.
    pub telemetry: Option<crate::telemetry::TelemetryConfig>,
    /// Group mode (`[cluster]`): several routers share one group on a NATS
    /// cluster. Absent: this router runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// Sources besides NATS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// `[[sources.kafka]]`: Kafka consumer-group members.
    pub kafka: Vec<KafkaSource>,
    /// `[[sources.sns]]`: SNS HTTP endpoints (`POST /sns/<name>`).
    pub sns: Vec<SnsSource>,
    /// The program each Kafka source's consumer runs in, as
    /// `<program> kafka-worker` (a process per source, so a crash inside
    /// librdkafka restarts that worker, not the router). Default: the running
    /// `signalbox` binary; set it when the router is embedded in another
    /// program.
    pub kafka_worker: Option<PathBuf>,
}

/// Plugins to load at start, and the limits every plugin runs under
/// (those loaded at start and those deployed at runtime alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Operator plugins (world `operator`); each becomes `{<name>: argument}` in patterns.
    pub operators: Vec<PluginEntry>,
    /// Source adapters (world `source-adapter`); each serves `POST /ingest/<name>`
    /// on the HTTP listener.
    pub adapters: Vec<PluginEntry>,
    /// Deadline of one operator `test` call (`5ms`).
    #[serde(with = "duration::text")]
    pub operator_deadline: Duration,
    /// Deadline of one operator `prepare` call, which compiles the argument (`100ms`).
    #[serde(with = "duration::text")]
    pub prepare_deadline: Duration,
    /// Deadline of one adapter `decode` call, and of creating an instance (`50ms`).
    #[serde(with = "duration::text")]
    pub adapter_deadline: Duration,
    /// Largest linear memory of one plugin instance, in MiB (64).
    pub max_memory_mib: usize,
    /// Consecutive failed calls after which a plugin is quarantined (5).
    pub quarantine_after: u32,
}

impl Default for PluginsConfig {
    fn default() -> PluginsConfig {
        let host = signalbox_plugin::HostConfig::default();
        PluginsConfig {
            operators: Vec::new(),
            adapters: Vec::new(),
            operator_deadline: host.operator_deadline,
            prepare_deadline: host.prepare_deadline,
            adapter_deadline: host.adapter_deadline,
            max_memory_mib: host.max_memory_bytes / (1024 * 1024),
            quarantine_after: host.quarantine_after,
        }
    }
}

/// One plugin to load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The name it is used under (operator name, or adapter route).
    pub name: String,
    /// The component file (`.wasm`).
    pub file: PathBuf,
    /// Settings the plugin reads with `config-get`.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// The HTTP listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, e.g. `127.0.0.1:7070`; none: no HTTP listener.
    pub listen: Option<String>,
    /// Bearer token required on `/v1/...` (also `SIGNALBOX_HTTP_TOKEN`); none:
    /// no token is asked for (bind to loopback then).
    pub token: Option<String>,
    /// Certificate chain (PEM, leaf first) to serve HTTPS with, with
    /// `tls_key_file`; none: plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

/// How signals are taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestMode {
    /// Core NATS queue subscription on `<prefix>.>`.
    Core,
    /// A durable pull consumer on a JetStream stream over `<prefix>.>`.
    Jetstream,
}

/// JetStream ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JetStreamIngest {
    /// Stream name; created over `<subject_prefix>.>` if missing.
    pub stream: String,
    /// Durable consumer name.
    pub consumer: String,
    /// The stream's `Nats-Msg-Id` duplicate window, e.g. `2m`.
    #[serde(with = "duration::text")]
    pub duplicate_window: Duration,
    /// How long the server waits for an ack before redelivering, e.g. `30s`.
    #[serde(with = "duration::text")]
    pub ack_wait: Duration,
    /// How long a batch waits to fill up once its first message is in, e.g.
    /// `1ms`. The default, `0s`, takes what is already buffered: batches
    /// still grow under load, since the commit thread merges the batches that
    /// queue while it commits, and a lone signal does not wait.
    #[serde(with = "duration::text")]
    pub batch_max_wait: Duration,
}

impl Default for JetStreamIngest {
    fn default() -> Self {
        JetStreamIngest {
            stream: "SIGNALS".into(),
            consumer: "signalbox".into(),
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(30),
            batch_max_wait: Duration::ZERO,
        }
    }
}

/// NATS connection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs; several for a cluster.
    pub urls: Vec<String>,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password (with `user`).
    pub password: Option<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// A `.creds` file (JWT + NKey seed).
    pub creds_file: Option<PathBuf>,
    /// Require TLS.
    pub tls_required: bool,
    /// Extra root certificate (PEM) to trust.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// Client key (PEM), with `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Connection name shown by the server.
    pub name: String,
    /// Messages a subscription buffers before the client drops new ones (a
    /// slow consumer, logged and counted in `/metrics`); with core ingest the
    /// dropped signals are lost.
    pub subscription_capacity: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            urls: vec!["nats://127.0.0.1:4222".into()],
            user: None,
            password: None,
            token: None,
            creds_file: None,
            tls_required: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            name: "signalbox".into(),
            subscription_capacity: 65_536,
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            nats: NatsConfig::default(),
            subject_prefix: "signals".into(),
            queue_group: "signalbox".into(),
            admin_prefix: "signalbox.admin".into(),
            rejected_subject: "signalbox.rejected".into(),
            wait_subject: "signalbox.wait".into(),
            wait_prefix: "signalbox.waits".into(),
            data_dir: PathBuf::from(".signalbox"),
            subscriptions: Vec::new(),
            limits: Limits::default(),
            dedup_retention: Duration::from_secs(7 * 24 * 3600),
            history_retention: Duration::from_secs(30 * 24 * 3600),
            batch_size: 256,
            firing_max_attempts: 20,
            dead_letter_subject: "signalbox.dead.firings".into(),
            plugins: PluginsConfig::default(),
            http: HttpConfig::default(),
            ingest: IngestMode::Core,
            jetstream: JetStreamIngest::default(),
            sources: SourcesConfig::default(),
            telemetry: None,
            cluster: None,
        }
    }
}

impl RouterConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<RouterConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RouterConfig::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<RouterConfig, ConfigError> {
        let cfg: RouterConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the rules that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, rule: &str| ConfigError::Invalid {
            field: field.into(),
            rule: rule.into(),
        };
        if self.nats.urls.is_empty() {
            return Err(invalid("nats.urls", "must list at least one server URL"));
        }
        for (field, d) in [
            ("plugins.operator_deadline", self.plugins.operator_deadline),
            ("plugins.prepare_deadline", self.plugins.prepare_deadline),
            ("plugins.adapter_deadline", self.plugins.adapter_deadline),
        ] {
            if d < Duration::from_millis(1) || d > Duration::from_secs(60) {
                return Err(invalid(field, "must be between 1ms and 60s"));
            }
        }
        if !(1..=4096).contains(&self.plugins.max_memory_mib) {
            return Err(invalid(
                "plugins.max_memory_mib",
                "must be between 1 and 4096",
            ));
        }
        if self.nats.subscription_capacity == 0 {
            return Err(invalid("nats.subscription_capacity", "must be at least 1"));
        }
        if self.plugins.quarantine_after == 0 {
            return Err(invalid("plugins.quarantine_after", "must be at least 1"));
        }
        if self.nats.user.is_some() != self.nats.password.is_some() {
            return Err(invalid("nats.user", "user and password go together"));
        }
        if self.nats.tls_cert_file.is_some() != self.nats.tls_key_file.is_some() {
            return Err(invalid(
                "nats.tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        for (field, subject) in [
            ("subject_prefix", &self.subject_prefix),
            ("admin_prefix", &self.admin_prefix),
            ("rejected_subject", &self.rejected_subject),
            ("wait_subject", &self.wait_subject),
            ("wait_prefix", &self.wait_prefix),
            ("dead_letter_subject", &self.dead_letter_subject),
        ] {
            signalbox_model::subscription::validate_subject(subject)
                .map_err(|r| invalid(field, &r))?;
        }
        for (field, name) in [
            ("jetstream.stream", &self.jetstream.stream),
            ("jetstream.consumer", &self.jetstream.consumer),
        ] {
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
            {
                return Err(invalid(
                    field,
                    "must be a non-empty name without whitespace, '.', '*', '>', '/' or '\\'",
                ));
            }
        }
        if let Some(listen) = &self.http.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "http.listen",
                "expected an address like 127.0.0.1:7070",
            ));
        }
        if self.http.tls_cert_file.is_some() != self.http.tls_key_file.is_some() {
            return Err(invalid(
                "http.tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if self.http.tls_cert_file.is_some() && self.http.listen.is_none() {
            return Err(invalid(
                "http.tls_cert_file",
                "TLS needs an HTTP listener: set http.listen too",
            ));
        }
        if let Some(telemetry) = &self.telemetry {
            telemetry
                .validate()
                .map_err(|(field, rule)| invalid(field, &rule))?;
        }
        if self.firing_max_attempts == 0 {
            return Err(invalid("firing_max_attempts", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1"));
        }
        if self.limits.max_message_bytes == 0 {
            return Err(invalid("limits.max_message_bytes", "must be at least 1"));
        }
        let adapters: Vec<&str> = self
            .plugins
            .adapters
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        sns::validate_all(&self.sources.sns, &adapters)?;
        kafka::validate_all(&self.sources.kafka, &adapters)?;
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
            if self.subject_prefix.starts_with('_') {
                return Err(invalid(
                    "subject_prefix",
                    "must not start with '_' in group mode (those tokens are the group's own)",
                ));
            }
        }
        Ok(())
    }

    /// Path of the redb file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("signalbox.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let cfg = RouterConfig::from_toml(
            "subject_prefix = \"sig\"\ndedup_retention = \"1h\"\n[nats]\nurls = [\"nats://a:4222\", \"nats://b:4222\"]\n",
        )
        .expect("valid");
        assert_eq!(cfg.subject_prefix, "sig");
        assert_eq!(cfg.dedup_retention, Duration::from_secs(3600));
        assert_eq!(cfg.nats.urls.len(), 2);
        assert_eq!(cfg.queue_group, "signalbox");
        assert_eq!(cfg.jetstream.batch_max_wait, Duration::ZERO);
        let waiting =
            RouterConfig::from_toml("[jetstream]\nbatch_max_wait = \"2ms\"\n").expect("valid");
        assert_eq!(waiting.jetstream.batch_max_wait, Duration::from_millis(2));
        assert_eq!(cfg.nats.subscription_capacity, 65_536);
        let small = RouterConfig::from_toml(
            "[nats]
subscription_capacity = 100
",
        )
        .expect("valid");
        assert_eq!(small.nats.subscription_capacity, 100);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let err = RouterConfig::from_toml("subjet_prefix = \"x\"").expect_err("typo");
        assert!(err.to_string().contains("subjet_prefix"), "{err}");
        let err = RouterConfig::from_toml("[nats]\nuser = \"u\"").expect_err("no password");
        assert!(err.to_string().contains("nats.user"), "{err}");
        let err = RouterConfig::from_toml("subject_prefix = \"a..b\"").expect_err("bad subject");
        assert!(err.to_string().contains("subject_prefix"), "{err}");
        let err = RouterConfig::from_toml("[nats]\nsubscription_capacity = 0").expect_err("zero");
        assert!(
            err.to_string().contains("nats.subscription_capacity")
                && err.to_string().contains("at least 1"),
            "{err}"
        );
    }

    #[test]
    fn http_tls_files_go_together() {
        let both = "[http]\nlisten = \"127.0.0.1:7443\"\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n";
        let cfg = RouterConfig::from_toml(both).expect("valid");
        assert_eq!(cfg.http.tls_key_file, Some(PathBuf::from("k.pem")));
        let err = RouterConfig::from_toml(
            "[http]\nlisten = \"127.0.0.1:7443\"\ntls_cert_file = \"c.pem\"\n",
        )
        .expect_err("no key");
        assert!(err.to_string().contains("http.tls_cert_file"), "{err}");
        let err = RouterConfig::from_toml(
            "[http]\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n",
        )
        .expect_err("no listener");
        assert!(err.to_string().contains("http.listen"), "{err}");
    }
}

#[cfg(test)]
mod sns_entries {
    //! `[[sources.sns]]` entries parsed through the whole config, so that
    //! errors carry their full key.
    use std::time::Duration;

    use super::{ConfigError, RouterConfig};

    const ADAPTER: &str = "[[plugins.adapters]]\nname = \"sns-json\"\nfile = \"x.wasm\"\n";

    fn parse(sns: &str) -> Result<RouterConfig, ConfigError> {
        RouterConfig::from_toml(&format!("{ADAPTER}[[sources.sns]]\n{sns}"))
    }

    #[test]
    fn defaults_and_full_entry() {
        let cfg = parse(
            "name = \"orders\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:123456789012:orders\"]\n",
        )
        .expect("valid");
        let s = &cfg.sources.sns[0];
        assert_eq!(s.max_age, Duration::from_secs(3600));
        assert!(!s.confirm_subscriptions && !s.raw_delivery);
        assert!(s.pinned_certs.is_empty() && s.endpoint_url.is_none());

        let cfg = parse(
            "name = \"orders\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws-cn:sns:cn-north-1:123456789012:orders\"]\nconfirm_subscriptions = true\nmax_age = \"15m\"\nraw_delivery = true\nendpoint_url = \"http://127.0.0.1:4566\"\n[sources.sns.pinned_certs]\n\"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem\" = \"cert.pem\"\n",
        )
        .expect("valid");
        let s = &cfg.sources.sns[0];
        assert_eq!(s.max_age, Duration::from_secs(900));
        assert!(s.confirm_subscriptions && s.raw_delivery);
        assert_eq!(s.pinned_certs.len(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "name = \"o\"\nadapter = \"nope\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n",
                "sources.sns[o].adapter",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = []\n",
                "sources.sns[o].topic_arns",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"orders\"]\n",
                "sources.sns[o].topic_arns",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\nmax_age = \"0s\"\n",
                "sources.sns[o].max_age",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\nendpoint_url = \"localhost\"\n",
                "sources.sns[o].endpoint_url",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n[sources.sns.pinned_certs]\n\"https://evil.example/cert.pem\" = \"c.pem\"\n",
                "sources.sns[o].pinned_certs",
            ),
            (
                "name = \"a b\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n",
                "sources.sns[\"a b\"].name",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\nmax_age = \"soon\"\n",
                "max_age",
            ),
            (
                "name = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\ntopic = \"x\"\n",
                "topic",
            ),
        ];
        for (text, field) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let two = format!(
            "{ADAPTER}[[sources.sns]]\nname = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n[[sources.sns]]\nname = \"o\"\nadapter = \"sns-json\"\ntopic_arns = [\"arn:aws:sns:us-east-1:1:t\"]\n"
        );
        let err = RouterConfig::from_toml(&two).expect_err("duplicate name");
        assert!(err.to_string().contains("sources.sns[o].name"), "{err}");
    }
}
