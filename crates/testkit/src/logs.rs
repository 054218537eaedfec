//! The test log subscriber: router logs on the test writer (`RUST_LOG` to see
//! more than warnings), plus a capture of every warning and error that cases
//! read with [`logged`] to check that a failure was reported and why.
//!
//! A process has one global subscriber and the first one installed wins, so
//! there is exactly one, installed by [`init_logs`] (idempotent); the files of
//! `tests/` run as modules of one binary, and a case that reads the capture
//! must find it whichever module's case ran first.

use std::sync::Mutex;

/// Warnings and errors logged in this test process (newest last).
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Most lines [`LOGGED`] keeps (the oldest go first).
const LOGGED_MAX: usize = 20_000;

/// A `tracing` layer that keeps each event as `LEVEL target: message k=v …`.
struct Capture;

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        let mut line = Line(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut line);
        if let Ok(mut logged) = LOGGED.lock() {
            if logged.len() >= LOGGED_MAX {
                logged.drain(..LOGGED_MAX / 2);
            }
            logged.push(line.0);
        }
    }
}

/// Installs the test log subscriber once per process: the fmt layer
/// (`RUST_LOG`, default `warn`) and the capture of warnings and errors.
pub fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let shown = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(shown),
        )
        .with(Capture.with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .try_init();
}

/// The captured warnings and errors (see [`init_logs`]) that contain every
/// one of `needles`.
pub fn logged(needles: &[&str]) -> Vec<String> {
    LOGGED
        .lock()
        .map(|l| {
            l.iter()
                .filter(|line| needles.iter().all(|n| line.contains(n)))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until a captured warning or error contains every one of `needles`,
/// polling for up to `within`; returns the line.
pub async fn logged_within(
    needles: &[&str],
    within: std::time::Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(line) = logged(needles).into_iter().next() {
            return Ok(line);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no warning or error containing {needles:?} within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
