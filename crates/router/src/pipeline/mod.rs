//! The transaction at the heart of signalbox, and what feeds it: a batch of
//! decoded signals is queued ([`ingest`]) on the one commit thread
//! ([`committer`]), which runs ONE store transaction for it (and for every
//! batch queued behind it): dedup, store, match and plan against the live
//! [`catalog`] (single signals, joins, waits), outbox. The committed firings
//! go to delivery in memory ([`handoff`]). [`waits`] registers waits, runs
//! their lookback and settles timeouts and cancels in transactions of their
//! own. A [`partition`] is one store with its commit thread and handoff: a
//! router alone has one, a router in a group one per partition it owns.
//!
//! Nothing in this room knows where a signal came from or how a firing is
//! published: sources sit above it, delivery reads its handoff.

pub mod catalog;
pub(crate) mod committer;
pub(crate) mod handoff;
pub(crate) mod ingest;
pub mod partition;
pub(crate) mod waits;
