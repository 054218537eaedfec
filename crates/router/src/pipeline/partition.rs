//! A partition: one store with its commit thread, the handoff of committed
//! firings to its outbox drainer, and the drainer's wake-up. A router alone
//! has exactly one (partition 0, its whole state); in group mode it has one
//! per partition it owns, each with a store of its own, and the set changes
//! as ownership moves ([`Partitions`]).
//!
//! In group mode a partition answers queries only while this router knows it
//! still holds the partition's lease ([`Partition::answers_now`]): a router
//! paused past its lease and resumed must not answer from a store another
//! owner has moved past. The instant is taken before the lease write was
//! sent, so it lapses here no later than the lease lapses at the server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use signalbox_store::Store;
use tokio::sync::Notify;

use super::catalog::Catalog;
use super::committer::Committer;
use super::handoff::Handoff;

/// One partition's store and the machinery around it.
pub struct Partition {
    /// Its number (0 for a router alone).
    pub id: u32,
    /// Its store.
    pub store: Arc<Store>,
    /// Its commit thread: every ingest transaction of the store runs there.
    pub(crate) committer: Committer,
    /// Firings its commit thread committed, for its drainer.
    pub(crate) handoff: Arc<Handoff>,
    /// Wakes its drainer for firings written outside the commit thread (wait
    /// answers, replay); commits wake it through `handoff`.
    pub outbox_wake: Notify,
    /// Group mode: input messages not yet taken, as the input consumer last
    /// saw (the partition's lag).
    pub input_pending: std::sync::atomic::AtomicU64,
    /// Group mode: until when its lease is known held here (module docs);
    /// `None` for a router alone, whose partition always answers.
    held_until: Mutex<Option<Instant>>,
}

impl Partition {
    /// Starts the commit thread of `store`; one transaction takes at most
    /// `merge_max` signals (unless a single batch is larger).
    pub fn start(
        id: u32,
        store: Arc<Store>,
        catalog: Arc<Catalog>,
        merge_max: usize,
    ) -> std::io::Result<Partition> {
        let handoff = Arc::new(Handoff::default());
        let committer = Committer::start(store.clone(), catalog, handoff.clone(), merge_max)?;
        Ok(Partition {
            id,
            store,
            committer,
            handoff,
            outbox_wake: Notify::new(),
            input_pending: std::sync::atomic::AtomicU64::new(0),
            held_until: Mutex::new(None),
        })
    }

    /// Group mode: its lease is known held until `until` (a renewal sent at
    /// `until - ttl` succeeded).
    pub fn held_until(&self, until: Instant) {
        *self.held_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    /// Whether this router may answer queries for it now (module docs).
    pub fn answers_now(&self) -> bool {
        match *self.held_until.lock().unwrap_or_else(|e| e.into_inner()) {
            None => true,
            Some(until) => Instant::now() < until,
        }
    }
}

/// The partitions a router works now, by number.
#[derive(Default)]
pub struct Partitions(RwLock<BTreeMap<u32, Arc<Partition>>>);

impl Partitions {
    /// Adds (or replaces) a partition.
    pub fn insert(&self, p: Arc<Partition>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.id, p);
    }

    /// Removes partition `id`.
    pub fn remove(&self, id: u32) -> Option<Arc<Partition>> {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// Partition `id`, if worked here.
    pub fn get(&self, id: u32) -> Option<Arc<Partition>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every partition worked here, by number.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The numbers of the partitions worked here.
    pub fn ids(&self) -> Vec<u32> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}
