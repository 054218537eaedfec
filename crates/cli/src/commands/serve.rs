//! `serve`: the router against a NATS server, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::{Context, Result};
use signalbox_router::{Router, RouterConfig, TelemetryConfig};

use crate::cli::ServeArgs;

/// Builds the configuration: defaults, then the file, then env/flags.
pub fn config(args: &ServeArgs) -> Result<RouterConfig> {
    let mut cfg = match &args.config {
        Some(path) => RouterConfig::from_file(path)?,
        None => RouterConfig::default(),
    };
    if let Some(urls) = &args.nats_urls {
        cfg.nats.urls = urls.clone();
    }
    args.login.apply(&mut cfg.nats);
    if args.tls {
        cfg.nats.tls_required = true;
    }
    if let Some(ca) = &args.tls_ca {
        cfg.nats.tls_ca_file = Some(ca.clone());
    }
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(p) = &args.subject_prefix {
        cfg.subject_prefix = p.clone();
    }
    if let Some(q) = &args.queue_group {
        cfg.queue_group = q.clone();
    }
    cfg.subscriptions.extend(args.subscriptions.iter().cloned());
    if let Some(l) = &args.http_listen {
        cfg.http.listen = Some(l.clone());
    }
    if let Some(t) = &args.http_token {
        cfg.http.token = Some(t.clone());
    }
    if let Some(endpoint) = &args.otlp_endpoint {
        match &mut cfg.telemetry {
            Some(t) => t.otlp_endpoint = endpoint.clone(),
            None => cfg.telemetry = Some(TelemetryConfig::new(endpoint.clone())),
        }
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Runs `serve`.
pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let stop = StopSignal::install()?;
    let cfg = config(&args)?;
    let router = Router::start(cfg)
        .await
        .context("cannot start the router")?;
    stop.wait().await;
    router.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from the moment this is created, so a
/// signal that arrives during start-up is not lost (nor kills the process).
pub struct StopSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Installs the handlers.
    pub fn install() -> Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Waits for either signal.
    pub async fn wait(mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
