//! Tracing along a signal's path: the `[telemetry]` config table, the spans the
//! router opens, and W3C trace context in and out.
//!
//! The spans, by name: `ingest` (one per batch: `transport`, `count`) → `signal`
//! (one per signal: `signal.name`, `signal.id`, `signal.seq`; its parent is the
//! producer's `traceparent` kept in the signal's origin, when there is one) →
//! `match` (the matcher and join/wait planning for that signal, inside the store
//! transaction) and `commit` (the store transaction of the batch, linked to each
//! of its signals) → `publish` (one per firing: `firing.id`, `subject`; its parent
//! is the firing's stored `traceparent`, so it sits in its signal's trace).
//!
//! The router only makes `tracing` spans; whether they go anywhere is up to the
//! subscriber the binary installs (crates/cli, `logging.rs`): logs only, or also
//! OTLP export when the config has a `[telemetry]` table. The OpenTelemetry glue
//! here ([`traceparent_of`], setting remote parents) is a no-op when no
//! OpenTelemetry layer is installed, and nothing is computed for a disabled span.

use std::collections::BTreeMap;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use serde::{Deserialize, Serialize};
use signalbox_model::Firing;
use signalbox_store::Incoming;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `[telemetry]`: export spans over OTLP/HTTP (protobuf). Without the table
/// nothing is exported and no exporter is built.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318`;
    /// spans are POSTed to `<otlp_endpoint>/v1/traces` (a URL that already ends
    /// in `/v1/traces` is used as it is).
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Extra HTTP headers on every export request (e.g. an API key).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Share of new traces that are sampled, 0.0 to 1.0; a signal that comes with
    /// a `traceparent` follows its producer's sampling decision.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

fn default_service_name() -> String {
    "signalbox".into()
}

fn default_sample_ratio() -> f64 {
    1.0
}

impl TelemetryConfig {
    /// Export to `otlp_endpoint` with the defaults for everything else.
    pub fn new(otlp_endpoint: impl Into<String>) -> TelemetryConfig {
        TelemetryConfig {
            otlp_endpoint: otlp_endpoint.into(),
            service_name: default_service_name(),
            headers: BTreeMap::new(),
            sample_ratio: default_sample_ratio(),
        }
    }

    /// The URL spans are POSTed to.
    pub fn traces_url(&self) -> String {
        let base = self.otlp_endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        }
    }

    /// Checks the values; the error names the key and the rule.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let rest = self
            .otlp_endpoint
            .strip_prefix("http://")
            .or_else(|| self.otlp_endpoint.strip_prefix("https://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => {
                return Err((
                    "telemetry.otlp_endpoint",
                    "expected an http:// or https:// URL like http://127.0.0.1:4318".into(),
                ));
            }
        }
        if self.otlp_endpoint.chars().any(|c| c.is_whitespace()) {
            return Err((
                "telemetry.otlp_endpoint",
                "must not contain whitespace".into(),
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(("telemetry.service_name", "must not be empty".into()));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err((
                "telemetry.sample_ratio",
                "must be between 0.0 and 1.0".into(),
            ));
        }
        for (name, value) in &self.headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                return Err((
                    "telemetry.headers",
                    format!("{name:?} is not a valid HTTP header name"),
                ));
            }
            if value.chars().any(|c| c.is_control()) {
                return Err((
                    "telemetry.headers",
                    format!("the value of {name:?} has control characters"),
                ));
            }
        }
        Ok(())
    }
}

/// Header values are secrets as often as not: shown redacted.
impl std::fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("service_name", &self.service_name)
            .field(
                "headers",
                &self
                    .headers
                    .keys()
                    .map(|k| (k, "<redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("sample_ratio", &self.sample_ratio)
            .finish()
    }
}

/// The OpenTelemetry context of a W3C `traceparent` (`00-<trace id>-<parent
/// span id>-<flags>`), as a remote parent; `None` when it is malformed or names
/// the all-zero trace or span.
pub fn remote_context(traceparent: &str) -> Option<opentelemetry::Context> {
    let mut parts = traceparent.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version.eq_ignore_ascii_case("ff") || trace.len() != 32 {
        return None;
    }
    if parent.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(parent).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let cx = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    cx.is_valid()
        .then(|| opentelemetry::Context::new().with_remote_span_context(cx))
}

/// The W3C `traceparent` naming `span` as the parent, when spans are exported
/// (an OpenTelemetry layer is installed and the span is enabled); `None`
/// otherwise, and then the stored trace context is passed on as it came.
pub fn traceparent_of(span: &Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `traceparent` the (remote) parent of a span that was just created.
fn continue_trace(span: &Span, traceparent: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(cx) = traceparent.and_then(remote_context) {
        // Fails only when no OpenTelemetry layer is installed: nothing to parent then.
        let _ = span.set_parent(cx);
    }
}

/// A count as a span field: OpenTelemetry attributes are `i64` (an unsigned
/// field would be exported as a string).
pub(crate) fn int<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The `ingest` span of a batch.
pub(crate) fn ingest_span(transport: &str, count: usize) -> Span {
    tracing::info_span!("ingest", transport, count = int(count))
}

/// The `signal` span of one decoded signal, parented to its producer's trace.
/// `signal.seq`, `duplicate` and `matched` are recorded after the commit.
pub(crate) fn signal_span(incoming: &Incoming) -> Span {
    let span = tracing::info_span!(
        "signal",
        otel.kind = "consumer",
        signal.name = incoming.signal.name.as_str(),
        signal.id = incoming.signal.id.as_deref().unwrap_or_default(),
        signal.seq = Empty,
        transport = incoming.origin.transport.as_str(),
        duplicate = Empty,
        matched = Empty,
    );
    continue_trace(
        &span,
        incoming
            .origin
            .details
            .get(Firing::TRACEPARENT)
            .map(String::as_str),
    );
    span
}

/// The `publish` span of one firing, in its signal's trace.
pub(crate) fn publish_span(firing: &Firing) -> Span {
    let span = tracing::info_span!(
        "publish",
        otel.kind = "producer",
        otel.status_code = Empty,
        firing.id = firing.firing_id.as_str(),
        subscription = firing.subscription.as_str(),
        subject = firing.subject.as_str(),
        error = Empty,
    );
    continue_trace(&span, firing.traceparent.as_deref());
    span
}

/// Marks a span failed, with the reason.
pub(crate) fn record_error(span: &Span, error: &dyn std::fmt::Display) {
    if !span.is_disabled() {
        span.record("otel.status_code", "error");
        span.record("error", tracing::field::display(error));
    }
}

/// A W3C `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>` (other versions are
/// passed on as long as they have the same shape).
pub(crate) fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() >= 4
        && [2usize, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = remote_context(tp).expect("valid");
        let sc = cx.span().span_context().clone();
        assert_eq!(
            format!("{:032x}", sc.trace_id()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(format!("{:016x}", sc.span_id()), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "not-a-trace",
        ] {
            assert!(remote_context(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn no_traceparent_without_an_exporter() {
        // No subscriber at all: the span is disabled and nothing is computed.
        let span = tracing::info_span!("publish");
        assert_eq!(traceparent_of(&span), None);
    }

    #[test]
    fn config_checks() {
        let mut cfg = TelemetryConfig::new("http://127.0.0.1:4318/");
        assert_eq!(cfg.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert!(cfg.validate().is_ok());
        cfg.otlp_endpoint = "http://collector:4318/v1/traces".into();
        assert_eq!(cfg.traces_url(), "http://collector:4318/v1/traces");
        cfg.otlp_endpoint = "collector:4318".into();
        assert_eq!(
            cfg.validate().map_err(|e| e.0),
            Err("telemetry.otlp_endpoint")
        );
        cfg.otlp_endpoint = "https://collector".into();
        cfg.sample_ratio = 1.5;
        assert_eq!(
            cfg.validate().map_err(|e| e.0),
            Err("telemetry.sample_ratio")
        );
        cfg.sample_ratio = 0.5;
        cfg.headers.insert("bad header".into(), "x".into());
        assert_eq!(cfg.validate().map_err(|e| e.0), Err("telemetry.headers"));
        cfg.headers.clear();
        cfg.headers.insert("x-api-key".into(), "secret".into());
        assert!(cfg.validate().is_ok());
        assert!(!format!("{cfg:?}").contains("secret"));
    }

    #[test]
    fn the_config_table() {
        let cfg = crate::RouterConfig::from_toml("").expect("valid");
        assert_eq!(cfg.telemetry, None);
        let cfg = crate::RouterConfig::from_toml(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.25\n[telemetry.headers]\nx-api-key = \"k\"\n",
        )
        .expect("valid");
        let t = cfg.telemetry.expect("telemetry");
        assert_eq!(t.service_name, "signalbox");
        assert_eq!(t.sample_ratio, 0.25);
        assert_eq!(t.headers.get("x-api-key").map(String::as_str), Some("k"));
        let err = crate::RouterConfig::from_toml("[telemetry]\nservice_name = \"x\"\n")
            .expect_err("no endpoint");
        assert!(err.to_string().contains("otlp_endpoint"), "{err}");
        let err =
            crate::RouterConfig::from_toml("[telemetry]\notlp_endpoint = \"localhost:4318\"\n")
                .expect_err("no scheme");
        assert!(err.to_string().contains("telemetry.otlp_endpoint"), "{err}");
        let err = crate::RouterConfig::from_toml(
            "[telemetry]\notlp_endpoint = \"http://c:4318\"\nendpoint = \"x\"\n",
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("endpoint"), "{err}");
    }
}
