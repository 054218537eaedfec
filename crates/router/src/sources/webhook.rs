//! Webhooks: `POST /ingest/<adapter>` on the router's HTTP listener hands the
//! request to that source-adapter plugin, and the signals it returns are
//! stored like any other (one store transaction, `crate::pipeline::ingest`).
//!
//! Answers: 200 with one acknowledgement per signal; 422 with the adapter's
//! reject reason; 503 when the adapter asks for a retry or the store fails;
//! 404 for an unknown adapter, and for an adapter that serves an SNS or Kafka
//! source (an SNS adapter trusts what it gets, which only the signature-checked
//! SNS route guarantees; a Kafka adapter maps records of a trusted topic);
//! 413 over the message size limit. These routes take no admin token: the
//! adapter does its own checks (GitHub signatures …). The plugin is looked up
//! per request, so a deploy takes effect at the next call.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use signalbox_model::{ErrorReply, FieldError};

use super::adapter_output::{DecodeFailure, DefaultId, MessageOrigin, decode, incoming};
use crate::http_status::error_response;
use crate::shared::Shared;

/// The transport name of webhook signals (origin, metrics).
pub(crate) const TRANSPORT: &str = "http";

/// The webhook route, with the body limit of a signal message.
pub(crate) fn routes(max_body_bytes: usize) -> axum::Router<Arc<Shared>> {
    axum::Router::new().route(
        "/ingest/{adapter}",
        post(ingest).layer(axum::extract::DefaultBodyLimit::max(max_body_bytes)),
    )
}

/// Why `adapter` is not a webhook route although it is loaded, if it is not.
fn reserved(shared: &Shared, adapter: &str) -> Option<String> {
    let sources = &shared.config.sources;
    if let Some(sns) = sources.sns.iter().find(|s| s.adapter == adapter) {
        return Some(format!(
            "adapter {adapter:?} serves SNS source {:?} (POST /sns/{}); it is not a webhook route",
            sns.name, sns.name
        ));
    }
    sources
        .kafka
        .iter()
        .find(|k| k.adapter == adapter)
        .map(|k| {
            format!(
                "adapter {adapter:?} serves Kafka source {:?}; it is not a webhook route",
                k.name
            )
        })
}

fn not_found(rule: String) -> Response {
    let e = ErrorReply::invalid(&FieldError::new("adapter", rule));
    (StatusCode::NOT_FOUND, axum::Json(e)).into_response()
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    Path(adapter): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(why) = reserved(&shared, &adapter) {
        return not_found(why);
    }
    let Some(plugin) = shared.plugins.adapter(&adapter) else {
        let known = shared.plugins.adapter_names();
        return not_found(format!(
            "no source adapter {adapter:?}; deployed: {known:?}"
        ));
    };
    let path = format!("/ingest/{adapter}");
    let mut envelope = signalbox_plugin::Envelope::new(
        signalbox_plugin::Transport::Http,
        path.clone(),
        body.to_vec(),
    );
    for (name, value) in &headers {
        if let Ok(v) = value.to_str() {
            envelope
                .headers
                .push((name.as_str().to_ascii_lowercase(), v.to_string()));
        }
    }
    envelope.metadata.push(("method".into(), "POST".into()));
    let received_at_ms = envelope.received_at_ms;
    let m = &shared.metrics;
    let signals = match decode(plugin, envelope).await {
        Ok(signals) => signals,
        Err(DecodeFailure::Retry(why)) => {
            tracing::warn!(%adapter, error = %why, retry = true, "webhook not taken");
            return error_response(ErrorReply::unavailable(why));
        }
        Err(DecodeFailure::Rejected(why)) => {
            tracing::warn!(%adapter, error = %why, retry = false, "webhook not taken");
            m.reject(TRANSPORT, "adapter");
            let reply = ErrorReply::invalid(&FieldError::new("body", why));
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(reply)).into_response();
        }
    };
    m.received(TRANSPORT, signals.len() as u64);
    let batch = incoming(
        signals,
        MessageOrigin {
            transport: TRANSPORT,
            address: path,
            adapter: &adapter,
            details: Default::default(),
            traceparent: headers.get("traceparent").and_then(|v| v.to_str().ok()),
            default_id: DefaultId::Fresh,
            received_at_ms,
        },
    );
    match shared.commit(batch).await {
        Ok(acks) => (StatusCode::OK, axum::Json(json!({ "signals": acks }))).into_response(),
        Err(e) => error_response(e),
    }
}
