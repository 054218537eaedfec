//! The `[cluster]` table: group mode. Without it the router runs alone (single
//! mode, the embedded default). With it, N routers share the work of one
//! group on a NATS cluster: the signal space is cut into `partitions`, each
//! owned by one router at a time, with its state in JetStream (docs/SCALING.md).
//!
//! What is fixed when the group is created: `partitions` (it decides where
//! every signal's state lives), the subject prefix and the ingest mode. A
//! router whose settings disagree with the group's refuses to start and says
//! what differs (checked against the group's record in NATS, not here).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// `[cluster]`: the group this router belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The group's name, `[A-Za-z0-9_-]`, 1–32 characters: it names the
    /// group's streams and buckets (`SBX_<GROUP>_*`) and subjects (`sbx.<group>.>`).
    pub group: String,
    /// How many partitions the signal space is cut into (1–1024; fixed when
    /// the group is created).
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Replicas of the group's streams and buckets (1–5; 3 on a 3-node cluster).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// This router's name in the group (default: a fresh id at each start).
    /// Stable names keep partitions on the same router across restarts, whose
    /// local stores then only catch up.
    #[serde(default)]
    pub member: Option<String>,
    /// How long a partition's lease lasts without renewal: after a router dies,
    /// its partitions move once their leases lapse (renewed every third of it).
    #[serde(default = "default_lease_ttl", with = "super::duration::text")]
    pub lease_ttl: Duration,
    /// A partition's owner writes a snapshot of its store this often (and
    /// trims the changelog before it), e.g. `1m`.
    #[serde(default = "default_snapshot_every", with = "super::duration::text")]
    pub snapshot_every: Duration,
    /// How old the chunks of an upload that never finished (its router died
    /// mid-upload), to the snapshot store or the plugin components' store,
    /// must be before they are deleted; keep it well above the longest
    /// upload, whose chunks would otherwise be taken.
    #[serde(
        default = "default_snapshot_orphan_age",
        with = "super::duration::text"
    )]
    pub snapshot_orphan_age: Duration,
}

fn default_partitions() -> u32 {
    64
}

fn default_replicas() -> usize {
    3
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(3)
}

fn default_snapshot_every() -> Duration {
    Duration::from_secs(60)
}

fn default_snapshot_orphan_age() -> Duration {
    Duration::from_secs(3600)
}

impl ClusterConfig {
    /// A group with the defaults.
    pub fn new(group: &str) -> ClusterConfig {
        ClusterConfig {
            group: group.to_string(),
            partitions: default_partitions(),
            replicas: default_replicas(),
            member: None,
            lease_ttl: default_lease_ttl(),
            snapshot_every: default_snapshot_every(),
            snapshot_orphan_age: default_snapshot_orphan_age(),
        }
    }

    /// Checks the rules serde cannot; errors name `cluster.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, rule: &str| ConfigError::Invalid {
            field: format!("cluster.{field}"),
            rule: rule.into(),
        };
        if self.group.is_empty()
            || self.group.len() > 32
            || !self
                .group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "group",
                "must be 1-32 characters of A-Z, a-z, 0-9, '_' or '-'",
            ));
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(invalid("partitions", "must be between 1 and 1024"));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(invalid("replicas", "must be between 1 and 5"));
        }
        if let Some(m) = &self.member
            && (m.is_empty()
                || m.len() > 64
                || !m
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return Err(invalid(
                "member",
                "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) || self.lease_ttl > Duration::from_secs(300) {
            return Err(invalid("lease_ttl", "must be between 1s and 5m"));
        }
        if self.snapshot_every < Duration::from_secs(1) {
            return Err(invalid("snapshot_every", "must be at least 1s"));
        }
        if self.snapshot_orphan_age < Duration::from_secs(1) {
            return Err(invalid("snapshot_orphan_age", "must be at least 1s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Defaults and the rules, each error naming its key.

    use super::*;

    fn parse(text: &str) -> Result<ClusterConfig, String> {
        let c: ClusterConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = parse("group = \"prod\"").expect("valid");
        assert_eq!(c.partitions, 64);
        assert_eq!(c.replicas, 3);
        assert_eq!(c.lease_ttl, Duration::from_secs(3));
        assert_eq!(c.snapshot_orphan_age, Duration::from_secs(3600));
        assert_eq!(c, ClusterConfig::new("prod"));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("group = \"a.b\"", "cluster.group"),
            ("group = \"\"", "cluster.group"),
            ("group = \"g\"\npartitions = 0", "cluster.partitions"),
            ("group = \"g\"\npartitions = 5000", "cluster.partitions"),
            ("group = \"g\"\nreplicas = 7", "cluster.replicas"),
            ("group = \"g\"\nmember = \"a b\"", "cluster.member"),
            ("group = \"g\"\nlease_ttl = \"10ms\"", "cluster.lease_ttl"),
            (
                "group = \"g\"\nsnapshot_orphan_age = \"500ms\"",
                "cluster.snapshot_orphan_age",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(
            parse("group = \"g\"\nparts = 3")
                .expect_err("unknown")
                .contains("parts")
        );
    }
}
