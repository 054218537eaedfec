//! Building an async-nats connection from [`NatsConfig`]: URL list, user and
//! password, token, creds file, TLS, and logging of connection events.
//!
//! The router connects with `retry_on_initial_connect` and unlimited reconnects:
//! it starts even while NATS is down and keeps retrying, logging each state change.
//! The CLI connects with a short timeout and no retry, so a user learns at once
//! that the server is unreachable.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};

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

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// A service: start even if the server is down, reconnect forever.
    Service,
    /// A one-shot command: fail fast.
    Command,
}

/// Connects to NATS with the configured authentication and TLS.
pub async fn connect(cfg: &NatsConfig, persistence: Persistence) -> Result<Client, ConnectError> {
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
        .name(&cfg.name)
        .event_callback(|event| async move { log_event(&event) });
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

fn log_event(event: &Event) {
    match event {
        Event::Connected => tracing::info!("connected to NATS"),
        Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
        Event::SlowConsumer(sid) => tracing::warn!(sid, "slow consumer: messages dropped"),
        Event::ServerError(e) => tracing::error!(error = %e, "NATS server error"),
        Event::ClientError(e) => tracing::error!(error = %e, "NATS client error"),
        other => tracing::info!(event = %other, "NATS connection event"),
    }
}
