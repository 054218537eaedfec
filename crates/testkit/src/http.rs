//! HTTP for tests: one request to a listener on this machine, with a real
//! client (reqwest) over a real socket, the status and the body back.
//!
//! Each call builds its own client: a pooled connection belongs to the tokio
//! runtime that opened it, and every `#[tokio::test]` has its own runtime.
//! Proxies from the environment are ignored (the target is always local).

use std::net::SocketAddr;

use anyhow::{Context, Result};

use crate::WAIT;

/// Sends one HTTP/1.1 request to `addr` (`http://`) and returns the status
/// code and the body (bytes that are not UTF-8 replaced); fails after
/// [`WAIT`] without an answer, or when the connection fails.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String)> {
    http_request_within(addr, method, path, headers, body, WAIT).await
}

/// [`http_request`] that waits up to `within` for the answer (a request the
/// server holds, e.g. while NATS is away).
pub async fn http_request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    within: std::time::Duration,
) -> Result<(u16, String)> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("HTTP method {method:?}"))?;
    let client = reqwest::Client::builder()
        .timeout(within)
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let mut request = client
        .request(method.clone(), format!("http://{addr}{path}"))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} http://{addr}{path}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("{method} http://{addr}{path}: reading the body"))?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
