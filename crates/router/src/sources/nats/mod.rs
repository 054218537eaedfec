//! NATS sources: signals published to `<subject_prefix>.<name>`, taken from a
//! core-NATS queue subscription ([`core`]) or a JetStream durable pull
//! consumer ([`jetstream`]); what both share (one message and how it is
//! settled, decoding, batches in flight) is in [`message`]. [`Ingest`] is the
//! one chosen by the configuration.

pub(crate) mod core;
pub(crate) mod jetstream;
pub(crate) mod message;

use std::sync::Arc;

use crate::shared::Shared;

/// Why the NATS ingest could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    /// The queue subscription could not be made.
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's error.
        message: String,
    },
    /// The JetStream stream exists with the wrong subjects.
    #[error(transparent)]
    JetStream(#[from] jetstream::JetStreamSetupError),
}

/// The NATS ingest chosen by the configuration, ready to run.
#[expect(
    clippy::large_enum_variant,
    reason = "built once at start-up and moved into its task"
)]
pub(crate) enum Ingest {
    /// The core-NATS queue subscription.
    Core(async_nats::Subscriber),
    /// The JetStream consumer, or `None` while the server is not ready (the
    /// task keeps setting it up in the background).
    JetStream(Option<jetstream::PullConsumer>),
    /// None here: in a group with JetStream ingest the group's input stream
    /// takes the producers' publishes itself.
    Nothing,
}

impl Ingest {
    /// Subscribes (core) or sets up the stream and consumer (JetStream). A
    /// stream with the wrong subjects is an error; a server not reachable yet
    /// is retried in the background by the task.
    pub(crate) async fn start(shared: &Shared) -> Result<Ingest, IngestSetupError> {
        if shared.group.is_some() && shared.config.ingest == crate::config::IngestMode::Jetstream {
            return Ok(Ingest::Nothing);
        }
        match shared.config.ingest {
            crate::config::IngestMode::Core => {
                let subject = format!("{}.>", shared.config.subject_prefix);
                let sub = shared
                    .client
                    .queue_subscribe(subject.clone(), shared.config.queue_group.clone())
                    .await
                    .map_err(|e| IngestSetupError::Subscribe {
                        subject,
                        message: e.to_string(),
                    })?;
                Ok(Ingest::Core(sub))
            }
            crate::config::IngestMode::Jetstream => {
                Ok(Ingest::JetStream(jetstream::prepare(shared).await?))
            }
        }
    }

    /// Runs the ingest until `shutdown`.
    pub(crate) async fn run(
        self,
        shared: Arc<Shared>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        match self {
            Ingest::Core(sub) => core::run(shared, sub, shutdown).await,
            Ingest::JetStream(consumer) => jetstream::run(shared, consumer, shutdown).await,
            Ingest::Nothing => {}
        }
    }
}

/// The transport names of NATS signals (origin, metrics): core and JetStream.
pub(crate) const TRANSPORTS: [&str; 2] = ["nats", "jetstream"];
