//! Log and trace setup for the binary: human-readable text by default, JSON
//! lines with `--log-format json`; the level comes from `RUST_LOG`, else `info`
//! for the router when serving, `warn` for one-shot commands (or `debug` with
//! `-v`). When the router config has a `[telemetry]` table (or
//! `--otlp-endpoint` is given), the router's spans are also exported over
//! OTLP/HTTP (protobuf) by a batch processor on its own thread; [`Tracing::shutdown`]
//! flushes what is left when the process ends. Without it no exporter is built.

use anyhow::{Context, Result};
use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use signalbox_router::TelemetryConfig;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The installed tracing pipeline; keep it until the end of `main` and call
/// [`Tracing::shutdown`] so that exported spans still buffered are sent.
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Flushes and stops the span exporter, if there is one (bounded by the
    /// exporter's timeout when the collector does not answer).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "could not flush the last spans to the OTLP collector");
        }
    }
}

/// Installs the global subscriber. A service (`serve`, `dev`) logs the router at
/// `info`; a one-shot command only warnings, so its stdout/stderr stay readable.
/// With `telemetry`, an OpenTelemetry layer exports the router's spans (its own
/// filter: the router's spans and events at `debug` and above, whatever
/// `RUST_LOG` says about the logs).
pub fn init(
    format: LogFormat,
    verbose: bool,
    service: bool,
    telemetry: Option<&TelemetryConfig>,
) -> Result<Tracing> {
    let default = if verbose {
        "debug"
    } else if service {
        "warn,signalbox_router=info,signalbox=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    }];
    let provider = match telemetry {
        Some(cfg) => {
            let provider = tracer_provider(cfg)?;
            let tracer = provider.tracer("signalbox");
            layers.push(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_threads(false)
                    .with_tracked_inactivity(false)
                    .with_filter(
                        Targets::new()
                            .with_target("signalbox_router", LevelFilter::DEBUG)
                            .with_target("signalbox_store", LevelFilter::DEBUG)
                            .with_default(LevelFilter::WARN),
                    )
                    .boxed(),
            );
            Some(provider)
        }
        None => None,
    };
    let _ = tracing_subscriber::registry().with(layers).try_init();
    if let Some(cfg) = telemetry {
        tracing::info!(
            endpoint = %cfg.traces_url(),
            service = %cfg.service_name,
            sample_ratio = cfg.sample_ratio,
            "exporting spans over OTLP/HTTP"
        );
    }
    Ok(Tracing { provider })
}

/// The OTLP/HTTP (protobuf) exporter behind a batch span processor, sampling
/// new traces at `sample_ratio` and following the parent's decision otherwise.
fn tracer_provider(cfg: &TelemetryConfig) -> Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(cfg.traces_url())
        .with_headers(cfg.headers.clone().into_iter().collect())
        .build()
        .with_context(|| format!("cannot set up the OTLP exporter to {}", cfg.traces_url()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            cfg.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}
