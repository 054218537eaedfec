//! Bringing a partition's local store up to its changelog before working it:
//! the state follows ownership with no shared disk.
//!
//! The store file is `<data_dir>/partitions/<p>.redb` and says how far it
//! got (`changelog_seq`). The partition's snapshots (objects `p<p>.<at>`,
//! one per changelog position `at`, written by its owners) say up to which
//! position the changelog may have been trimmed; the newest one counts, so a
//! late put of an older snapshot cannot hide a newer one. A local store at or
//! past the newest snapshot only replays the entries after its position; an
//! older one (or none) is replaced by that snapshot first. Then
//! every entry up to the subject's current last sequence is applied, in
//! order: a single message, or the chunks of an atomic batch put together.
//! Replay is idempotent, so a crash midway only means more replay next time.
//! The entries form a chain (each carries the sequence of the one before it,
//! its compare-and-set): a link that does not follow the store's position is
//! a gap, and the start fails naming it rather than applying over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use async_nats::jetstream::object_store::ObjectInfo;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use futures::StreamExt;
use signalbox_store::{ChangeSet, CommitDurability, Store, StoreOptions};
use tokio::io::AsyncReadExt;

use crate::group::Group;
use crate::group::lease::EXPECTED_LAST_SUBJECT_SEQ;
use crate::group::names::snapshot_partition;
use crate::nats::stream_position::stream_seq;

/// A partition store's options: no fsync (the changelog is the durable copy)
/// and a small cache (a router holds many of them).
pub(crate) fn store_options(dedup_retention: Duration) -> StoreOptions {
    StoreOptions {
        dedup_retention,
        durability: CommitDurability::None,
        cache_size: Some(16 * 1024 * 1024),
    }
}

/// Where partition `p`'s store lives.
pub(crate) fn store_path(data_dir: &Path, p: u32) -> PathBuf {
    data_dir.join("partitions").join(format!("{p}.redb"))
}

/// A stored snapshot of a partition: its object and the changelog position
/// it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredSnapshot {
    /// The object's name (`p<p>.<at>`, or `p<p>` from earlier versions).
    pub name: String,
    /// The changelog position the snapshot holds (its `changelog_seq`).
    pub at: u64,
}

/// How long listing the snapshot store may take.
const LIST_FOR: Duration = Duration::from_secs(10);

/// How long downloading one snapshot may take.
const DOWNLOAD_FOR: Duration = Duration::from_secs(300);

/// Every stored snapshot of partition `p`, oldest first. An object without a
/// readable position is left out (it cannot be placed against the log).
///
/// Read from the stream under the object store, not with the object store's
/// `list`: the stream's subject list names every object (as the base64 of
/// its name), and only this partition's metadata messages are then read,
/// each by a direct request. (`list` reads every object's metadata through
/// a consumer and ends only on a message that says none is pending, which
/// an object deleted meanwhile may never send.)
pub(super) async fn stored_snapshots(group: &Group, p: u32) -> Result<Vec<StoredSnapshot>, String> {
    let failed = |e: &dyn std::fmt::Display| format!("listing the snapshots of partition {p}: {e}");
    let list = async {
        let stream = &group.joined.snapshot_stream;
        let mine = store_subjects(stream, &group.names.snapshot_meta_prefix())
            .await
            .map_err(|e| failed(&e))?
            .into_iter()
            .filter(|subject| {
                let name = group.names.snapshot_meta_object(subject);
                name.as_deref().and_then(snapshot_partition) == Some(p)
            });
        let mut out = Vec::new();
        for subject in mine {
            // Deleted (and purged) since the subject list: left out.
            let Some(info) = live_object(stream, &subject)
                .await
                .map_err(|e| failed(&e))?
            else {
                continue;
            };
            match info
                .metadata
                .get("changelog_seq")
                .and_then(|v| v.parse().ok())
            {
                Some(at) => out.push(StoredSnapshot {
                    name: info.name,
                    at,
                }),
                None => tracing::warn!(
                    partition = p,
                    object = %info.name,
                    "snapshot object without a changelog position; left out"
                ),
            }
        }
        out.sort_by_key(|s| s.at);
        Ok(out)
    };
    tokio::time::timeout(LIST_FOR, list)
        .await
        .map_err(|_| failed(&format!("no answer within {LIST_FOR:?}")))?
}

/// Every subject of an object store's stream (the snapshot store's, the
/// plugin components') that starts with `prefix` and holds a message (the
/// stream's subject list).
pub(super) async fn store_subjects(
    stream: &stream::Stream,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let mut subjects = stream
        .info_with_subjects(format!("{prefix}>"))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(subject) = subjects.next().await {
        out.push(subject.map_err(|e| e.to_string())?.0);
    }
    Ok(out)
}

/// The metadata of the object on metadata subject `subject` of an object
/// store's stream, read by a direct get; `None` when it was deleted (or
/// purged) since the subject was listed.
pub(super) async fn live_object(
    stream: &stream::Stream,
    subject: &str,
) -> Result<Option<ObjectInfo>, String> {
    let message = match stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => m,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let info: ObjectInfo = serde_json::from_slice(&message.payload).map_err(|e| e.to_string())?;
    Ok((!info.deleted).then_some(info))
}

/// Replaces the file at `path` with snapshot object `name`.
async fn download_snapshot(group: &Group, name: &str, path: &Path) -> Result<(), String> {
    let mut object = group
        .joined
        .snapshots
        .get(name)
        .await
        .map_err(|e| format!("snapshot {name}: {e}"))?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("reading snapshot {name}: {e}"))?;
    let tmp = path.with_extension("restore");
    tokio::fs::write(&tmp, &bytes)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Opens partition `p`'s store, restored from the newest snapshot when the
/// local one is older than it, missing or unreadable (an unreadable file is
/// renamed `<p>.unreadable-<unix seconds>`, kept for a look, never read). A snapshot that cannot
/// be read or opened gives way to the older ones in turn (the log is kept
/// from the one before the newest: module docs of `snapshot`); the gap
/// check of [`catch_up`] refuses one too old.
pub(crate) async fn open(
    group: &Group,
    data_dir: &Path,
    dedup_retention: Duration,
    p: u32,
) -> Result<Arc<Store>, String> {
    let path = store_path(data_dir, p);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let snapshots = stored_snapshots(group, p).await?;
    let options = store_options(dedup_retention);
    let open = |path: PathBuf, options: StoreOptions| async move {
        tokio::task::spawn_blocking(move || Store::open(&path, options))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    };
    let local = if path.exists() {
        match open(path.clone(), options.clone()).await {
            Ok(store) => {
                let at = store.changelog_seq().map_err(|e| e.to_string())?;
                Some((store, at))
            }
            // The changelog is the truth: a local file that cannot be opened
            // is set aside and rebuilt from the newest snapshot and the log
            // (or the whole log when no snapshot was ever stored, as then
            // nothing was trimmed; the gap check refuses anything else).
            Err(e) => {
                let aside = path.with_extension(format!(
                    "unreadable-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                ));
                tokio::fs::rename(&path, &aside)
                    .await
                    .map_err(|r| format!("{e}; setting it aside as {}: {r}", aside.display()))?;
                tracing::error!(
                    partition = p,
                    error = %e,
                    set_aside = %aside.display(),
                    "local partition store unreadable; set aside and rebuilt from the group"
                );
                None
            }
        }
    } else {
        None
    };
    let newest = snapshots.last().map(|s| s.at);
    match (local, newest) {
        (Some((store, at)), Some(snap)) if at >= snap => return Ok(Arc::new(store)),
        (Some((store, _)), None) => return Ok(Arc::new(store)),
        (None, None) => return Ok(Arc::new(open(path, options).await?)),
        (local, Some(_)) => drop(local),
    }
    let mut failed = Vec::new();
    for snapshot in snapshots.iter().rev() {
        let restored = async {
            tokio::time::timeout(
                DOWNLOAD_FOR,
                download_snapshot(group, &snapshot.name, &path),
            )
            .await
            .map_err(|_| {
                format!(
                    "snapshot {}: not read within {DOWNLOAD_FOR:?}",
                    snapshot.name
                )
            })??;
            open(path.clone(), options.clone())
                .await
                .map_err(|e| format!("snapshot {}: {e}", snapshot.name))
        };
        match restored.await {
            Ok(store) => {
                tracing::info!(
                    partition = p,
                    object = %snapshot.name,
                    changelog_seq = snapshot.at,
                    "partition store restored from its snapshot"
                );
                return Ok(Arc::new(store));
            }
            Err(e) => {
                tracing::warn!(
                    partition = p,
                    object = %snapshot.name,
                    error = %e,
                    "snapshot not restored; trying an older one"
                );
                failed.push(e);
            }
        }
    }
    Err(format!(
        "partition {p}: no snapshot could be restored: {}",
        failed.join("; ")
    ))
}

/// The partition changelog's last sequence now (0 when empty).
pub(crate) async fn log_end(group: &Group, p: u32) -> Result<u64, String> {
    match group
        .joined
        .log
        .get_last_raw_message_by_subject(&group.names.log_subject(p))
        .await
    {
        Ok(m) => Ok(m.sequence),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(format!("changelog end of partition {p}: {e}")),
    }
}

/// Applies every changelog entry after the store's position up to the log's
/// end; returns the position reached.
pub(crate) async fn catch_up(group: &Group, store: &Arc<Store>, p: u32) -> Result<u64, String> {
    let mut at = store.changelog_seq().map_err(|e| e.to_string())?;
    let end = log_end(group, p).await?;
    if end < at {
        // The log is the truth: a store ahead of it (the log was trimmed
        // past its last entry, or recreated) is fenced at the log's end.
        tracing::warn!(
            partition = p,
            store = at,
            log = end,
            "partition store is ahead of its changelog; fencing at the changelog's end"
        );
        return Ok(end);
    }
    if end == at {
        return Ok(at);
    }
    let consumer = group
        .joined
        .log
        .create_consumer(consumer::pull::Config {
            filter_subject: group.names.log_subject(p),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: at + 1,
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("changelog reader of partition {p}: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("changelog reader of partition {p}: {e}"))?;
    let mut chunks: Vec<u8> = Vec::new();
    let mut applied = 0usize;
    // Every entry (a batch: its first chunk) carries the compare-and-set it
    // was written with, the sequence of the message before it on the
    // subject: the log is a chain, and a link that does not follow is a gap
    // (a snapshot older than what the log was trimmed to). Refused loudly,
    // never applied over.
    let mut previous = at;
    while at < end {
        let msg = match tokio::time::timeout(Duration::from_secs(10), messages.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(format!("changelog of partition {p}: {e}")),
            Ok(None) | Err(_) => {
                return Err(format!(
                    "changelog of partition {p} stopped at {at} before its end {end}"
                ));
            }
        };
        let seq = stream_seq(&msg);
        if seq <= at {
            continue;
        }
        let headers = msg.message.headers.as_ref();
        if let Some(expected) = headers
            .and_then(|h| h.get(EXPECTED_LAST_SUBJECT_SEQ))
            .and_then(|v| v.as_str().parse::<u64>().ok())
            && expected != previous
        {
            return Err(format!(
                "changelog of partition {p} has a gap: entry {seq} follows {expected}, but the store is at {previous}; its snapshot is older than what the log was trimmed to"
            ));
        }
        previous = seq;
        let in_batch = headers.and_then(|h| h.get("Nats-Batch-Id")).is_some();
        let last_of_batch = headers.and_then(|h| h.get("Nats-Batch-Commit")).is_some();
        if in_batch && !last_of_batch {
            chunks.extend_from_slice(&msg.message.payload);
            continue;
        }
        let bytes: Vec<u8> = if in_batch {
            chunks.extend_from_slice(&msg.message.payload);
            std::mem::take(&mut chunks)
        } else {
            msg.message.payload.to_vec()
        };
        let changes = ChangeSet::decode(&bytes)
            .map_err(|e| format!("changelog entry {seq} of partition {p}: {e}"))?;
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.apply(&changes, seq))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("applying changelog entry {seq} of partition {p}: {e}"))?;
        at = seq;
        applied += 1;
    }
    if applied > 0 {
        tracing::info!(
            partition = p,
            entries = applied,
            changelog_seq = at,
            "partition caught up from its changelog"
        );
    }
    Ok(at)
}
