//! The redb store of a signalbox node: signal instances with per-name sequence
//! numbers, dedup by `(name, id)` with a retention, subscriptions and their
//! versions, firings, the outbox and lineage — one file per node.
//!
//! The API is synchronous and [`Store`] is `Send + Sync`: the router shares it in
//! an `Arc` and calls it from `spawn_blocking`. The heart is [`Store::ingest`],
//! the transaction of docs/DESIGN.md section 4: a whole batch of signals is deduplicated,
//! stored, planned (the caller's matcher runs inside) and its firings written to
//! the outbox in one write transaction committed once; an `Err` means nothing of
//! the batch was written. Tables, key encodings and what each write transaction
//! touches are documented in `docs/STORAGE.md`.
//!
//! Group mode: with a [`ChangeSink`] set ([`Store::set_changelog`]), every
//! write transaction records its table writes as a [`ChangeSet`] and commits
//! it to the sink (a per-partition log) before redb; [`Store::apply`] replays
//! such sets into another store and [`Store::snapshot_to`] copies a store with
//! its log position (docs/STORAGE.md, "Changelog").

mod capture;
mod change_set;
mod changelog;
mod codec;
pub mod error;
mod firing_rows;
mod history;
mod ingest;
mod joins;
mod migrate;
mod outbox;
mod plugins;
mod replay;
mod signal_rows;
mod signals;
mod sink;
mod snapshot;
mod store;
mod subscriptions;
mod tables;
#[cfg(test)]
mod test_rng;
mod waits;
mod wire;

pub use change_set::{Change, ChangeOp, ChangeSet};
pub use error::{
    ApplyError, ChangelogDecodeError, ChangelogError, CompactError, Corrupt, IngestError,
    OpenError, OutboxError, PluginStoreError, ReadError, SnapshotError, SubscriptionError,
    WaitError,
};
pub use history::HistoryCompaction;
pub use ingest::{Incoming, IngestOutcome, NewFiring};
pub use joins::{DroppedOffer, JoinOffer, PendingOffer, PlanContext};
pub use outbox::{FiringRecord, FiringState};
pub use plugins::{DeployOutcome, PluginRecord, PluginVersion};
pub use sink::ChangeSink;
pub use store::{CommitDurability, Store, StoreOptions, StoreStats};
pub use subscriptions::PutOutcome;
pub use tables::SCHEMA_VERSION;
pub use waits::Registered;
