//! The HTTP admin API: health, the admin verbs and lineage as JSON.
//!
//! Routes (all answers JSON except DOT exports):
//! - `GET /metrics` — Prometheus text format (see `metrics.rs`); no token.
//! - `GET /healthz` — the process is alive; `GET /readyz` — NATS connected and
//!   the store readable (503 otherwise). Never need a token.
//! - `POST /v1/admin/{verb}` — any admin verb of the NATS API (`sub.add`,
//!   `lineage.export`, `replay` …) with the same request body and reply.
//! - `GET /v1/lineage/signal/{name}/{seq}`, `/v1/lineage/sub/{id}`,
//!   `/v1/lineage/firing/{id}`, `/v1/lineage/wait/{id}`,
//!   `/v1/lineage/export?format=json|dot&since=&until=&sub=&signal=&firing=&limit=`,
//!   `/v1/explain?sub=ID&signal=NAME:SEQ`,
//!   `/v1/signals/search?name=&where=PATTERN&limit=` (the `signals.search` verb).
//! - `GET /lineage` — the lineage page (static HTML, JS and CSS, no token; its
//!   data comes from the `/v1` routes above, with the token). See `lineage_page.rs`.
//!
//! - `POST /ingest/{adapter}` — webhook ingress: the request goes to that source
//!   adapter plugin; the signals it returns are stored and routed like any other
//!   (one store transaction); 200 with their acks, 422 with the adapter's reject
//!   reason, 503 when the adapter asks for a retry or the store fails, 404 for
//!   an unknown adapter, 413 over the message size limit. These routes do not
//!   take the admin token: the adapter does its own checks (GitHub signatures …).
//! - `POST /sns/{source}` — an SNS subscription endpoint (`[[sources.sns]]`, see
//!   `sns/`): no admin token; every message's signature, certificate URL,
//!   topic and timestamp are checked there. An adapter an SNS source uses is
//!   not served under `/ingest/` (404): it would take unsigned messages there;
//!   nor is an adapter a Kafka source uses (it maps records of a trusted topic).
//!
//! Error replies map to status codes: `invalid` → 400, `not_found` → 404,
//! `unavailable` → 503. With a token configured every `/v1` request needs
//! `Authorization: Bearer <token>`; without it or with a wrong one the answer is
//! 401 and nothing about the token is logged.
//!
//! With `http.tls_cert_file` and `http.tls_key_file` the listener serves HTTPS
//! only (`http_tls.rs`); plain HTTP to it fails the handshake.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use signalbox_model::ErrorReply;

use crate::admin::{AdminResult, dispatch};
use crate::shared::Shared;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} for the HTTP admin API: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("config {field}: {path}: {message}")]
    Tls {
        /// The config key (`http.tls_cert_file` or `http.tls_key_file`).
        field: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// The bound listener: plain HTTP, or HTTPS when TLS is configured.
enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(crate::http_tls::TlsListener),
}

/// Binds the listener; the server runs until `shutdown` fires.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    addr: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let tls = match (
        &shared.config.http.tls_cert_file,
        &shared.config.http.tls_key_file,
    ) {
        (Some(cert), Some(key)) => Some(crate::http_tls::server_config(cert, key)?),
        _ => None,
    };
    let bind_error = |source| HttpError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let https = tls.is_some();
    let listener = match tls {
        Some(config) => {
            Bound::Tls(crate::http_tls::TlsListener::new(listener, config).map_err(bind_error)?)
        }
        None => Bound::Plain(listener),
    };
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/admin/{verb}", post(admin_verb))
        .route("/v1/lineage/signal/{name}/{seq}", get(lineage_signal))
        .route("/v1/lineage/sub/{id}", get(lineage_sub))
        .route("/v1/lineage/firing/{id}", get(lineage_firing))
        .route("/v1/lineage/wait/{*id}", get(lineage_wait))
        .route("/v1/lineage/export", get(lineage_export))
        .route("/v1/explain", get(explain))
        .route("/v1/signals/search", get(signals_search))
        .merge(crate::lineage_page::routes())
        .route(
            "/ingest/{adapter}",
            post(ingest).layer(axum::extract::DefaultBodyLimit::max(
                shared.config.limits.max_message_bytes,
            )),
        )
        .route(
            "/sns/{source}",
            post(crate::sns::endpoint::handle).layer(axum::extract::DefaultBodyLimit::max(
                shared.config.limits.max_message_bytes,
            )),
        )
        .with_state(shared);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        let served = match listener {
            Bound::Tls(tls) => axum::serve(tls, app).with_graceful_shutdown(stop).await,
            Bound::Plain(tcp) => axum::serve(tcp, app).with_graceful_shutdown(stop).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP admin API stopped");
        }
    });
    tracing::info!(addr = %local, https, "HTTP admin API listening");
    Ok((local, task))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.clone();
    let gauges = tokio::task::spawn_blocking(move || s.store.stats().ok())
        .await
        .ok()
        .flatten()
        .map(|st| crate::metrics::StoreGauges {
            outbox_pending: st.pending,
            signals: st.signals,
            firings: st.firings,
            signal_ids: st.signal_ids,
            file_bytes: st.file_bytes,
            outbox_oldest_age_ms: st
                .oldest_pending_ms
                .map_or(0, |t| (crate::clock::now_ms() - t).max(0) as u64),
            join_offers: st.join_offers,
        });
    let mut text = shared.metrics.render(gauges, shared.catalog.len());
    text.push_str(&shared.kafka_lag.render());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let nats = shared.client.connection_state() == async_nats::connection::State::Connected;
    let store = shared.clone();
    let store_ok = tokio::task::spawn_blocking(move || store.store.stats().is_ok())
        .await
        .unwrap_or(false);
    let body = json!({"nats_connected": nats, "store_open": store_ok});
    let status = if nats && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Checks the bearer token; `Some(response)` when the request must stop.
fn unauthorized(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let want = shared.config.http.token.as_deref()?;
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if got.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
        return None;
    }
    shared.metrics.add(&shared.metrics.unauthorized, 1);
    tracing::warn!("HTTP admin request refused: missing or wrong bearer token");
    let body = json!({"error": {"code": "unauthorized", "rule": "a valid bearer token is required", "message": "unauthorized"}});
    Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn reply(result: AdminResult) -> Response {
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => error_response(e),
    }
}

fn error_response(e: ErrorReply) -> Response {
    let status = match e.error.code.as_str() {
        "invalid" => StatusCode::BAD_REQUEST,
        "not_found" => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(e)).into_response()
}

async fn run(shared: &Arc<Shared>, headers: &HeaderMap, verb: &str, body: String) -> Response {
    if let Some(r) = unauthorized(shared, headers) {
        return r;
    }
    reply(dispatch(shared, verb, body).await)
}

async fn admin_verb(
    State(shared): State<Arc<Shared>>,
    Path(verb): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    run(&shared, &headers, &verb, body.trim().to_string()).await
}

async fn lineage_signal(
    State(shared): State<Arc<Shared>>,
    Path((name, seq)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    run(&shared, &headers, "lineage.signal", format!("{name}:{seq}")).await
}

async fn lineage_sub(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    run(&shared, &headers, "lineage.sub", id).await
}

async fn lineage_firing(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    run(&shared, &headers, "lineage.firing", id).await
}

async fn lineage_wait(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    run(&shared, &headers, "lineage.wait", id).await
}

async fn lineage_export(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<serde_json::Map<String, Value>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&shared, &headers) {
        return r;
    }
    let mut q = q;
    if let Some(Value::String(limit)) = q.get("limit").cloned() {
        match limit.parse::<u64>() {
            Ok(n) => {
                q.insert("limit".into(), json!(n));
            }
            Err(_) => {
                return error_response(ErrorReply::invalid(&signalbox_model::FieldError::new(
                    "limit",
                    "expected a whole number",
                )));
            }
        }
    }
    let dot = q.get("format").and_then(Value::as_str) == Some("dot");
    match dispatch(&shared, "lineage.export", Value::Object(q).to_string()).await {
        Ok(v) if dot => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            v["dot"].as_str().unwrap_or_default().to_string(),
        )
            .into_response(),
        other => reply(other),
    }
}

async fn explain(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<serde_json::Map<String, Value>>,
    headers: HeaderMap,
) -> Response {
    run(&shared, &headers, "explain", Value::Object(q).to_string()).await
}

async fn signals_search(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<serde_json::Map<String, Value>>,
    headers: HeaderMap,
) -> Response {
    let mut q = q;
    if let Some(Value::String(limit)) = q.get("limit").cloned() {
        let Ok(n) = limit.parse::<u64>() else {
            return error_response(ErrorReply::invalid(&signalbox_model::FieldError::new(
                "limit",
                "expected a whole number",
            )));
        };
        q.insert("limit".into(), json!(n));
    }
    run(
        &shared,
        &headers,
        "signals.search",
        Value::Object(q).to_string(),
    )
    .await
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    Path(adapter): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(source) = shared.sns.source_of_adapter(&adapter) {
        // An SNS adapter trusts what it is given: reachable only through the
        // signature-checked SNS route.
        let e = ErrorReply::invalid(&signalbox_model::FieldError::new(
            "adapter",
            format!(
                "adapter {adapter:?} serves SNS source {source:?} (POST /sns/{source}); it is not a webhook route"
            ),
        ));
        return (StatusCode::NOT_FOUND, axum::Json(e)).into_response();
    }
    if let Some(source) = shared
        .config
        .sources
        .kafka
        .iter()
        .find(|k| k.adapter == adapter)
    {
        // A Kafka adapter maps records from a trusted topic; it is not a
        // public webhook.
        let e = ErrorReply::invalid(&signalbox_model::FieldError::new(
            "adapter",
            format!(
                "adapter {adapter:?} serves Kafka source {:?}; it is not a webhook route",
                source.name
            ),
        ));
        return (StatusCode::NOT_FOUND, axum::Json(e)).into_response();
    }
    let Some(plugin) = shared.plugins.adapter(&adapter) else {
        let known = shared.plugins.adapter_names();
        let e = ErrorReply::invalid(&signalbox_model::FieldError::new(
            "adapter",
            format!("no source adapter {adapter:?}; deployed: {known:?}"),
        ));
        return (StatusCode::NOT_FOUND, axum::Json(e)).into_response();
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
    let received = envelope.received_at_ms;
    let m = &shared.metrics;
    let decoded = tokio::task::spawn_blocking(move || plugin.decode(&envelope)).await;
    let signals = match decoded {
        Ok(Ok(signals)) => signals,
        Ok(Err(e)) => {
            let retry = e.is_retryable();
            tracing::warn!(%adapter, error = %e, retry, "webhook not taken");
            if !retry {
                m.reject("http", "adapter");
            }
            return if retry {
                error_response(ErrorReply::unavailable(e.to_string()))
            } else {
                let reply =
                    ErrorReply::invalid(&signalbox_model::FieldError::new("body", e.to_string()));
                (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(reply)).into_response()
            };
        }
        Err(e) => {
            return error_response(ErrorReply::unavailable(format!("adapter task failed: {e}")));
        }
    };
    m.add(&m.received_http, signals.len() as u64);
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|v| crate::ingest::valid_traceparent(v))
        .map(str::to_string);
    let batch: Vec<signalbox_store::Incoming> = signals
        .into_iter()
        .map(|mut signal| {
            if signal.id.is_none() {
                signal.id = Some(uuid::Uuid::now_v7().to_string());
            }
            signalbox_store::Incoming {
                signal,
                origin: signalbox_model::Origin {
                    transport: "http".into(),
                    address: Some(path.clone()),
                    adapter: Some(adapter.clone()),
                    details: traceparent
                        .iter()
                        .map(|tp| (signalbox_model::Firing::TRACEPARENT.to_string(), tp.clone()))
                        .collect(),
                },
                received_at_ms: received,
            }
        })
        .collect();
    match crate::ingest::commit(&shared, batch).await {
        Ok(acks) => (StatusCode::OK, axum::Json(json!({ "signals": acks }))).into_response(),
        Err(e) => error_response(e),
    }
}
