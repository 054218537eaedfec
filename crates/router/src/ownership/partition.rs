//! One partition this router works: started after its lease was taken, by
//! catching its store up to the changelog and writing the fence; then its
//! input, outbox and snapshot tasks run until it is stopped (lease lost,
//! handed over, the changelog refused a write, shutdown).
//!
//! Start: open the store (restored from the snapshot when older), apply the
//! changelog to its end, write the fence expecting that end (if another
//! writer got in first: catch up again and retry), record the fence as the
//! store's position, install the changelog writer, start the commit thread.
//! From the fence on, a previous owner's writes are refused by the server.
//!
//! Stop: the tasks are told to stop and awaited (the batch in hand is
//! finished or refused), the partition leaves the router's set, and its store
//! is closed. Nothing is lost by a stop at any point: what was committed is in
//! the changelog, what was not is still in the input.

use std::sync::Arc;
use std::time::Duration;

use signalbox_store::ChangeSet;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::restore;
use crate::group::Group;
use crate::group::changelog::{FenceError, LogWriter, fence};
use crate::pipeline::partition::Partition;
use crate::shared::Shared;

/// How many times a start retries its fence after the log moved.
const FENCE_TRIES: usize = 5;

/// A partition being worked.
pub(crate) struct Owned {
    /// The partition.
    pub partition: Arc<Partition>,
    /// Its changelog writer.
    pub writer: Arc<LogWriter>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Owned {
    /// Whether it must be dropped: its writer gave up or a task ended.
    pub fn failed(&mut self) -> bool {
        self.writer.stopped() || self.tasks.try_join_next().is_some()
    }

    /// Stops the tasks, waits for them, and takes the partition out.
    pub async fn stop(mut self, shared: &Shared) {
        let _ = self.stop.send(true);
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
        shared.partitions.remove(self.partition.id);
        // Its waits leave the catalog: their new owner matches them now.
        if let Ok(waiting) = self.partition.store.waits(true) {
            for w in waiting {
                shared.catalog.remove_wait(&w.wait.id);
            }
        }
        self.partition.store.set_changelog(None);
        tracing::info!(partition = self.partition.id, "partition stopped");
    }
}

/// Starts working partition `p` (module docs).
pub(crate) async fn start(
    shared: &Arc<Shared>,
    group: &Arc<Group>,
    p: u32,
    held_until: std::time::Instant,
) -> Result<Owned, String> {
    let store = restore::open(
        group,
        &shared.config.data_dir,
        shared.config.dedup_retention,
        p,
    )
    .await?;
    let subject = group.names.log_subject(p);
    let mut caught = restore::catch_up(group, &store, p).await?;
    let mut tries = 0;
    let fenced = loop {
        match fence(&group.js, &subject, &group.member, caught).await {
            Ok(seq) => break seq,
            Err(FenceError::Moved) if tries < FENCE_TRIES => {
                tries += 1;
                caught = restore::catch_up(group, &store, p).await?;
            }
            Err(e) => return Err(format!("partition {p}: {e}")),
        }
    };
    {
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.apply(&ChangeSet::new(), fenced))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("partition {p}: recording the fence: {e}"))?;
    }
    let writer = Arc::new(LogWriter::new(
        group.js.clone(),
        shared.client.clone(),
        subject,
        &group.member,
        fenced,
    ));
    store.set_changelog(Some(writer.clone()));
    let partition = Arc::new(
        Partition::start(
            p,
            store,
            shared.catalog.clone(),
            shared.config.batch_size.saturating_mul(4),
        )
        .map_err(|e| format!("partition {p}: cannot start its commit thread: {e}"))?,
    );
    partition.held_until(held_until);
    // Its waiting waits match arriving signals from now on.
    {
        let (s, c) = (partition.store.clone(), shared.catalog.clone());
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || crate::pipeline::waits::load_waiting(&s, &c)).await
        {
            tracing::warn!(partition = p, error = %e, "waits of the partition not loaded");
        }
    }
    shared.partitions.insert(partition.clone());
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let w = writer.clone();
    tasks.spawn(super::input::run(
        shared.clone(),
        group.clone(),
        partition.clone(),
        move || w.stopped(),
        rx.clone(),
    ));
    tasks.spawn(crate::delivery::outbox::run(
        shared.clone(),
        partition.clone(),
        rx.clone(),
    ));
    tasks.spawn(super::snapshot::run(
        group.clone(),
        partition.clone(),
        shared.config.data_dir.clone(),
        rx,
    ));
    tracing::info!(partition = p, fence = fenced, "partition started");
    Ok(Owned {
        partition,
        writer,
        stop,
        tasks,
    })
}
