//! The test harness of signalbox: real parts, cleaned up on drop. Every wait
//! here is bounded; a test that waits for something that never comes fails
//! with a message saying what it waited for.
//!
//! - `nats`: [`TestNats`], a real `nats-server` with JetStream on a free
//!   loopback port (stop and restart on the same port and store), and
//!   [`NatsCluster`], three of them routed into one cluster.
//! - `router`: [`TestRouter`], an in-process router on a temp data directory
//!   (a real redb file), restartable on the same directory; `router_case`:
//!   [`RouterCase`], a server, a router with HTTP on and a client in one call.
//! - `requests`: admin requests, plugin deploys, signals published as
//!   requests, and bounded waits for firings or silence.
//! - `http`: [`http_request`] (and [`http_request_within`]), one request with a real HTTP client.
//! - `binary` and `process`: the `signalbox` binary of this build, `signalbox
//!   serve` as a child process, and signals sent to processes.
//! - `components`: the Wasm components of `plugins/` (Rust, Python,
//!   JavaScript), built once per test process.
//! - `kafka`: [`TestKafka`], a real Kafka-protocol broker (tansu) on a free
//!   port with an independent client (confluent-kafka); `kafka_case`: the
//!   set-up of a Kafka case ([`KafkaCase`]) and the order records it counts.
//! - `served` and `firing_stream`: [`ServedRouter`], `signalbox serve` as a
//!   process on a temp directory to SIGKILL and restart, and
//!   [`FiringStream`], the JetStream stream that receives firings in the
//!   exactly-once cases.
//! - `group`: [`GroupCase`], a 3-node cluster and a group of `signalbox
//!   serve` processes, with what the group cases do to them (kill, pause,
//!   add, stop).
//! - `pki`: [`TestPki`], a throwaway CA and certificates for TLS cases.
//! - `logs`: [`init_logs`] / [`logged`], the one log subscriber of a test
//!   process, with a capture of warnings and errors that cases assert on.

use std::time::Duration;

mod binary;
mod components;
mod firing_stream;
mod fresh;
mod group;
mod http;
mod kafka;
mod kafka_case;
mod logs;
mod nats;
mod pki;
mod process;
mod requests;
mod router;
mod router_case;
mod served;

pub use binary::signalbox_binary;
pub use components::{js_plugin_component, plugin_component, python_plugin_component};
pub use firing_stream::FiringStream;
pub use group::{GroupCase, GroupRouter};
pub use http::{http_request, http_request_within};
pub use kafka::{ConsumeTiming, KafkaRecord, TestKafka};
pub use kafka_case::{
    KafkaCase, KafkaWatch, firing_order, next_offsets, order, orders_fired, orders_fired_set,
};
pub use logs::{init_logs, logged, logged_within};
pub use nats::{NatsCluster, TestNats, free_port, nats_server_binary};
pub use pki::TestPki;
pub use process::{KillOnDrop, child_pids, router_log_tail, send_signal, start_serve};
pub use requests::{
    admin, admin_slow, deploy_plugin, deploy_requests, expect_silence, first_input_ids,
    next_message, publish_raw, publish_signal,
};
pub use router::TestRouter;
pub use router_case::RouterCase;
pub use served::ServedRouter;

/// How long a test waits for a reply or a firing before failing.
pub const WAIT: Duration = Duration::from_secs(10);
