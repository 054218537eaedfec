//! The HTTP listener: health, metrics, the admin verbs and lineage as JSON,
//! and the routes the sources hand it.
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
//! - the sources' routes, mounted as given (`crate::sources::http_routes`):
//!   `POST /ingest/{adapter}` (webhooks, `sources/webhook.rs`) and
//!   `POST /sns/{source}` (`sources/sns/`); they take no admin token.
//!
//! Error replies map to status codes: `invalid` → 400, `not_found` → 404,
//! `unavailable` → 503. With a token configured every `/v1` request needs
//! `Authorization: Bearer <token>`; without it or with a wrong one the answer is
//! 401 and nothing about the token is logged.
//!
//! With `http.tls_cert_file` and `http.tls_key_file` the listener serves HTTPS
//! only (`tls.rs`); plain HTTP to it fails the handshake.

mod error;
mod tls;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use signalbox_model::ErrorReply;

use super::admin::dispatch;
use super::reply::AdminResult;

use crate::http_status::error_response;
use crate::shared::Shared;
pub use error::HttpError;

/// The bound listener: plain HTTP, or HTTPS when TLS is configured.
enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

/// A listener bound and its TLS loaded, not serving yet: binding is a step
/// of the start that can fail (a port taken, unusable TLS files), so it runs
/// before the router announces itself on NATS.
pub(crate) struct Listening {
    local: std::net::SocketAddr,
    https: bool,
    listener: Bound,
}

impl Listening {
    /// The address it is bound to.
    pub(crate) fn local(&self) -> std::net::SocketAddr {
        self.local
    }
}

/// Loads the TLS files (when configured) and binds `addr`.
pub(crate) async fn bind(
    http: &crate::config::HttpConfig,
    addr: &str,
) -> Result<Listening, HttpError> {
    let tls = match (&http.tls_cert_file, &http.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
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
        Some(config) => Bound::Tls(tls::TlsListener::new(listener, config).map_err(bind_error)?),
        None => Bound::Plain(listener),
    };
    Ok(Listening {
        local,
        https,
        listener,
    })
}

/// Serves `bound` until `shutdown` fires.
pub(crate) fn serve(
    shared: Arc<Shared>,
    bound: Listening,
    source_routes: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let Listening {
        local,
        https,
        listener,
    } = bound;
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
        .merge(crate::api::lineage_page::routes())
        .with_state(shared)
        .merge(source_routes);
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
    task
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    // Collectors read the store: off the async threads.
    match tokio::task::spawn_blocking(move || shared.metrics.render()).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
