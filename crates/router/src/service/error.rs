//! Why the router could not start: each step of the start-up has its
//! variant, naming the file, subject or setting at fault.

use std::path::PathBuf;

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open store {path}: {source}")]
    Store {
        /// The redb file.
        path: PathBuf,
        /// The store's error.
        source: signalbox_store::OpenError,
    },
    /// A stored subscription could not be read.
    #[error("cannot read stored subscriptions: {0}")]
    Subscriptions(String),
    /// A subscription file is invalid.
    #[error("subscription file {path}: {message}")]
    SubscriptionFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginLoadError),
    /// The HTTP listener could not start.
    #[error(transparent)]
    Http(#[from] crate::api::http::HttpError),
    /// The NATS ingest (queue subscription, or JetStream stream and
    /// consumer) could not be set up.
    #[error(transparent)]
    Ingest(#[from] crate::sources::nats::IngestSetupError),
    /// NATS settings are unusable.
    #[error(transparent)]
    Connect(#[from] crate::nats::connect::ConnectError),
    /// A NATS subscription could not be made.
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's error.
        message: String,
    },
    /// The group could not be joined (server, record or streams).
    #[error(transparent)]
    Group(#[from] crate::group::setup::GroupSetupError),
    /// Another router serves the same subjects and would split the truth.
    #[error("cannot start: {0}")]
    Peers(String),
    /// The commit thread could not be started.
    #[error("cannot start the commit thread: {0}")]
    CommitThread(std::io::Error),
}
