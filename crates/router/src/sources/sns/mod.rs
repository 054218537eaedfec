//! AWS SNS ingestion over HTTP: `POST /sns/<source>` on the router's listener.
//!
//! Each `[[sources.sns]]` entry is one endpoint an SNS topic subscribes to.
//! Every message is checked before anything is done with it: the JSON shape
//! ([`message`]), the `SigningCertURL` host and the signature ([`verify`]), the
//! topic allow-list and the timestamp's age. Then a `SubscriptionConfirmation`
//! is confirmed (when the source says so) or logged, an
//! `UnsubscribeConfirmation` is logged, and a `Notification` goes to the
//! source's adapter plugin and through the same store transaction as every
//! other signal ([`endpoint`]). A rejected message gets a 4xx JSON error
//! naming the rule and is counted in `/metrics` by that rule.

pub(crate) mod endpoint;
pub(crate) mod message;
mod rule;
mod state;
pub(crate) mod verify;

use std::sync::Arc;

pub use crate::config::SnsSource;

use axum::routing::post;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::ConfigError;
use crate::metrics::{Labels, Metrics};
use crate::shared::Shared;

pub(crate) use endpoint::TRANSPORT;
pub use rule::Rule;
use state::{Endpoints, SnsState};

/// Registers `signalbox_sns_rejected_total` (every rule at 0) and returns it.
fn register_rejections(metrics: &Metrics) -> Family<Labels, Counter> {
    let rejected = Family::<Labels, Counter>::default();
    for rule in Rule::ALL {
        let _ = rejected.get_or_create(&vec![("reason", rule.name().to_string())]);
    }
    metrics.register(
        "signalbox_sns_rejected",
        "SNS messages rejected, by the rule they broke (the field of the error reply).",
        rejected.clone(),
    );
    rejected
}

/// The `POST /sns/{source}` routes of every `[[sources.sns]]` entry, with the
/// body limit of a signal message. Reads the pinned certificates now: a bad
/// one is a configuration error at start.
pub(crate) fn routes(shared: &Arc<Shared>) -> Result<axum::Router, ConfigError> {
    let endpoints = Endpoints {
        sns: SnsState::new(&shared.config)?,
        rejected: register_rejections(&shared.metrics),
        shared: shared.clone(),
    };
    Ok(axum::Router::new()
        .route(
            "/sns/{source}",
            post(endpoint::handle).layer(axum::extract::DefaultBodyLimit::max(
                shared.config.limits.max_message_bytes,
            )),
        )
        .with_state(Arc::new(endpoints)))
}
