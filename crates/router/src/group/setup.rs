//! Joining a group at start: check the server, then the group's record, then
//! create (or verify) its streams and buckets. The checks come first and write
//! nothing, so a router with bad settings leaves the cluster as it found it:
//!
//! 1. the server's version is at least [`MIN_SERVER`] (per-message TTL,
//!    atomic batch publish) and JetStream is enabled;
//! 2. the group record (KV `SBX_<GROUP>_CONFIG`, key `group`): if the group
//!    exists, its partition count, subject prefix and ingest mode must equal
//!    this router's — a difference is refused, naming the setting and both
//!    values; if it does not, this router creates it (create-only, so two
//!    routers starting at once agree on one record);
//! 3. the streams and buckets of `group/names.rs`, created if missing, then
//!    read back: a server that silently dropped a feature is refused.

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use serde::{Deserialize, Serialize};

use super::names::GroupNames;
use crate::config::{ClusterConfig, IngestMode, RouterConfig};
use crate::nats::version::parse_version;

/// The oldest nats-server group mode runs on: 2.12 has per-message TTL (2.11)
/// and atomic batch publish (2.12).
pub const MIN_SERVER: (u64, u64, u64) = (2, 12, 0);

/// How long a changelog or input publish may be retried with the same
/// `Nats-Msg-Id` and still be dropped as a duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Why a router could not join its group. Nothing was written when a check
/// before the streams failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupSetupError {
    /// The server is too old.
    #[error(
        "cluster: nats-server {found} is too old for group mode, which needs {}.{}.{} or later (per-message TTL, atomic batch publish); scripts/setup.sh installs one",
        MIN_SERVER.0, MIN_SERVER.1, MIN_SERVER.2
    )]
    ServerTooOld {
        /// The version the server reported.
        found: String,
    },
    /// JetStream is not enabled.
    #[error(
        "cluster: JetStream is not enabled on the NATS server ({detail}); group mode keeps its state in JetStream (start nats-server with -js, or `jetstream {{}}` in its config)"
    )]
    NoJetStream {
        /// What the server answered.
        detail: String,
    },
    /// This router's settings differ from the group's.
    #[error(
        "{setting}: this router has {ours} but group {group:?} was created with {theirs}; a group's {setting} is fixed at creation (use that value, or another group)"
    )]
    Mismatch {
        /// The group.
        group: String,
        /// The config key that differs.
        setting: &'static str,
        /// This router's value.
        ours: String,
        /// The group's value.
        theirs: String,
    },
    /// A stream or bucket lacks a feature after creation.
    #[error(
        "cluster: {what} was created without {feature}: the server ignored it (nats-server older than {}.{}?)",
        MIN_SERVER.0, MIN_SERVER.1
    )]
    Feature {
        /// The stream or bucket.
        what: String,
        /// The missing setting.
        feature: &'static str,
    },
    /// NATS answered with an error.
    #[error("cluster: {what}: {detail}")]
    Nats {
        /// What was being done.
        what: String,
        /// The server's or client's answer.
        detail: String,
    },
}

/// The group's record, written once by the router that creates the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Format of this record.
    pub format: u32,
    /// Partitions of the signal space.
    pub partitions: u32,
    /// The subject prefix signals are published under.
    pub subject_prefix: String,
    /// `core` or `jetstream`.
    pub ingest: String,
    /// When the group was created.
    pub created_at_ms: i64,
}

impl GroupRecord {
    /// The record this router would write.
    pub fn of(config: &RouterConfig, cluster: &ClusterConfig) -> GroupRecord {
        GroupRecord {
            format: 1,
            partitions: cluster.partitions,
            subject_prefix: config.subject_prefix.clone(),
            ingest: ingest_name(config.ingest).to_string(),
            created_at_ms: crate::clock::now_ms(),
        }
    }

    /// The first setting in which `self` (this router) differs from `group`.
    pub fn differs_from(&self, group: &GroupRecord) -> Option<(&'static str, String, String)> {
        if self.partitions != group.partitions {
            return Some((
                "cluster.partitions",
                self.partitions.to_string(),
                group.partitions.to_string(),
            ));
        }
        if self.subject_prefix != group.subject_prefix {
            return Some((
                "subject_prefix",
                format!("{:?}", self.subject_prefix),
                format!("{:?}", group.subject_prefix),
            ));
        }
        if self.ingest != group.ingest {
            return Some((
                "ingest",
                format!("{:?}", self.ingest),
                format!("{:?}", group.ingest),
            ));
        }
        None
    }
}

fn ingest_name(mode: IngestMode) -> &'static str {
    match mode {
        IngestMode::Core => "core",
        IngestMode::Jetstream => "jetstream",
    }
}

fn nats_err(what: impl Into<String>) -> impl FnOnce(&dyn std::fmt::Display) -> GroupSetupError {
    let what = what.into();
    move |e| GroupSetupError::Nats {
        what,
        detail: e.to_string(),
    }
}

/// The group's handles once joined.
#[derive(Clone)]
pub struct Joined {
    /// The group's record.
    pub record: GroupRecord,
    /// The members bucket.
    pub members: kv::Store,
    /// The subscriptions bucket.
    pub subs: kv::Store,
    /// The snapshot store.
    pub snapshots: object_store::ObjectStore,
    /// The stream under the snapshot store (to purge the markers of deleted
    /// snapshots, which the object store API keeps).
    pub snapshot_stream: stream::Stream,
    /// The group's plugins: the active version of each (KV).
    pub plugins: kv::Store,
    /// Plugin components by content hash.
    pub plugin_blobs: object_store::ObjectStore,
    /// The stream under the components' object store (for the sweep of
    /// unfinished uploads).
    pub plugin_blobs_stream: stream::Stream,
    /// The input stream.
    pub input: stream::Stream,
    /// The changelog stream.
    pub log: stream::Stream,
    /// The lease stream.
    pub leases: stream::Stream,
}

/// How long joining retries what may be passing (a stream or bucket that a
/// router starting at the same moment is creating, a leader election).
const JOIN_FOR: Duration = Duration::from_secs(30);

/// Checks the server and the group, then creates what is missing (module
/// docs); NATS errors that may pass are retried for [`JOIN_FOR`].
pub async fn join(
    client: &async_nats::Client,
    config: &RouterConfig,
    cluster: &ClusterConfig,
) -> Result<Joined, GroupSetupError> {
    let deadline = tokio::time::Instant::now() + JOIN_FOR;
    loop {
        match join_once(client, config, cluster).await {
            Err(GroupSetupError::Nats { what, detail })
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::info!(%what, %detail, "joining the group: retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

async fn join_once(
    client: &async_nats::Client,
    config: &RouterConfig,
    cluster: &ClusterConfig,
) -> Result<Joined, GroupSetupError> {
    let version = client.server_info().version;
    match parse_version(&version) {
        Some(v) if v >= MIN_SERVER => {}
        _ => return Err(GroupSetupError::ServerTooOld { found: version }),
    }
    // The server says whether it runs JetStream; an answer to the account
    // query can still take a while on a cluster that is electing its leader.
    if !client.server_info().jetstream {
        return Err(GroupSetupError::NoJetStream {
            detail: format!(
                "server {} announces no JetStream",
                client.server_info().server_name
            ),
        });
    }
    let js = jetstream::new(client.clone());
    js.query_account()
        .await
        .map_err(|e| GroupSetupError::Nats {
            what: "JetStream account".into(),
            detail: e.to_string(),
        })?;
    let names = GroupNames::new(&cluster.group);
    let mine = GroupRecord::of(config, cluster);
    // The record, read before anything is written.
    if let Ok(bucket) = js.get_key_value(names.config_bucket()).await
        && let Some(theirs) = read_record(&bucket).await?
        && let Some((setting, ours, theirs)) = mine.differs_from(&theirs)
    {
        return Err(GroupSetupError::Mismatch {
            group: cluster.group.clone(),
            setting,
            ours,
            theirs,
        });
    }
    let replicas = cluster.replicas;
    let config_kv = js
        .create_key_value(kv::Config {
            bucket: names.config_bucket(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("bucket {}", names.config_bucket()))(&e))?;
    let body = serde_json::to_vec(&mine).unwrap_or_default();
    let record = match config_kv.create("group", body.into()).await {
        Ok(_) => {
            tracing::info!(group = %cluster.group, partitions = mine.partitions, "group created");
            mine
        }
        // Someone created it first (or earlier): compare with theirs.
        Err(_) => {
            let theirs = read_record(&config_kv)
                .await?
                .ok_or_else(|| GroupSetupError::Nats {
                    what: "group record".into(),
                    detail: "exists but cannot be read".into(),
                })?;
            if let Some((setting, ours, their_value)) = mine.differs_from(&theirs) {
                return Err(GroupSetupError::Mismatch {
                    group: cluster.group.clone(),
                    setting,
                    ours,
                    theirs: their_value,
                });
            }
            theirs
        }
    };
    let mut input_subjects = vec![names.in_all()];
    let transform = (config.ingest == IngestMode::Jetstream).then(|| {
        input_subjects.push(format!("{}.>", config.subject_prefix));
        stream::SubjectTransform {
            source: format!("{}.>", config.subject_prefix),
            destination: format!(
                "{}{{{{partition({})}}}}.{}.>",
                names.in_prefix(),
                record.partitions,
                config.subject_prefix
            ),
        }
    });
    let input = ensure_stream(
        &js,
        stream::Config {
            name: names.in_stream(),
            subjects: input_subjects,
            subject_transform: transform,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            max_age: config.dedup_retention.max(Duration::from_secs(24 * 3600)),
            storage: stream::StorageType::File,
            ..Default::default()
        },
        &[],
    )
    .await?;
    let log = ensure_stream(
        &js,
        stream::Config {
            name: names.log_stream(),
            subjects: vec![names.log_all()],
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            allow_atomic_publish: true,
            storage: stream::StorageType::File,
            ..Default::default()
        },
        &["allow_atomic"],
    )
    .await?;
    let leases = ensure_stream(
        &js,
        stream::Config {
            name: names.lease_stream(),
            subjects: vec![names.lease_all()],
            num_replicas: replicas,
            allow_message_ttl: true,
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            ..Default::default()
        },
        &["allow_msg_ttl"],
    )
    .await?;
    let members = js
        .create_key_value(kv::Config {
            bucket: names.members_bucket(),
            history: 1,
            max_age: cluster.lease_ttl,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("bucket {}", names.members_bucket()))(&e))?;
    let subs = js
        .create_key_value(kv::Config {
            bucket: names.subs_bucket(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("bucket {}", names.subs_bucket()))(&e))?;
    let snapshots = js
        .create_object_store(object_store::Config {
            bucket: names.snapshot_bucket(),
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("object store {}", names.snapshot_bucket()))(&e))?;
    let snapshot_stream = js
        .get_stream(names.snapshot_stream())
        .await
        .map_err(|e| nats_err(format!("stream {}", names.snapshot_stream()))(&e))?;
    let plugins = js
        .create_key_value(kv::Config {
            bucket: names.plugins_bucket(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("bucket {}", names.plugins_bucket()))(&e))?;
    let plugin_blobs = js
        .create_object_store(object_store::Config {
            bucket: names.plugin_blobs_bucket(),
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| nats_err(format!("object store {}", names.plugin_blobs_bucket()))(&e))?;
    let plugin_blobs_stream = js
        .get_stream(names.plugin_blobs_stream())
        .await
        .map_err(|e| nats_err(format!("stream {}", names.plugin_blobs_stream()))(&e))?;
    Ok(Joined {
        record,
        members,
        subs,
        snapshots,
        snapshot_stream,
        plugins,
        plugin_blobs,
        plugin_blobs_stream,
        input,
        log,
        leases,
    })
}

async fn read_record(bucket: &kv::Store) -> Result<Option<GroupRecord>, GroupSetupError> {
    match bucket.get("group").await {
        Ok(Some(bytes)) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| GroupSetupError::Nats {
                    what: "group record".into(),
                    detail: format!("not a group record: {e}"),
                })
        }
        Ok(None) => Ok(None),
        Err(e) => Err(nats_err("group record")(&e)),
    }
}

/// Creates the stream if missing, and checks that the server kept the
/// features we need.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    features: &[&'static str],
) -> Result<stream::Stream, GroupSetupError> {
    let name = config.name.clone();
    let want = config.clone();
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| nats_err(format!("stream {name}"))(&e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| nats_err(format!("stream {name}"))(&e))?;
    let got = &info.config;
    for feature in features {
        let kept = match *feature {
            "allow_atomic" => got.allow_atomic_publish,
            "allow_msg_ttl" => got.allow_message_ttl,
            _ => true,
        };
        if !kept {
            return Err(GroupSetupError::Feature {
                what: format!("stream {name}"),
                feature,
            });
        }
    }
    if let Some(missing) = want.subjects.iter().find(|s| !got.subjects.contains(s)) {
        return Err(GroupSetupError::Nats {
            what: format!("stream {name}"),
            detail: format!(
                "exists without subject {missing} (its subjects: {:?}); was it made by another version?",
                got.subjects
            ),
        });
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    //! Versions and record comparison (the NATS side is tested end to end).

    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.12.0-beta.3"), Some((2, 12, 0)));
        assert!(parse_version("2.9.10").is_some_and(|v| v < MIN_SERVER));
        assert!(parse_version("2.12.0").is_some_and(|v| v >= MIN_SERVER));
        assert_eq!(parse_version("junk"), None);
    }

    #[test]
    fn a_record_names_the_first_difference() {
        let config = RouterConfig::default();
        let mut cluster = ClusterConfig::new("g");
        let group = GroupRecord::of(&config, &cluster);
        assert_eq!(
            GroupRecord::of(&config, &cluster).differs_from(&group),
            None
        );
        cluster.partitions = 8;
        let (setting, ours, theirs) = GroupRecord::of(&config, &cluster)
            .differs_from(&group)
            .expect("differs");
        assert_eq!(
            (setting, ours.as_str(), theirs.as_str()),
            ("cluster.partitions", "8", "64")
        );
    }
}
