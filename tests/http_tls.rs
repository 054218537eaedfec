//! HTTPS on the HTTP listener: a test CA and a server certificate for 127.0.0.1
//! are made with the `openssl` CLI at test time; a rustls client that trusts
//! only that CA gets `/healthz` and an admin route (with the bearer token, and
//! 401 without it); plain HTTP to the same port fails; a missing key file fails
//! the start with an error naming the config key.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use signalbox_testkit::{TestNats, TestPki, TestRouter, WAIT, http_request, init_logs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// One HTTPS request (`Connection: close`) with a client that trusts only `ca`.
async fn https_request(
    addr: std::net::SocketAddr,
    ca: &Path,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String)> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let server = ServerName::try_from("127.0.0.1")?;
    let mut tls = tokio::time::timeout(
        WAIT,
        TlsConnector::from(Arc::new(config)).connect(server, tcp),
    )
    .await
    .context("TLS handshake timed out")?
    .context("TLS handshake")?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // The server may close without a TLS close_notify; what was read counts.
    let read = tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .context("HTTPS response timed out")?;
    if let Err(e) = read
        && raw.is_empty()
    {
        bail!("reading the HTTPS response: {e}");
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("HTTPS response without a header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("HTTPS status line")?;
    Ok((status, body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_serves_health_and_the_admin_api() -> Result<()> {
    init_logs();
    let pki = TestPki::make()?;
    let nats = TestNats::start()?;
    let router = TestRouter::start_configured(&nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        config.http.token = Some("tls-token".into());
        config.http.tls_cert_file = Some(pki.cert.clone());
        config.http.tls_key_file = Some(pki.key.clone());
    })
    .await?;
    let addr = router.router().http_addr().context("HTTP is on")?;

    let (status, body) = https_request(addr, &pki.ca, "/healthz", &[]).await?;
    assert_eq!((status, body.as_str()), (200, "ok"));

    let (status, _) = https_request(addr, &pki.ca, "/v1/lineage/sub/none", &[]).await?;
    assert_eq!(status, 401, "the token is still required over HTTPS");
    let auth = [("Authorization", "Bearer tls-token")];
    let (status, body) = https_request(addr, &pki.ca, "/v1/lineage/sub/none", &auth).await?;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body)?;
    assert_eq!(v["firings"], serde_json::json!([]), "{v}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http_request(addr, "GET", "/healthz", &[], "").await;
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP must not be served on the TLS port: {plain:?}"
    );
    // And the listener keeps serving HTTPS after that.
    let (status, _) = https_request(addr, &pki.ca, "/healthz", &[]).await?;
    assert_eq!(status, 200);

    // A client that does not trust the test CA fails the handshake.
    let other = TestPki::make()?;
    let untrusted = https_request(addr, &other.ca, "/healthz", &[]).await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    Ok(())
}

#[tokio::test]
async fn unusable_tls_files_fail_the_start_naming_the_key() -> Result<()> {
    init_logs();
    let pki = TestPki::make()?;
    let nats = TestNats::start()?;
    let missing_key = TestRouter::start_configured(&nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        config.http.tls_cert_file = Some(pki.cert.clone());
        config.http.tls_key_file = Some(pki.key.with_file_name("nope.key"));
    })
    .await;
    let err = format!("{:#}", missing_key.err().context("must not start")?);
    assert!(err.contains("http.tls_key_file"), "{err}");

    let swapped = TestRouter::start_configured(&nats, |config| {
        config.http.listen = Some("127.0.0.1:0".into());
        config.http.tls_cert_file = Some(pki.key.clone());
        config.http.tls_key_file = Some(pki.key.clone());
    })
    .await;
    let err = format!("{:#}", swapped.err().context("must not start")?);
    assert!(err.contains("http.tls_cert_file"), "{err}");
    Ok(())
}
