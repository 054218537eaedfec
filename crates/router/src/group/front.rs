//! The front door of a group: every router takes signals in (core NATS
//! requests, webhooks, SNS, Kafka) and puts each on its partition of the
//! group's input stream, where only the partition's owner processes it. This
//! is the one partitioned path for every source.
//!
//! A signal goes in as the JSON of its `Incoming` (validated by the router
//! that took it in, its id resolved) on `sbx.<group>.in.<p>._sig`, `p` being
//! its name's partition. The publish waits for the stream's ack, and is
//! retried with the same `Nats-Msg-Id` while the stream has no leader (a few
//! seconds after a node dies), so nothing is stored twice. Whoever needs the
//! signalbox acknowledgement (`seq`, `duplicate`, `matched`) names a reply
//! subject in `Signalbox-Reply`: the owner answers there after its commit. A
//! core NATS request passes the producer's own reply subject; a webhook waits
//! on an inbox of its own.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use futures::StreamExt;
use signalbox_model::{Ack, ErrorReply};
use signalbox_store::Incoming;

use super::hash::signal_partition;
use super::names::{GroupNames, KIND_SIGNAL};

/// Header of an input message naming where the owner sends the acknowledgement.
pub const REPLY_HEADER: &str = "Signalbox-Reply";

/// How long a front-door publish is retried (no stream leader meanwhile).
const PUBLISH_FOR: Duration = Duration::from_secs(15);

/// How long a webhook waits for the owners' acknowledgements.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Puts signals on their partitions.
#[derive(Clone)]
pub struct FrontDoor {
    client: async_nats::Client,
    js: jetstream::Context,
    names: GroupNames,
    prefix: String,
    partitions: u32,
    member: String,
}

impl FrontDoor {
    /// The front door of `names`' group with `partitions` partitions.
    pub fn new(
        client: async_nats::Client,
        names: GroupNames,
        prefix: &str,
        partitions: u32,
        member: &str,
    ) -> FrontDoor {
        FrontDoor {
            js: jetstream::new(client.clone()),
            client,
            names,
            prefix: prefix.to_string(),
            partitions,
            member: member.to_string(),
        }
    }

    /// The partition of a signal name.
    pub fn partition_of(&self, name: &str) -> u32 {
        signal_partition(&self.prefix, name, self.partitions)
    }

    /// Publishes one signal to its partition and waits for the stream's ack;
    /// `reply` is where the owner answers. The message id is the signal's
    /// `(name, id)` plus a token of this intake, so a retry is dropped by the
    /// stream and a second announcement of the same signal is not.
    pub async fn put(
        &self,
        incoming: &Incoming,
        reply: Option<&str>,
        intake: &str,
    ) -> Result<u32, String> {
        let p = self.partition_of(&incoming.signal.name);
        let body = serde_json::to_vec(incoming).map_err(|e| format!("cannot encode: {e}"))?;
        let mut headers = HeaderMap::new();
        let id = incoming.signal.id.as_deref().unwrap_or_default();
        headers.insert(
            crate::nats::MSG_ID_HEADER,
            format!("{}/{}/{}", intake, incoming.signal.name, id).as_str(),
        );
        if let Some(r) = reply {
            headers.insert(REPLY_HEADER, r);
        }
        self.publish(self.names.in_subject(p, KIND_SIGNAL), headers, body)
            .await
            .map(|()| p)
    }

    /// Puts a message of another kind (a wait registration …) on partition
    /// `p`, `id` naming it for the stream's duplicate window.
    pub async fn put_raw(
        &self,
        p: u32,
        kind: &str,
        body: Vec<u8>,
        reply: Option<&str>,
        id: &str,
    ) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            crate::nats::MSG_ID_HEADER,
            format!("{}/{}/{}", self.member, uuid::Uuid::now_v7(), id).as_str(),
        );
        if let Some(r) = reply {
            headers.insert(REPLY_HEADER, r);
        }
        self.publish(self.names.in_subject(p, kind), headers, body)
            .await
    }

    /// Publishes to the input stream, retrying while it has no leader.
    async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + PUBLISH_FOR;
        let mut pause = Duration::from_millis(50);
        loop {
            let sent = match self
                .js
                .publish_with_headers(subject.clone(), headers.clone(), body.clone().into())
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() + pause > deadline => {
                    return Err(format!("the group's input stream did not take it: {e}"));
                }
                Err(e) => {
                    tracing::debug!(error = %e, %subject, "input publish failed; retrying with the same message id");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Puts a batch of signals and waits for each owner's acknowledgement, in
    /// batch order (webhooks and SNS answer with them).
    pub async fn put_and_wait(&self, batch: &[Incoming]) -> Result<Vec<Ack>, ErrorReply> {
        let inbox = self.client.new_inbox();
        let mut answers = self
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| ErrorReply::unavailable(format!("cannot subscribe for acks: {e}")))?;
        let intake = format!("{}/{}", self.member, uuid::Uuid::now_v7());
        for (i, incoming) in batch.iter().enumerate() {
            self.put(incoming, Some(&format!("{inbox}.{i}")), &intake)
                .await
                .map_err(ErrorReply::unavailable)?;
        }
        let mut acks: Vec<Option<Ack>> = vec![None; batch.len()];
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        while acks.iter().any(Option::is_none) {
            let msg = match tokio::time::timeout_at(deadline, answers.next()).await {
                Ok(Some(m)) => m,
                _ => {
                    return Err(ErrorReply::unavailable(
                        "stored in the group's input, but no acknowledgement from the partition owners yet; it will be processed (retry to learn its seq)",
                    ));
                }
            };
            let Some(i) = msg
                .subject
                .rsplit('.')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                continue;
            };
            if let (Some(slot), Ok(ack)) =
                (acks.get_mut(i), serde_json::from_slice::<Ack>(&msg.payload))
            {
                *slot = Some(ack);
            } else if let Ok(e) = serde_json::from_slice::<ErrorReply>(&msg.payload) {
                return Err(e);
            }
        }
        Ok(acks.into_iter().flatten().collect())
    }
}
