//! The admin API as a NATS micro service (the `$SRV` convention): service
//! `signalbox`, one endpoint per admin verb under `<admin_prefix>`, discoverable
//! with `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (`nats micro ls` lists it),
//! answered by one router of a group (queue group). Authorization is the NATS
//! server's: a user without permission to publish to `<admin_prefix>.sub.add`
//! cannot add subscriptions. Replies are the same JSON as the HTTP API.

use std::sync::Arc;

use async_nats::service::{Service, ServiceExt};
use futures::StreamExt;
use futures::stream::SelectAll;
use tokio::sync::watch;

use crate::shared::Shared;

type Requests = SelectAll<async_nats::service::endpoint::Endpoint>;

/// The service with its endpoints, registered and not yet answering.
pub(crate) struct Started {
    service: Service,
    requests: Requests,
}

/// Registers the service and its endpoints.
pub(crate) async fn start(shared: &Shared) -> Result<Started, String> {
    let service = shared
        .client
        .service_builder()
        .description("signalbox admin API: subscriptions, signals, waits, lineage, explain")
        .metadata(crate::nats::peers::metadata(
            shared.group.as_ref().map(|g| g.config.group.as_str()),
            &shared.config.subject_prefix,
            &shared.config.queue_group,
        ))
        .start("signalbox", env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| format!("cannot start the NATS service: {e}"))?;
    let group = service.group(&shared.config.admin_prefix);
    let mut endpoints = Vec::new();
    for verb in super::admin::verbs() {
        endpoints.push(
            group
                .endpoint(verb)
                .await
                .map_err(|e| format!("cannot add endpoint {verb}: {e}"))?,
        );
    }
    Ok(Started {
        service,
        requests: futures::stream::select_all(endpoints),
    })
}

/// Answers requests until shutdown, then stops the service.
pub(crate) async fn run(
    shared: Arc<Shared>,
    started: Started,
    mut shutdown: watch::Receiver<bool>,
) {
    let Started {
        service,
        mut requests,
    } = started;
    loop {
        let request = tokio::select! {
            r = requests.next() => r,
            _ = shutdown.changed() => None,
        };
        let Some(request) = request else {
            break;
        };
        let verb = request
            .message
            .subject
            .as_str()
            .strip_prefix(shared.config.admin_prefix.as_str())
            .and_then(|v| v.strip_prefix('.'))
            .unwrap_or_default()
            .to_string();
        let body = String::from_utf8_lossy(&request.message.payload)
            .trim()
            .to_string();
        let reply = match crate::api::admin::dispatch(&shared, &verb, body).await {
            Ok(v) => serde_json::to_vec(&v),
            Err(e) => serde_json::to_vec(&e),
        };
        match reply {
            Ok(bytes) => {
                if let Err(e) = request.respond(Ok(bytes.into())).await {
                    tracing::warn!(error = %e, "could not answer an admin request");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode an admin reply"),
        }
    }
    if let Err(e) = service.stop().await {
        tracing::debug!(error = %e, "stopping the NATS service");
    }
}
