//! The changelog of a store: how the [`ChangeSink`] a write transaction
//! commits through is set, and the two positions a store keeps in `meta`.
//!
//! In group mode each partition's store is owned by one router, which writes
//! every committed transaction's changes to a per-partition log (JetStream)
//! before committing locally; a new owner rebuilds the store from that log
//! (`replay`, `snapshot`). This crate has no NATS: the router hands it a sink.
//!
//! Invariants:
//! - the sink a transaction uses is the one set when it began; swapping it
//!   ([`Store::set_changelog`]) affects transactions begun afterwards only;
//! - with a sink set, every write transaction that wrote anything calls
//!   [`ChangeSink::commit`] exactly once, before the redb commit, and is
//!   committed locally only if the sink returned `Ok` (`capture` has the
//!   protocol); a transaction that wrote nothing calls no sink;
//! - `meta["changelog_seq"]` is the position the sink returned for the last
//!   transaction committed through it, or the position of the last entry
//!   applied by `Store::apply`; it is written in the transaction it describes
//!   and is never itself part of a change set;
//! - `meta["input_seq"]` is the input position given to the last
//!   `Store::ingest_at` that named one; it is an ordinary recorded write, so
//!   a replica learns where the owner's input stood with the state it produced.

use std::sync::Arc;

use crate::error::{AtTable, ReadError};
use crate::sink::ChangeSink;
use crate::store::Store;
use crate::tables::{self, names};

impl Store {
    /// Sets (or, with `None`, removes) the changelog sink. Transactions begun
    /// afterwards commit through it; one already running keeps the sink it
    /// began with.
    pub fn set_changelog(&self, sink: Option<Arc<dyn ChangeSink>>) {
        *self.changelog.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    /// The sink transactions begin with now.
    pub(crate) fn current_sink(&self) -> Option<Arc<dyn ChangeSink>> {
        self.changelog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The changelog position of the state this store holds: of the last
    /// transaction committed through a sink or applied by [`Store::apply`]
    /// (0 when there is none).
    pub fn changelog_seq(&self) -> Result<u64, ReadError> {
        Ok(self.meta(tables::META_CHANGELOG_SEQ)?.unwrap_or(0))
    }

    /// The input position of the last batch ingested with one
    /// ([`Store::ingest_at`]); `None` when no batch named one.
    pub fn input_seq(&self) -> Result<Option<u64>, ReadError> {
        self.meta(tables::META_INPUT_SEQ)
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, ReadError> {
        let txn = self.begin_read()?;
        let meta = tables::read(&txn, tables::META)?;
        Ok(meta
            .get(key)
            .at::<ReadError>(names::META)?
            .map(|g| g.value()))
    }

    /// Records that the log holds `position` and the store does not
    /// ([`Unapplied`](crate::sink::Unapplied)).
    #[cfg(test)]
    pub(crate) fn set_unapplied_position(&self, position: u64) {
        self.unapplied.set(position);
    }

    /// Forgets the unapplied position once the store holds `position` or later.
    pub(crate) fn applied_up_to(&self, position: u64) {
        self.unapplied.applied_up_to(position);
    }
}
