//! JetStream ingest: a durable pull consumer on a stream over `<prefix>.>`.
//!
//! At start the stream is created if missing (file storage, the configured
//! `Nats-Msg-Id` duplicate window) or verified to cover the signal subjects, and
//! the durable consumer is created or reused (explicit acks, deliver all). Messages
//! are taken in batches, decoded and queued on the commit thread in arrival order
//! ([`super::message::submit_batch`]); while the next batch is read, a task per
//! batch waits for its commit and acks each message only then. So:
//! - a crash before commit: nothing was acked, JetStream redelivers, and the
//!   transaction runs again from scratch;
//! - a crash after commit but before the ack: JetStream redelivers, and the
//!   `(name, id)` dedup turns the redelivery into an acknowledged duplicate (a
//!   signal without an id gets `jetstream/<stream>/<stream seq>`, which a
//!   redelivery keeps).

use std::sync::Arc;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tokio::sync::watch;

use super::message::{InFlight, Inbound, new_batch, submit_batch};
use crate::shared::Shared;

/// Why JetStream ingest could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamSetupError {
    /// The stream could not be created or read.
    #[error("JetStream stream {stream}: {message} (is JetStream enabled on the server?)")]
    Stream {
        /// Stream name.
        stream: String,
        /// The server's answer.
        message: String,
    },
    /// The stream exists but does not capture the signal subjects.
    #[error(
        "JetStream stream {stream} exists but does not capture {subject} (its subjects: {subjects:?})"
    )]
    Subjects {
        /// Stream name.
        stream: String,
        /// The subjects we need.
        subject: String,
        /// What it has.
        subjects: Vec<String>,
    },
    /// The consumer could not be created.
    #[error("JetStream consumer {consumer} on {stream}: {message}")]
    Consumer {
        /// Stream name.
        stream: String,
        /// Consumer name.
        consumer: String,
        /// The server's answer.
        message: String,
    },
}

/// The durable pull consumer of JetStream ingest.
pub(crate) type PullConsumer = consumer::Consumer<consumer::pull::Config>;

/// Sets up the stream and consumer within 5 s: `Ok(None)` when the server is
/// not ready yet (the task retries in the background), an error when the
/// stream exists with the wrong subjects (a configuration error).
pub(crate) async fn prepare(shared: &Shared) -> Result<Option<PullConsumer>, JetStreamSetupError> {
    match tokio::time::timeout(std::time::Duration::from_secs(5), setup(shared)).await {
        Ok(Ok(consumer)) => Ok(Some(consumer)),
        Ok(Err(e @ JetStreamSetupError::Subjects { .. })) => Err(e),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "JetStream ingest not ready; retrying in the background");
            Ok(None)
        }
        Err(_) => {
            tracing::warn!("JetStream ingest setup timed out; retrying in the background");
            Ok(None)
        }
    }
}

/// Creates or verifies the stream and the durable consumer.
async fn setup(shared: &Shared) -> Result<PullConsumer, JetStreamSetupError> {
    let cfg = &shared.config.jetstream;
    let js = jetstream::new(shared.client.clone());
    let subject = format!("{}.>", shared.config.subject_prefix);
    let stream_err = |e: &dyn std::fmt::Display| JetStreamSetupError::Stream {
        stream: cfg.stream.clone(),
        message: e.to_string(),
    };
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            duplicate_window: cfg.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| stream_err(&e))?;
    let info = stream.info().await.map_err(|e| stream_err(&e))?;
    if !info
        .config
        .subjects
        .iter()
        .any(|s| s == &subject || s == ">")
    {
        return Err(JetStreamSetupError::Subjects {
            stream: cfg.stream.clone(),
            subject,
            subjects: info.config.subjects.clone(),
        });
    }
    let batch = i64::try_from(shared.config.batch_size).unwrap_or(i64::MAX);
    stream
        .get_or_create_consumer(
            &cfg.consumer,
            consumer::pull::Config {
                durable_name: Some(cfg.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                deliver_policy: consumer::DeliverPolicy::All,
                ack_wait: cfg.ack_wait,
                max_ack_pending: batch.saturating_mul(8),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| JetStreamSetupError::Consumer {
            stream: cfg.stream.clone(),
            consumer: cfg.consumer.clone(),
            message: e.to_string(),
        })
}

/// Pulls batches until shutdown; the batch in hand is finished before returning.
pub(crate) async fn run(
    shared: Arc<Shared>,
    consumer: Option<PullConsumer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = std::time::Duration::from_millis(200);
    let consumer = match consumer {
        Some(c) => c,
        None => loop {
            match setup(&shared).await {
                Ok(c) => {
                    tracing::info!("JetStream ingest ready");
                    break c;
                }
                Err(e) => tracing::warn!(error = %e, "JetStream ingest setup failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        },
    };
    let batch_size = shared.config.batch_size;
    let max_wait = shared.config.jetstream.batch_max_wait;
    let mut in_flight = InFlight::new(shared.clone());
    'outer: loop {
        // Short pull expiry and heartbeat: after a NATS server restart the
        // server forgets pending pull requests; these bound how long it takes
        // the client to notice and pull again (seconds, not the 30 s default).
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(batch_size)
            .expires(std::time::Duration::from_secs(5))
            .heartbeat(std::time::Duration::from_secs(2))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull from JetStream; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => break 'outer,
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                continue;
            }
        };
        backoff = std::time::Duration::from_millis(100);
        loop {
            let first = tokio::select! {
                m = messages.next() => m,
                _ = shutdown.changed() => break 'outer,
            };
            let first = match first {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "JetStream pull interrupted; resuming");
                    continue;
                }
                None => continue 'outer,
            };
            let mut batch = new_batch(Inbound::JetStream(first), batch_size);
            // A timeout polls its future before looking at the clock, so with
            // the default zero wait this takes exactly what is buffered.
            let deadline = tokio::time::Instant::now() + max_wait;
            while batch.len() < batch_size {
                match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(Some(Ok(m))) => batch.push(Inbound::JetStream(m)),
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "JetStream pull interrupted mid-batch");
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if let Some(pending) = submit_batch(&shared, batch).await {
                in_flight.push(pending).await;
            }
        }
    }
    in_flight.finish().await;
    tracing::info!("JetStream ingest stopped");
}
