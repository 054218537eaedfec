//! The live set of subscriptions and waits, compiled for matching, with one
//! matcher engine per signal name; and the planning of firings for one stored
//! signal instance. The parts: [`subscriptions`] (the catalog and its engines), [`compile`] (patterns and templates, and the
//! firing a compiled subscription builds), [`waits`] (the live wait
//! registry), [`operators`] (custom operators and re-preparing what uses
//! them), [`plan`] (matching one instance inside the store transaction).
//!
//! The catalog keeps one matcher [`signalbox_matcher::Engine`] per signal name. Each signal of a
//! subscription is an engine entry with id `<subscription>#<alias>`, so a
//! self-join (two aliases of one signal name) has two entries. Subscriptions are
//! compiled when they are added (patterns and templates); one that does not
//! compile is rejected then, with the error naming the field, and never reaches
//! an engine. [`Catalog::plan`] runs inside the store's ingest transaction: a
//! single-signal match fires at once; a join side records an offer through the
//! store's [`signalbox_store::PlanContext`] and fires when the join completes.
//!
//! Readers take a read lock on the name map only long enough to clone an `Arc`
//! to the engine; the engines themselves never block readers.
//!
//! Custom operators can change while the router runs (a plugin deploy or
//! rollback): [`Catalog::reprepare`] recompiles every subscription and wait that
//! uses the operator against the new registry and swaps each one in place. The
//! swap replaces engine entries with one engine write each (never a remove then
//! an add), so a signal matched meanwhile sees the old or the new pattern, never
//! neither. One that no longer compiles keeps running on the version it was
//! prepared with and is reported.

mod compile;
mod operators;
mod plan;
pub mod remote;
mod subscriptions;
mod waits;

pub use compile::{Compiled, CompiledWait, compile_patterns};
pub use operators::Reprepared;
pub use plan::Plan;
pub use subscriptions::Catalog;
