//! The signalbox service: takes signals from NATS, stores them in redb, matches
//! them against subscriptions, and delivers firings, exactly once per firing id.
//!
//! Follow one signal: [`ingest`] decodes and validates the message, the store
//! transaction (crate `signalbox-store`) dedups and stores it while [`catalog`]
//! plans the firings, the reply goes out after commit, and [`outbox`] publishes
//! the firings with `Nats-Msg-Id`. [`admin`] serves the management API over NATS
//! and [`service`] wires the tasks together. [`embedded`] runs a `nats-server`
//! child for `signalbox dev` and the test kit. [`telemetry`] names the spans
//! along that path and carries W3C trace context from signal to firing. All I/O
//! of signalbox lives here; the model and matcher crates stay pure.

pub mod admin;
pub mod catalog;
pub mod clock;
mod committer;
pub mod config;
pub mod connect;
pub mod embedded;
pub(crate) mod handoff;
pub mod http;
mod http_tls;
pub mod ingest;
pub mod jetstream_ingest;
pub mod kafka;
pub mod lineage;
mod lineage_page;
pub mod metrics;
pub mod outbox;
pub mod plugins;
pub mod replay;
pub mod service;
pub mod service_api;
mod shared;
pub mod sns;
pub mod telemetry;
mod waits;

pub use config::{
    ConfigError, HttpConfig, IngestMode, JetStreamIngest, NatsConfig, PluginEntry, PluginsConfig,
    RouterConfig, SourcesConfig,
};
pub use connect::{ConnectError, Persistence, connect};
pub use service::{Router, StartError};
pub use telemetry::TelemetryConfig;
