//! A partition's changelog on `sbx.<group>.log.<p>`: the store's sink
//! (`signalbox_store::ChangeSink`) that publishes each transaction's changes
//! before the store commits them, and the fence a new owner writes first.
//!
//! Every entry is published with `Nats-Expected-Last-Subject-Sequence` = the
//! last sequence this writer knows on the subject. The first write of a new
//! owner is a fence (an empty entry expecting the last sequence it caught up
//! to), so from then on a previous owner's entries are refused by the server
//! (error 10071, wrong last sequence): its transaction rolls back, nothing of
//! it is acknowledged, and it stops working the partition. That is the
//! fencing: by the server, not by time.
//!
//! An entry too large for one message goes out as an atomic batch (nats-server
//! 2.12+): its first chunk carries the compare-and-set (the server checks
//! each chunk against the batch staged so far), the last one commits, and
//! the server stores all or none. A publish whose answer is lost is sent again
//! with the same `Nats-Msg-Id`: the server answers `duplicate` with the first
//! one's sequence (a batch: error 10201, already committed), so a retry never
//! writes an entry twice. A writer that is refused, or that cannot learn the
//! outcome, stops for good: the owner drops the partition and takes it again
//! through catch-up, which reads what really is in the log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use signalbox_store::{ChangeSet, ChangeSink, ChangelogError};

use super::lease::EXPECTED_LAST_SUBJECT_SEQ;

/// How long a changelog publish is retried before the writer gives up (a
/// stream leader election took 4-7 s here).
const RETRY_FOR: Duration = Duration::from_secs(15);

/// Room left in a message for headers.
const HEADER_ROOM: usize = 4096;

/// Header naming the entry a message belongs to (the first `Nats-Msg-Id`).
pub const ENTRY_HEADER: &str = "Signalbox-Entry";

/// The error code of an atomic batch whose message ids were stored already.
const BATCH_DUPLICATE: u64 = 10201;

/// Writes one partition's changelog as its owner.
pub struct LogWriter {
    handle: tokio::runtime::Handle,
    js: jetstream::Context,
    client: async_nats::Client,
    subject: String,
    member: String,
    epoch: u64,
    state: Mutex<WriterState>,
    max_chunk: usize,
    stopped: AtomicBool,
}

struct WriterState {
    /// The subject's last sequence as this writer knows it.
    last: u64,
    /// Entries written in this epoch (for unique message ids).
    count: u64,
}

/// What a publish attempt learned.
enum Outcome {
    Stored(u64),
    Refused(String),
    Unknown(String),
}

impl LogWriter {
    /// A writer on `subject` after the fence at sequence `fence` (its epoch).
    pub fn new(
        js: jetstream::Context,
        client: async_nats::Client,
        subject: String,
        member: &str,
        fence: u64,
    ) -> LogWriter {
        let max_payload = client.server_info().max_payload;
        LogWriter {
            handle: tokio::runtime::Handle::current(),
            js,
            client,
            subject,
            member: member.to_string(),
            epoch: fence,
            state: Mutex::new(WriterState {
                last: fence,
                count: 0,
            }),
            max_chunk: max_payload.saturating_sub(HEADER_ROOM).max(1024),
            stopped: AtomicBool::new(false),
        }
    }

    /// The last sequence written (or fenced).
    pub fn last(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last
    }

    /// Whether the writer gave up (refused or unsure): the partition must be
    /// dropped and caught up again.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Runs `f` to completion from the commit thread or a blocking task.
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| self.handle.block_on(f)),
            Err(_) => self.handle.block_on(f),
        }
    }

    async fn publish(&self, bytes: &[u8], expect: u64, id: &str) -> Outcome {
        if bytes.len() <= self.max_chunk {
            let mut headers = HeaderMap::new();
            headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expect.to_string().as_str());
            headers.insert(crate::nats::MSG_ID_HEADER, id);
            headers.insert(ENTRY_HEADER, id);
            retrying(|| publish_cas(&self.js, &self.subject, headers.clone(), bytes.to_vec())).await
        } else {
            self.publish_batch(bytes, expect, id).await
        }
    }

    /// An entry in chunks, as one atomic batch; retried under a new batch id
    /// with the same message ids (10201 then means it was stored).
    async fn publish_batch(&self, bytes: &[u8], expect: u64, id: &str) -> Outcome {
        let chunks: Vec<&[u8]> = bytes.chunks(self.max_chunk).collect();
        let mut attempt = 0u32;
        let outcome = retrying(|| {
            attempt += 1;
            let batch = format!("{id}.{attempt}");
            let chunks = &chunks;
            async move {
                let n = chunks.len();
                for (i, chunk) in chunks.iter().enumerate() {
                    let mut h = HeaderMap::new();
                    h.insert("Nats-Batch-Id", batch.as_str());
                    h.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
                    // The check belongs to the first message: the server
                    // checks each one against the batch staged so far.
                    if i == 0 {
                        h.insert(EXPECTED_LAST_SUBJECT_SEQ, expect.to_string().as_str());
                    }
                    h.insert(crate::nats::MSG_ID_HEADER, format!("{id}/{i}").as_str());
                    h.insert(ENTRY_HEADER, id);
                    let body = bytes::Bytes::copy_from_slice(chunk);
                    if i + 1 < n {
                        let sent = if i == 0 {
                            self.client
                                .request_with_headers(self.subject.clone(), h, body)
                                .await
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        } else {
                            self.client
                                .publish_with_headers(self.subject.clone(), h, body)
                                .await
                                .map_err(|e| e.to_string())
                        };
                        sent.map_err(|e| (false, e))?;
                    } else {
                        h.insert("Nats-Batch-Commit", "1");
                        let ack = self
                            .js
                            .publish_with_headers(self.subject.clone(), h, body)
                            .await
                            .map_err(|e| (false, e.to_string()))?
                            .await;
                        return match ack {
                            Ok(a) => Ok(a.sequence),
                            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                                Err((true, e.to_string()))
                            }
                            Err(e) if e.to_string().contains(&BATCH_DUPLICATE.to_string()) => {
                                Err((false, format!("already stored: {e}")))
                            }
                            Err(e) => Err((false, e.to_string())),
                        };
                    }
                }
                Err((false, "empty batch".into()))
            }
        })
        .await;
        match outcome {
            // A retry found the batch stored: learn its sequence from the log.
            Outcome::Unknown(why) if why.contains("already stored") => {
                match self.last_entry_with(id).await {
                    Some(seq) => Outcome::Stored(seq),
                    None => Outcome::Unknown(why),
                }
            }
            other => other,
        }
    }

    /// The sequence of the last message on the subject when it belongs to `id`.
    async fn last_entry_with(&self, id: &str) -> Option<u64> {
        let stream = self.js.get_stream_no_info(self.log_stream()).await.ok()?;
        let m = stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
            .ok()?;
        let entry = m.headers.get(ENTRY_HEADER).map(|v| v.as_str().to_string());
        (entry.as_deref() == Some(id)).then_some(m.sequence)
    }

    fn log_stream(&self) -> String {
        // `sbx.<group>.log.<p>` lives in `SBX_<GROUP>_LOG`.
        let group = self
            .subject
            .strip_prefix("sbx.")
            .and_then(|r| r.split(".log.").next())
            .unwrap_or_default();
        super::names::GroupNames::new(group).log_stream()
    }
}

/// One publish with a compare-and-set, waiting for the stream's ack: the
/// sequence, or `(refused, why)` — refused when the compare-and-set failed.
async fn publish_cas(
    js: &jetstream::Context,
    subject: &str,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<u64, (bool, String)> {
    let ack = match js
        .publish_with_headers(subject.to_string(), headers, body.into())
        .await
    {
        Ok(f) => f.await,
        Err(e) => return Err((false, e.to_string())),
    };
    match ack {
        Ok(a) => Ok(a.sequence),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err((true, e.to_string())),
        Err(e) => Err((false, e.to_string())),
    }
}

/// Retries `attempt` for [`RETRY_FOR`] while it fails without a verdict;
/// `Err((true, why))` is a refusal (no retry).
async fn retrying<F, Fut>(mut attempt: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, (bool, String)>>,
{
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Ok(seq) => return Outcome::Stored(seq),
            Err((true, why)) => return Outcome::Refused(why),
            Err((false, why)) => {
                if tokio::time::Instant::now() + pause > deadline || why.contains("already stored")
                {
                    return Outcome::Unknown(why);
                }
                tracing::debug!(error = %why, "changelog publish failed; retrying with the same message id");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

impl ChangeSink for LogWriter {
    fn commit(&self, changes: &ChangeSet) -> Result<u64, ChangelogError> {
        if self.stopped() {
            return Err(ChangelogError::Fenced {
                detail: format!("the writer of {} stopped", self.subject),
            });
        }
        let (expect, id) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.count += 1;
            // Message ids are stream-wide: the subject makes them unique.
            (
                s.last,
                format!(
                    "{}/{}.{}.{}",
                    self.subject, self.member, self.epoch, s.count
                ),
            )
        };
        let outcome = self.block(self.publish(changes.encoded(), expect, &id));
        match outcome {
            Outcome::Stored(seq) => {
                self.state.lock().unwrap_or_else(|e| e.into_inner()).last = seq;
                Ok(seq)
            }
            Outcome::Refused(why) => {
                self.stopped.store(true, Ordering::Release);
                tracing::warn!(subject = %self.subject, error = %why, "changelog refused our entry: another router owns the partition now");
                Err(ChangelogError::Fenced { detail: why })
            }
            Outcome::Unknown(why) => {
                self.stopped.store(true, Ordering::Release);
                tracing::warn!(subject = %self.subject, error = %why, "changelog entry outcome unknown; the partition will catch up from the log");
                Err(ChangelogError::Unavailable { detail: why })
            }
        }
    }
}

/// Why a fence could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The log moved past what we caught up to: catch up again, then retry.
    #[error("the changelog moved on (another writer): catch up and fence again")]
    Moved,
    /// NATS could not be reached.
    #[error("changelog fence: {0}")]
    Nats(String),
}

/// Writes the fence of a new owner: an empty entry expecting `expect` (the
/// last sequence it caught up to). Returns the fence's sequence.
pub async fn fence(
    js: &jetstream::Context,
    subject: &str,
    member: &str,
    expect: u64,
) -> Result<u64, FenceError> {
    // Message ids are stream-wide: the subject makes them unique.
    let id = format!("{subject}/{member}.fence.{expect}");
    let mut headers = HeaderMap::new();
    headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expect.to_string().as_str());
    headers.insert(crate::nats::MSG_ID_HEADER, id.as_str());
    headers.insert(ENTRY_HEADER, id.as_str());
    headers.insert("Signalbox-Fence", member);
    let body = ChangeSet::new().encode();
    let outcome = retrying(|| publish_cas(js, subject, headers.clone(), body.clone())).await;
    match outcome {
        Outcome::Stored(seq) => Ok(seq),
        Outcome::Refused(_) => Err(FenceError::Moved),
        Outcome::Unknown(why) => Err(FenceError::Nats(why)),
    }
}
