//! The end-to-end suite: one test binary, one module per file in `tests/`.
//!
//! Every module is a set of cases against real parts (nats-server, redb files,
//! Wasm components built from `plugins/`, tansu, Chromium) through the harness
//! in `crates/testkit`. They share one process, so the router binary and the
//! plugin components are built once per run. Run one file's cases with
//! `cargo test --test suite <module>::`, e.g. `cargo test --test suite kafka::`.
//! One binary instead of one per file: docs/DECISIONS.md, "Build footprint".

mod firing_message;
mod group_fencing;
mod http_admin;
mod http_tls;
mod jetstream_ingest;
mod joins;
mod kafka;
mod lineage;
mod lineage_page;
mod matching_cases;
mod matching_conformance;
mod plugin_deploy;
mod plugins;
mod plugins_by_language;
mod replay;
mod routing;
mod sns;
mod waits;
