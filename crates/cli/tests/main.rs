//! The CLI's integration tests: one binary, one module per file, each case
//! running the real `signalbox` binary (`CARGO_BIN_EXE_signalbox`) against
//! real nats-server processes, brokers and components through the test kit.
//! Run one file's cases with `cargo test -p signalbox-cli --test cli <module>::`,
//! e.g. `kill::`.
mod cli;
mod group;
mod group_plugins;
mod kafka_kill;
mod kill;
mod plugin_deploy;
mod plugin_local;
mod telemetry;
mod wait;
