//! Deleting the chunks that uploads which never finished left in the
//! group's object stores: the snapshot store and the plugin components'.
//!
//! The object store writes an upload's chunks on `$O.<bucket>.C.<nuid>` and
//! its metadata (naming that `nuid`) last; a router that dies mid-upload
//! leaves chunks no metadata names, and so does one that dies between
//! replacing an object and purging the chunks it replaced. Nothing reads
//! them, but they hold storage on every replica for good. The owner of
//! partition 0 sweeps both stores (`snapshot::run`): chunk subjects that no
//! live object names and whose last chunk is older than
//! `cluster.snapshot_orphan_age` are purged.
//!
//! Invariants: the chunks of a live object are never purged (its metadata
//! names them); an upload in progress keeps writing chunks, so its last one
//! is younger than the age and it is left alone. An upload stalled longer
//! than the age loses its chunks; if it then writes its metadata, that
//! object cannot be read (a snapshot: restore falls back to the one before
//! it; a component: the routers that fetch it report it unavailable until
//! it is deployed again). The metadata is listed before the chunks, so an
//! upload that finishes in between has a young last chunk and is left
//! alone too.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};

use super::restore::{live_object, store_subjects};
use crate::group::Group;

/// How long one store's sweep may take before it gives up (it runs again
/// later).
const SWEEP_FOR: Duration = Duration::from_secs(60);

/// One object store of the group, as the sweep sees it.
struct SweptStore<'a> {
    /// What it holds, for logs and errors: `snapshot` or `component`.
    what: &'static str,
    /// The stream under it.
    stream: &'a stream::Stream,
    /// `$O.<bucket>.M.`
    meta_prefix: String,
    /// `$O.<bucket>.C.`
    chunk_prefix: String,
}

/// Purges the orphan chunks older than `older_than` of the snapshot store,
/// then of the plugin components' store; returns how many uploads' chunks
/// were purged. A store that fails is reported and the other still swept.
pub(crate) async fn sweep(group: &Group, older_than: Duration) -> Result<usize, String> {
    let stores = [
        SweptStore {
            what: "snapshot",
            stream: &group.joined.snapshot_stream,
            meta_prefix: group.names.snapshot_meta_prefix(),
            chunk_prefix: group.names.snapshot_chunk_prefix(),
        },
        SweptStore {
            what: "component",
            stream: &group.joined.plugin_blobs_stream,
            meta_prefix: group.names.plugin_blobs_meta_prefix(),
            chunk_prefix: group.names.plugin_blobs_chunk_prefix(),
        },
    ];
    let mut purged = 0;
    let mut errors = Vec::new();
    for store in &stores {
        match sweep_store(store, older_than).await {
            Ok(n) => purged += n,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(purged)
    } else {
        Err(errors.join("; "))
    }
}

/// Purges the orphan chunks of one store older than `older_than`.
async fn sweep_store(store: &SweptStore<'_>, older_than: Duration) -> Result<usize, String> {
    let what = store.what;
    let failed = |e: &dyn std::fmt::Display| format!("sweeping the {what} store: {e}");
    let stream = store.stream;
    let work = async {
        // Every upload a live object names (metadata first: module docs).
        let mut live = HashSet::new();
        let metas = store_subjects(stream, &store.meta_prefix)
            .await
            .map_err(|e| failed(&e))?;
        for subject in metas {
            if let Some(info) = live_object(stream, &subject)
                .await
                .map_err(|e| failed(&e))?
            {
                live.insert(info.nuid);
            }
        }
        // Every upload with chunks, and when its last chunk was written.
        let prefix = &store.chunk_prefix;
        let chunks = store_subjects(stream, prefix)
            .await
            .map_err(|e| failed(&e))?;
        let mut uploads = Vec::new();
        for subject in chunks {
            let Some(nuid) = subject.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if live.contains(nuid) {
                continue;
            }
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => uploads.push((nuid.to_string(), m.time.unix_timestamp())),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(failed(&e)),
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut purged = 0;
        for nuid in orphans(&live, &uploads, now, older_than) {
            stream
                .purge()
                .filter(format!("{prefix}{nuid}"))
                .await
                .map_err(|e| failed(&e))?;
            tracing::info!(upload = %nuid, "chunks of an unfinished {what} upload deleted");
            purged += 1;
        }
        Ok(purged)
    };
    tokio::time::timeout(SWEEP_FOR, work)
        .await
        .map_err(|_| failed(&format!("not done within {SWEEP_FOR:?}")))?
}

/// The uploads to purge: those no live object names whose last chunk
/// (`uploads`: nuid, unix seconds) is at least `older_than` before `now`.
fn orphans<'a>(
    live: &HashSet<String>,
    uploads: &'a [(String, i64)],
    now: i64,
    older_than: Duration,
) -> Vec<&'a str> {
    let age = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
    uploads
        .iter()
        .filter(|(nuid, last)| !live.contains(nuid) && now.saturating_sub(*last) >= age)
        .map(|(nuid, _)| nuid.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    //! Which uploads a sweep takes.

    use super::*;

    #[test]
    fn only_old_uploads_no_live_object_names_are_orphans() {
        let live: HashSet<String> = ["LIVE".to_string()].into();
        let uploads = vec![
            // old, but a live object's
            ("LIVE".to_string(), 0),
            // old and named by nothing
            ("OLD".to_string(), 100),
            // an upload still going on
            ("YOUNG".to_string(), 3_990),
            // exactly the age
            ("EDGE".to_string(), 400),
        ];
        let found = orphans(&live, &uploads, 4_000, Duration::from_secs(3_600));
        assert_eq!(found, vec!["OLD", "EDGE"]);
        assert!(orphans(&live, &uploads, 4_000, Duration::from_secs(u64::MAX)).is_empty());
    }
}
