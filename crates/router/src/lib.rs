//! The signalbox service: takes signals from NATS and the other sources,
//! stores them in redb, matches them against subscriptions, and delivers
//! firings, exactly once per firing id.
//!
//! The rooms follow the signal's way, and each imports only the rooms below
//! it (docs/ARCHITECTURE.md draws the map; `layers` in the tests checks it):
//!
//! | room | holds |
//! |---|---|
//! | [`service`] | [`Router`]: start-up in steps, the tasks, shutdown |
//! | [`api`] | the admin verbs over NATS and HTTP, lineage, replay, waits, plugin deploys |
//! | [`sources`] | where signals come from: NATS core and JetStream, webhooks, SNS, Kafka, and the one step from adapter output to signals |
//! | [`ownership`] | group mode: which partitions this router works, and working them (catch-up, fence, input, snapshots) |
//! | [`delivery`] | the outbox: publishing committed firings exactly once per firing id |
//! | [`shared`] | the state every task holds (config, store, catalog, commit thread, NATS client, metrics, plugins) |
//! | [`pipeline`] | the transaction: ingest batching, the commit thread, the catalog and planning, the handoff to delivery, waits |
//! | [`plugins`] | the live WebAssembly plugins (operators, source adapters) and their loading |
//! | [`group`] | group mode's protocol with NATS: streams, leases, membership, the changelog, the front door, the group's subscriptions |
//! | [`metrics`], [`nats`], [`config`], [`telemetry`], [`clock`] | the base every room uses |
//!
//! All I/O of signalbox lives in this crate; the model and matcher crates stay pure.

pub mod api;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod group;
mod http_status;
#[cfg(test)]
mod layers;
pub mod metrics;
pub mod nats;
pub mod ownership;
pub mod pipeline;
pub mod plugins;
pub mod service;
mod shared;
pub mod sources;
pub mod telemetry;

pub use config::{
    ClusterConfig, ConfigError, HttpConfig, IngestMode, JetStreamIngest, KafkaSource, NatsConfig,
    PluginEntry, PluginsConfig, RouterConfig, SnsSource, SourcesConfig,
};
pub use nats::connect::{ConnectError, Persistence, connect};
pub use nats::embedded;
pub use service::{Router, StartError};
pub use sources::{kafka, sns};
pub use telemetry::TelemetryConfig;
