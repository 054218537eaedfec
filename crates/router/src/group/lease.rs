//! Partition leases: who is working a partition now. A lease is the one
//! message on `sbx.<group>.lease.<p>`, published with a per-message TTL
//! (`Nats-TTL`) and a compare-and-set on the subject's last sequence
//! (`Nats-Expected-Last-Subject-Sequence`): taking a free lease expects the
//! sequence it saw (0 once an expired lease is gone), renewing expects the
//! holder's own last sequence. So two routers can never both take or renew
//! one lease, and a holder that stops renewing loses it when the server
//! removes the message, about one TTL later.
//!
//! A lease only says who should work a partition; it does not guard the
//! partition's state. A holder paused past its TTL still believes it holds
//! the lease until its next renewal fails, and during that time its writes
//! are refused by the changelog's own compare-and-set (`changelog.rs`), which
//! is what keeps one writer per partition.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, stream};
use serde::{Deserialize, Serialize};

use super::names::GroupNames;

/// The header of the compare-and-set on a subject's last sequence.
pub const EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";

/// What a lease message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// The member holding it.
    pub owner: String,
    /// False once released: free to take at once.
    pub held: bool,
    /// When it was written.
    pub at_ms: i64,
}

/// A partition's lease as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Nobody holds it: take it expecting this last sequence.
    Free {
        /// The subject's last sequence (0 when empty).
        expect: u64,
    },
    /// Held.
    Held {
        /// By whom.
        owner: String,
        /// The sequence of the holder's last renewal.
        seq: u64,
    },
}

/// Why a lease operation did not go through.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else moved the lease first (compare-and-set refused).
    #[error("lease of partition {partition} moved (someone else took or renewed it)")]
    Moved {
        /// The partition.
        partition: u32,
    },
    /// NATS could not be asked.
    #[error("lease of partition {partition}: {detail}")]
    Nats {
        /// The partition.
        partition: u32,
        /// What went wrong.
        detail: String,
    },
}

/// Reads and writes the leases of one group as one member.
#[derive(Clone)]
pub struct Leases {
    js: jetstream::Context,
    stream: stream::Stream,
    names: GroupNames,
    member: String,
    ttl: Duration,
}

impl Leases {
    /// Leases of `names`' group, written as `member`, lasting `ttl`.
    pub fn new(
        js: jetstream::Context,
        stream: stream::Stream,
        names: GroupNames,
        member: &str,
        ttl: Duration,
    ) -> Leases {
        Leases {
            js,
            stream,
            names,
            member: member.to_string(),
            ttl,
        }
    }

    /// The lease of `partition` as the stream leader has it now.
    pub async fn read(&self, partition: u32) -> Result<LeaseState, LeaseError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.names.lease_subject(partition))
            .await
        {
            Ok(m) => match serde_json::from_slice::<LeaseBody>(&m.payload) {
                Ok(b) if b.held => Ok(LeaseState::Held {
                    owner: b.owner,
                    seq: m.sequence,
                }),
                // Released, or not ours to read: free to take from this seq.
                _ => Ok(LeaseState::Free { expect: m.sequence }),
            },
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Ok(LeaseState::Free { expect: 0 })
            }
            Err(e) => Err(LeaseError::Nats {
                partition,
                detail: e.to_string(),
            }),
        }
    }

    /// Takes a free lease; the sequence of the new lease message.
    pub async fn acquire(&self, partition: u32, expect: u64) -> Result<u64, LeaseError> {
        self.write(partition, expect, true, self.ttl).await
    }

    /// Renews a held lease; the sequence of the renewal.
    pub async fn renew(&self, partition: u32, seq: u64) -> Result<u64, LeaseError> {
        self.write(partition, seq, true, self.ttl).await
    }

    /// Hands a held lease back, so that the next owner need not wait it out.
    pub async fn release(&self, partition: u32, seq: u64) -> Result<u64, LeaseError> {
        self.write(partition, seq, false, self.ttl).await
    }

    async fn write(
        &self,
        partition: u32,
        expect: u64,
        held: bool,
        ttl: Duration,
    ) -> Result<u64, LeaseError> {
        let body = LeaseBody {
            owner: self.member.clone(),
            held,
            at_ms: crate::clock::now_ms(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expect.to_string().as_str());
        headers.insert("Nats-TTL", format!("{}s", ttl.as_secs().max(1)).as_str());
        let nats = |e: &dyn std::fmt::Display| LeaseError::Nats {
            partition,
            detail: e.to_string(),
        };
        let ack = self
            .js
            .publish_with_headers(
                self.names.lease_subject(partition),
                headers,
                serde_json::to_vec(&body).unwrap_or_default().into(),
            )
            .await
            .map_err(|e| nats(&e))?
            .await;
        match ack {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(LeaseError::Moved { partition })
            }
            Err(e) => Err(nats(&e)),
        }
    }
}
