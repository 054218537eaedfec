//! The store's integration tests: one binary, one module per file, each
//! case on real redb files in temp directories (`common` makes them). Run
//! one file's cases with `cargo test -p signalbox-store --test store <module>::`.
mod common;

mod history;
mod ingest;
mod migrate;
mod outbox;
mod retention;
mod subscriptions;
