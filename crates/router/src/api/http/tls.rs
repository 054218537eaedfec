//! HTTPS for the HTTP listener (`http.tls_cert_file`, `http.tls_key_file`).
//!
//! The certificate chain and key are read once at start (PEM; a file that cannot
//! be read or holds no usable certificate or key fails the start with an error
//! naming the config key). [`TlsListener`] wraps the TCP listener for
//! `axum::serve`: a background task accepts TCP connections and runs each TLS
//! handshake in its own task (bounded in time and in number), so one slow or
//! hostile client cannot hold up the others; finished handshakes are handed to
//! the server through a channel. A failed handshake (plain HTTP sent to the TLS
//! port, an untrusted client) only closes that connection. rustls with the
//! `ring` provider, the same stack async-nats uses; HTTP/1.1 only (ALPN).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use super::error::HttpError;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in flight at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// Reads the certificate chain and key and builds the server configuration.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, HttpError> {
    let tls_error = |field: &'static str, path: &Path, message: String| HttpError::Tls {
        field,
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| tls_error("http.tls_cert_file", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(tls_error(
            "http.tls_cert_file",
            cert,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        tls_error(
            "http.tls_key_file",
            key,
            format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("http.tls_cert_file", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            tls_error(
                "http.tls_key_file",
                key,
                format!("the key does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that yields connections whose TLS handshake has completed.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; the accept task ends when this is dropped.
    pub(crate) fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            () = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum does.
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => {
                // Only if the accept task died: nothing more will come.
                tracing::error!("the HTTPS accept task stopped");
                std::future::pending().await
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
