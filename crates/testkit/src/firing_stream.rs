//! [`FiringStream`]: a JetStream stream that captures firing subjects, the
//! receiver of the exactly-once cases. It deduplicates by `Nats-Msg-Id` over
//! ten minutes, as a JetStream target of signalbox does, so a firing counted
//! twice here was published twice with different ids.

use std::time::Duration;

use anyhow::{Result, anyhow};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

/// A stream over firing subjects.
pub struct FiringStream {
    stream: stream::Stream,
}

impl FiringStream {
    /// Creates stream `name` over `subjects` (e.g. `runs.>`).
    pub async fn create(
        client: &async_nats::Client,
        name: &str,
        subjects: &[&str],
    ) -> Result<FiringStream> {
        let js = jetstream::new(client.clone());
        let stream = js
            .create_stream(stream::Config {
                name: name.into(),
                subjects: subjects.iter().map(|s| s.to_string()).collect(),
                duplicate_window: Duration::from_secs(600),
                ..Default::default()
            })
            .await?;
        Ok(FiringStream { stream })
    }

    /// How many messages it holds.
    pub async fn count(&self) -> Result<u64> {
        let mut s = self.stream.clone();
        Ok(s.info().await?.state.messages)
    }

    /// Polls until it holds at least `want` messages: `true`, or `false`
    /// after `within` (the caller says what it knows about why).
    pub async fn reaches(&self, want: u64, within: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.count().await? >= want {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads the messages from the start, at most `max`, stopping after two
    /// seconds without one (so one more than expected shows up as such).
    pub async fn read_all(&self, max: usize) -> Result<Vec<jetstream::Message>> {
        let reader = self
            .stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let mut messages = reader.messages().await?;
        let mut out = Vec::new();
        while out.len() < max {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await
            else {
                break;
            };
            out.push(msg.map_err(|e| anyhow!("reading the firing stream: {e}"))?);
        }
        Ok(out)
    }
}
