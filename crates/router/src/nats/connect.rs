//! Building an async-nats connection from [`NatsConfig`]: URL list, user and
//! password, token, creds file, TLS, and logging of connection events.
//!
//! The router connects with `retry_on_initial_connect` and unlimited reconnects:
//! it starts even while NATS is down and keeps retrying, logging each state change.
//! The CLI connects with a short timeout and no retry, so a user learns at once
//! that the server is unreachable. The router also counts the events an
//! operator alerts on ([`NatsEvents`], in `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use futures::StreamExt;

use crate::config::NatsConfig;

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The creds file could not be read.
    #[error("cannot read NATS creds file {path}: {source}")]
    Creds {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A server URL does not parse.
    #[error("nats.urls: {url:?} is not a NATS URL ({reason})")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server could not be reached or refused us.
    #[error("cannot connect to NATS at {urls}: {source}")]
    Connect {
        /// The URLs tried.
        urls: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
}

/// Connection events counted for `/metrics`.
#[derive(Debug, Default)]
pub struct NatsEvents {
    /// Times NATS reported a slow consumer: messages for one of our
    /// subscriptions were dropped because we did not take them fast enough.
    pub slow_consumer: AtomicU64,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
    /// When a slow consumer was last logged (ms since the Unix epoch; 0:
    /// never). The client reports one event per dropped message, so the log
    /// line is written at most once per [`SLOW_CONSUMER_LOG_EVERY`].
    slow_consumer_logged_ms: AtomicI64,
}

impl prometheus_client::collector::Collector for NatsEvents {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::MetricType;
        for (name, help, value) in [
            (
                "signalbox_nats_slow_consumer_events",
                "Slow-consumer events from the NATS client: messages dropped for a subscription the router did not drain fast enough (at least one each, not a message count; core ingest loses those signals, JetStream ingest redelivers them).",
                &self.slow_consumer,
            ),
            (
                "signalbox_nats_disconnects",
                "Times the NATS connection was lost (the router reconnects).",
                &self.disconnects,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &value.load(Ordering::Relaxed),
                    None,
                )?;
        }
        Ok(())
    }
}

/// How often, at most, a slow consumer is logged while it lasts.
pub const SLOW_CONSUMER_LOG_EVERY: Duration = Duration::from_secs(10);

impl NatsEvents {
    /// Counts a slow-consumer event; true when it should be logged.
    fn slow_consumer_seen(&self, now_ms: i64) -> bool {
        self.slow_consumer.fetch_add(1, Ordering::Relaxed);
        let last = self.slow_consumer_logged_ms.load(Ordering::Relaxed);
        let every = SLOW_CONSUMER_LOG_EVERY.as_millis() as i64;
        (last == 0 || now_ms.saturating_sub(last) >= every)
            && self
                .slow_consumer_logged_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// A service: start even if the server is down, reconnect forever.
    Service,
    /// A one-shot command: fail fast.
    Command,
}

/// Connects to NATS with the configured authentication and TLS; connection
/// events are logged, and counted in `events` when given.
pub async fn connect(
    cfg: &NatsConfig,
    persistence: Persistence,
    events: Option<Arc<NatsEvents>>,
) -> Result<Client, ConnectError> {
    let mut opts = match &cfg.creds_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| ConnectError::Creds {
                path: path.display().to_string(),
                source,
            })?,
        None => ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        opts = opts.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &cfg.token {
        opts = opts.token(token.clone());
    }
    if cfg.tls_required {
        opts = opts.require_tls(true);
    }
    if let Some(ca) = &cfg.tls_ca_file {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_key_file) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    opts = opts
        .subscription_capacity(cfg.subscription_capacity)
        .name(&cfg.name)
        .event_callback(move |event| {
            let events = events.clone();
            async move { on_event(&event, events.as_deref()) }
        });
    opts = match persistence {
        Persistence::Service => opts
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5)),
        Persistence::Command => opts
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(Some(1)),
    };
    let urls = cfg.urls.join(",");
    let addrs = cfg
        .urls
        .iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| ConnectError::Url {
                    url: u.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    opts.connect(addrs)
        .await
        .map_err(|source| ConnectError::Connect { urls, source })
}

/// Logs a connection event and counts it in `events`.
fn on_event(event: &Event, events: Option<&NatsEvents>) {
    match event {
        Event::Connected => tracing::info!("connected to NATS"),
        Event::Disconnected => {
            if let Some(e) = events {
                e.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            tracing::warn!("disconnected from NATS; reconnecting")
        }
        Event::SlowConsumer(sid) => {
            let log = events.is_none_or(|e| e.slow_consumer_seen(crate::clock::now_ms()));
            if log {
                tracing::warn!(
                    sid,
                    events_so_far = events.map_or(1, |e| e.slow_consumer.load(Ordering::Relaxed)),
                    "slow consumer: messages dropped (with core ingest those signals are lost; JetStream ingest redelivers); logged at most every 10 s, counted in signalbox_nats_slow_consumer_events_total"
                )
            }
        }
        Event::ServerError(e) => tracing::error!(error = %e, "NATS server error"),
        Event::ClientError(e) => tracing::error!(error = %e, "NATS client error"),
        other => tracing::info!(event = %other, "NATS connection event"),
    }
}

/// Sends a message to ourselves and waits for it: when it arrives, the server has
/// processed everything this connection sent before it (subscriptions included).
pub(crate) async fn round_trip(
    client: &async_nats::Client,
    timeout: Duration,
) -> Result<(), String> {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, sub.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("subscription closed".into()),
        Err(_) => Err(format!("no echo within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_consumer_is_logged_at_most_every_ten_seconds() {
        let events = NatsEvents::default();
        assert!(events.slow_consumer_seen(1_000));
        assert!(!events.slow_consumer_seen(1_001));
        assert!(!events.slow_consumer_seen(10_999));
        assert!(events.slow_consumer_seen(11_000));
        assert_eq!(events.slow_consumer.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn slow_consumers_and_disconnects_are_counted() {
        let events = NatsEvents::default();
        on_event(&Event::SlowConsumer(3), Some(&events));
        on_event(&Event::SlowConsumer(3), Some(&events));
        on_event(&Event::Disconnected, Some(&events));
        on_event(&Event::Connected, Some(&events));
        // Without counters (the CLI) events are only logged.
        on_event(&Event::SlowConsumer(3), None);
        assert_eq!(events.slow_consumer.load(Ordering::Relaxed), 2);
        assert_eq!(events.disconnects.load(Ordering::Relaxed), 1);
    }
}
