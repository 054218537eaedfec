//! Snapshots of a partition's store, so that its changelog and input do not
//! grow without bound and a new owner does not replay from the start.
//!
//! Every `cluster.snapshot_every`, when the store moved since the last one:
//! a consistent copy of the store file (`Store::snapshot_to`, which reports
//! the changelog position it holds) is put in the object store as object
//! `p<p>.<at>`, one per position `at`, with that position in its metadata;
//! then the changelog is trimmed below the position of the newest snapshot
//! stored before it (one snapshot behind; the log's last message always
//! stays: it carries the subject's sequence that the next write expects),
//! the snapshots older than that one are deleted (their markers purged), and
//! the input is trimmed below the store's input position. Order matters: the
//! snapshot is stored before anything it covers is trimmed, so at every
//! moment the newest snapshot + remaining log = the state, and so does the
//! one before it (restore falls back to it when the newest cannot be read
//! or opened).
//!
//! A snapshot is stored only while the partition's lease is known held
//! (`Partition::answers_now`) and only when newer than every stored one.
//! Those checks come before the upload, so a router paused (or slow) between
//! them and its put can still land an older snapshot after a newer one. It
//! lands beside it, under its own name: restore takes the newest, and the
//! stalled writer's trims and deletes reach only below what it saw, which
//! is at or below everything the current owner keeps.
//!
//! The owner of partition 0 also deletes what unfinished uploads left in the
//! snapshot store and in the plugin components' store (`sweep`).

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
    // The owner of partition 0 also sweeps the chunks of unfinished uploads
    // (`sweep`), every quarter of their age.
    let orphan_age = group.config.snapshot_orphan_age;
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if partition.id == 0 && last_sweep.is_none_or(|t| t.elapsed() >= orphan_age / 4) {
            last_sweep = Some(std::time::Instant::now());
            if let Err(e) = super::sweep::sweep(&group, orphan_age).await {
                tracing::warn!(error = %e, "unfinished uploads not swept; trying again later");
            }
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
    // Only an owner that knows its lease held stores a snapshot, and only one
    // newer than every stored one (a put that is late past these checks
    // lands beside the newer ones under its own name: module docs). The
    // lease is checked last, right before the upload.
    let stored = super::restore::stored_snapshots(group, p).await?;
    let newest = stored.last().map(|s| s.at);
    if let Some(newest) = newest
        && newest >= at
    {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Ok(at);
    }
    if !partition.answers_now() {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(format!(
            "partition {p}: the lease is not known held; snapshot not stored"
        ));
    }
    let mut file = tokio::fs::File::open(&tmp)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let meta = ObjectMetadata {
        name: group.names.snapshot_object(p, at),
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
    // one snapshot behind), and drop the snapshots older than that one.
    if let Some(behind) = newest {
        if let Err(e) = group
            .joined
            .log
            .purge()
            .filter(group.names.log_subject(p))
            .sequence(behind)
            .await
        {
            tracing::debug!(partition = p, error = %e, "changelog not trimmed");
        }
        for old in stored.iter().filter(|s| s.at < behind) {
            if let Err(e) = drop_snapshot(group, &old.name).await {
                tracing::debug!(partition = p, object = %old.name, error = %e, "old snapshot not dropped");
            }
        }
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

/// Deletes snapshot object `name` and then the marker the object store
/// leaves for a deleted object, so that the bucket does not grow by one
/// marker per snapshot taken.
async fn drop_snapshot(group: &Group, name: &str) -> Result<(), String> {
    group
        .joined
        .snapshots
        .delete(name)
        .await
        .map_err(|e| format!("delete: {e}"))?;
    let meta_subject = group.names.snapshot_meta_subject(name);
    group
        .joined
        .snapshot_stream
        .purge()
        .filter(meta_subject)
        .await
        .map_err(|e| format!("purging its marker: {e}"))?;
    Ok(())
}
