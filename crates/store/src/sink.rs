//! What a write transaction commits through besides redb: the
//! [`ChangeSink`] of group mode, and the [`Unapplied`] position that stops a
//! store from writing after the log took a transaction the store then failed
//! to commit. Below `capture` (which uses both) and `store` (which holds
//! them), so that neither has to name the other's module to reach them.
//!
//! Invariant: [`Unapplied`] holds a position only between a local commit
//! that failed after its sink accepted it and the replay that applies that
//! position (`Store::apply`).

use std::sync::Mutex;

use crate::change_set::ChangeSet;
use crate::error::ChangelogError;

/// Where a store writes the changes of each write transaction before it
/// commits them locally.
pub trait ChangeSink: Send + Sync {
    /// Makes `changes` durable in the log and returns their position there (for
    /// example the JetStream stream sequence of the published entry).
    /// Positions must grow from one call to the next and be at least 1.
    ///
    /// Called while the store's write transaction is open (redb's write lock is
    /// held), so it should not wait longer than the caller can afford to block
    /// every writer of this store. `Err` rolls the transaction back.
    fn commit(&self, changes: &ChangeSet) -> Result<u64, ChangelogError>;
}

/// The position the log holds and this store failed to commit, if any
/// (`capture`: such a store refuses to write until it has applied it).
#[derive(Debug, Default)]
pub(crate) struct Unapplied(Mutex<Option<u64>>);

impl Unapplied {
    /// The position, if one is held.
    pub(crate) fn position(&self) -> Option<u64> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the log holds `position` and the store does not.
    pub(crate) fn set(&self, position: u64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(position);
    }

    /// Forgets the position once the store holds `position` or later.
    pub(crate) fn applied_up_to(&self, position: u64) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some_and(|p| p <= position) {
            *held = None;
        }
    }
}
