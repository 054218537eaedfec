//! Snapshots of a partition's store, so that its changelog and input do not
//! grow without bound and a new owner does not replay from the start.
//!
//! Every `cluster.snapshot_every`, when the store moved since the last one:
//! a consistent copy of the store file (`Store::snapshot_to`, which reports
//! the changelog position it holds) is put in the object store as `p<p>` with
//! that position in its metadata; then the changelog is trimmed below the
//! position of the snapshot stored before it (one snapshot behind; the
//! log's last message always stays: it carries the subject's sequence that
//! the next write expects), and the input below the store's input position.
//! Order matters: the snapshot is stored before anything it covers is
//! trimmed, so at every moment snapshot + remaining log = the state. A
//! snapshot is stored only while the partition's lease is known held
//! (`Partition::answers_now`) and only over an older one, so a router resumed
//! after a pause past its lease does not put back a snapshot older than what
//! the new owner trimmed the log to (restore also refuses such a gap). Those
//! checks come before the upload, though: a router paused (or slow) between
//! them and its put can still land an older snapshot over a newer one. The
//! trim one snapshot behind keeps the log from the position that was stored
//! when such a writer checked, so its snapshot still meets the log, unless
//! two more snapshots were stored while it was stalled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_nats::jetstream::object_store::ObjectMetadata;
use tokio::sync::watch;

use crate::group::Group;
use crate::pipeline::partition::Partition;

/// Snapshots partition `partition` until `stop`.
pub(crate) async fn run(
    group: Arc<Group>,
    partition: Arc<Partition>,
    data_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    let every = group.config.snapshot_every;
    let mut last_taken = partition.store.changelog_seq().unwrap_or(0);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = partition.store.changelog_seq().unwrap_or(0);
        if now <= last_taken {
            continue;
        }
        match take(&group, &partition, &data_dir).await {
            Ok(at) => last_taken = at,
            Err(e) => {
                tracing::warn!(partition = partition.id, error = %e, "snapshot not taken; trying again later")
            }
        }
    }
}

/// Takes one snapshot, stores it, then trims what it covers.
pub(crate) async fn take(
    group: &Group,
    partition: &Partition,
    data_dir: &std::path::Path,
) -> Result<u64, String> {
    let p = partition.id;
    let tmp = data_dir.join("partitions").join(format!("{p}.snapshot"));
    let store = partition.store.clone();
    let path = tmp.clone();
    let at = tokio::task::spawn_blocking(move || store.snapshot_to(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("copy: {e}"))?;
    let input_seq = partition.store.input_seq().ok().flatten().unwrap_or(0);
    // Only an owner that knows its lease held stores a snapshot, and never
    // one older than the stored one: a router resumed after a pause past its
    // lease would otherwise put back an old snapshot below what the new
    // owner trimmed the log to.
    if !partition.answers_now() {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(format!(
            "partition {p}: the lease is not known held; snapshot not stored"
        ));
    }
    let stored = super::restore::snapshot_position(group, p).await?;
    if let Some(stored) = stored
        && stored >= at
    {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Ok(at);
    }
    let mut file = tokio::fs::File::open(&tmp)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let meta = ObjectMetadata {
        name: group.names.snapshot_object(p),
        description: Some(format!("partition {p} at changelog {at}")),
        metadata: HashMap::from([
            ("changelog_seq".to_string(), at.to_string()),
            ("input_seq".to_string(), input_seq.to_string()),
        ]),
        ..Default::default()
    };
    group
        .joined
        .snapshots
        .put(meta, &mut file)
        .await
        .map_err(|e| format!("upload: {e}"))?;
    let _ = tokio::fs::remove_file(&tmp).await;
    // Trim what the snapshot stored before this one covers (module docs:
    // one snapshot behind, so that a late put of an older snapshot still
    // meets the log).
    if let Some(behind) = stored
        && let Err(e) = group
            .joined
            .log
            .purge()
            .filter(group.names.log_subject(p))
            .sequence(behind)
            .await
    {
        tracing::debug!(partition = p, error = %e, "changelog not trimmed");
    }
    if input_seq > 0
        && let Err(e) = group
            .joined
            .input
            .purge()
            .filter(group.names.in_filter(p))
            .sequence(input_seq + 1)
            .await
    {
        tracing::debug!(partition = p, error = %e, "input not trimmed");
    }
    tracing::info!(
        partition = p,
        changelog_seq = at,
        input_seq,
        "partition snapshot stored"
    );
    Ok(at)
}
