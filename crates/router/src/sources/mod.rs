//! Where signals come from. Every source ends in the same step,
//! `crate::pipeline::ingest`: NATS core and JetStream ([`nats`]), webhooks
//! through a source-adapter plugin ([`webhook`]), AWS SNS ([`sns`]) and Kafka
//! ([`kafka`]). Adapter output becomes stored signals in one place,
//! [`adapter_output`]: default ids, origin, trace context.

pub(crate) mod adapter_output;
pub mod kafka;
pub(crate) mod nats;
pub mod sns;
pub(crate) mod webhook;

/// Every transport name a source gives its signals, for the metrics rows
/// that must exist from the start.
pub(crate) const TRANSPORTS: [&str; 5] = [
    nats::TRANSPORTS[0],
    nats::TRANSPORTS[1],
    webhook::TRANSPORT,
    sns::TRANSPORT,
    kafka::TRANSPORT,
];

/// The HTTP routes of the sources (webhooks and SNS endpoints), for the
/// router's listener. Fails when an SNS source's pinned certificate is unusable.
pub(crate) fn http_routes(
    shared: &std::sync::Arc<crate::shared::Shared>,
) -> Result<axum::Router, crate::config::ConfigError> {
    Ok(webhook::routes(shared.config.limits.max_message_bytes)
        .with_state(shared.clone())
        .merge(sns::routes(shared)?))
}
