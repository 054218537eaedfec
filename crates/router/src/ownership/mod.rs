//! Which partitions this router works, and working them: the ownership loop
//! of group mode. Every third of the lease TTL it writes its membership, reads
//! the live members, computes the partitions it should own (`group::assign`)
//! and then, per partition:
//! - owned and still wanted: renew the lease (refused: stop working it);
//! - owned but wanted elsewhere (a router joined): hand it over — stop its
//!   tasks, release the lease, so the new owner need not wait for it to lapse;
//! - wanted and not owned: take the lease when it is free and start it
//!   ([`partition::start`], in a task of its own so the loop keeps renewing);
//! - a partition whose changelog writer gave up, or whose task ended, is
//!   stopped and its lease released; it is taken again through catch-up.
//!
//! At shutdown every partition is stopped cleanly, its lease released and the
//! membership key removed, so the survivors take over at once.

mod input;
mod partition;
mod restore;
pub(crate) mod snapshot;
mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::group::Group;
use crate::group::assign::wanted_by;
use crate::group::lease::LeaseState;
use crate::group::members::{self, MemberInfo};
use crate::shared::Shared;

use partition::Owned;

/// A partition being started or worked.
/// `until`: the lease is known held until then (its last write was sent a
/// TTL before); the partition answers queries only until then.
enum Slot {
    Starting {
        lease: u64,
        until: Instant,
        task: JoinHandle<Result<Owned, String>>,
    },
    Running {
        lease: u64,
        until: Instant,
        owned: Owned,
    },
}

impl Slot {
    fn lease(&self) -> u64 {
        match self {
            Slot::Starting { lease, .. } | Slot::Running { lease, .. } => *lease,
        }
    }

    /// A renewal sent at `sent` was stored as `seq`.
    fn renewed(&mut self, seq: u64, sent: Instant, ttl: Duration) {
        match self {
            Slot::Starting { lease, until, .. } => {
                *lease = seq;
                *until = sent + ttl;
            }
            Slot::Running {
                lease,
                until,
                owned,
            } => {
                *lease = seq;
                *until = sent + ttl;
                owned.partition.held_until(*until);
            }
        }
    }

    /// Stops it (a start in progress is awaited, then stopped).
    async fn stop(self, shared: &Shared) {
        match self {
            Slot::Running { owned, .. } => owned.stop(shared).await,
            Slot::Starting { task, .. } => {
                if let Ok(Ok(owned)) = task.await {
                    owned.stop(shared).await;
                }
            }
        }
    }
}

/// Runs the ownership loop until `shutdown`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    group: Arc<Group>,
    http: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = group.config.lease_ttl / 3;
    let started_at_ms = crate::clock::now_ms();
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    loop {
        let owned: Vec<u32> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Running { .. }))
            .map(|(p, _)| *p)
            .collect();
        let me = MemberInfo {
            member: group.member.clone(),
            started_at_ms,
            http: http.clone(),
            owned,
            at_ms: crate::clock::now_ms(),
        };
        if let Err(e) = members::heartbeat(&group.joined.members, &me).await {
            tracing::warn!(error = %e, "cannot write this router's membership");
        }
        match members::live(&group.joined.members).await {
            Ok(live) => {
                let names: Vec<String> = live.into_iter().map(|m| m.member).collect();
                let wanted: BTreeSet<u32> = wanted_by(&group.member, &names, group.partitions())
                    .into_iter()
                    .collect();
                step(&shared, &group, &mut slots, &wanted).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the group's members"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => break,
        }
    }
    // Clean stop: hand every partition over.
    let _ = members::leave(&group.joined.members, &group.member).await;
    for (p, slot) in std::mem::take(&mut slots) {
        let lease = slot.lease();
        slot.stop(&shared).await;
        let _ = group.leases.release(p, lease).await;
    }
    tracing::info!(group = %group.config.group, "left the group");
}

/// One pass over the partitions (module docs).
async fn step(
    shared: &Arc<Shared>,
    group: &Arc<Group>,
    slots: &mut BTreeMap<u32, Slot>,
    wanted: &BTreeSet<u32>,
) {
    // Starts that finished.
    let finished: Vec<u32> = slots
        .iter()
        .filter(|(_, s)| matches!(s, Slot::Starting { task, .. } if task.is_finished()))
        .map(|(p, _)| *p)
        .collect();
    for p in finished {
        if let Some(Slot::Starting { lease, until, task }) = slots.remove(&p) {
            match task.await {
                Ok(Ok(owned)) => {
                    owned.partition.held_until(until);
                    slots.insert(
                        p,
                        Slot::Running {
                            lease,
                            until,
                            owned,
                        },
                    );
                }
                Ok(Err(e)) => {
                    tracing::warn!(partition = p, error = %e, "partition did not start; it will be tried again");
                    let _ = group.leases.release(p, lease).await;
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "partition start task failed");
                    let _ = group.leases.release(p, lease).await;
                }
            }
        }
    }
    // Failed partitions are dropped (and taken again below if still wanted).
    let failed: Vec<u32> = slots
        .iter_mut()
        .filter_map(|(p, s)| match s {
            Slot::Running { owned, .. } => owned.failed().then_some(*p),
            Slot::Starting { .. } => None,
        })
        .collect();
    for p in failed {
        if let Some(slot) = slots.remove(&p) {
            tracing::warn!(
                partition = p,
                "partition failed (its changelog writer gave up or a task ended); restarting it through catch-up"
            );
            let lease = slot.lease();
            slot.stop(shared).await;
            let _ = group.leases.release(p, lease).await;
        }
    }
    // Renew or hand over what we hold.
    let held: Vec<u32> = slots.keys().copied().collect();
    for p in held {
        let lease = slots.get(&p).map(Slot::lease).unwrap_or(0);
        if !wanted.contains(&p) {
            if let Some(slot) = slots.remove(&p) {
                tracing::info!(partition = p, "handing the partition over");
                slot.stop(shared).await;
                let _ = group.leases.release(p, lease).await;
            }
            continue;
        }
        let sent = Instant::now();
        match group.leases.renew(p, lease).await {
            Ok(seq) => {
                if let Some(slot) = slots.get_mut(&p) {
                    slot.renewed(seq, sent, group.config.lease_ttl);
                }
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "lease lost; stopping the partition");
                if let Some(slot) = slots.remove(&p) {
                    slot.stop(shared).await;
                }
            }
        }
    }
    // Take what we want and nobody holds.
    let missing: Vec<u32> = wanted
        .iter()
        .copied()
        .filter(|p| !slots.contains_key(p))
        .collect();
    for p in missing {
        let sent = Instant::now();
        let taken = match group.leases.read(p).await {
            Ok(LeaseState::Free { expect }) => group.leases.acquire(p, expect).await,
            // Ours from before a restart (same member name): take it back
            // at once; the fence keeps the old process out if it still runs.
            Ok(LeaseState::Held { owner, seq }) if owner == group.member => {
                group.leases.renew(p, seq).await
            }
            Ok(LeaseState::Held { .. }) => continue,
            Err(e) => {
                tracing::debug!(partition = p, error = %e, "lease not readable");
                continue;
            }
        };
        match taken {
            Ok(lease) => {
                let (s, g) = (shared.clone(), group.clone());
                let until = sent + group.config.lease_ttl;
                let task = tokio::spawn(async move { partition::start(&s, &g, p, until).await });
                slots.insert(p, Slot::Starting { lease, until, task });
            }
            Err(e) => tracing::debug!(partition = p, error = %e, "lease not taken"),
        }
    }
}
