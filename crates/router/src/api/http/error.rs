//! Why the HTTP listener could not start: the address, or the TLS files.
//! Below both the listener and its TLS set-up, which return it.

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
