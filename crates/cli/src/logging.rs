//! Log setup for the binary: human-readable text by default, JSON lines with
//! `--log-format json`; the level comes from `RUST_LOG`, else `info` for the
//! router when serving, `warn` for one-shot commands (or `debug` with `-v`).

use clap::ValueEnum;

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. A service (`serve`, `dev`) logs the router at
/// `info`; a one-shot command only warnings, so its stdout/stderr stay readable.
pub fn init(format: LogFormat, verbose: bool, service: bool) {
    let default = if verbose {
        "debug"
    } else if service {
        "warn,signalbox_router=info,signalbox=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
