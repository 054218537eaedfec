//! The plugin host's integration tests: one binary, one module per file
//! (each binary would link wasmtime again). Real components built from
//! `plugins/` by `support`; run one file's cases with
//! `cargo test -p signalbox-plugin --test plugin <module>::`.
mod support;

mod adapters;
mod cache;
mod defaults;
mod hostile;
mod javascript;
mod operators;
mod python;
