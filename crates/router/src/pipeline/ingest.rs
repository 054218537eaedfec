//! The ingest step every source ends in: a batch of decoded signals is queued
//! on the commit thread, stored in ONE store transaction (dedup, store, match,
//! joins, waits, outbox; see [`crate::pipeline::committer`]) and answered with
//! one acknowledgement per signal.
//!
//! Invariants:
//! - an acknowledgement is made only after the transaction has committed; on
//!   error nothing of the batch was stored and the caller gets one error reply
//!   for the whole batch;
//! - each signal's `signal` span and the batch's `commit` span are opened
//!   here (or by the NATS source, which opens them before decoding), so the
//!   way of a signal reads the same in traces whatever its transport.

use signalbox_model::{Ack, ErrorReply};
use signalbox_store::{Incoming, IngestOutcome};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::pipeline::committer::Committer;
use crate::telemetry::int;

/// Stores a batch of decoded signals in ONE store transaction (dedup, store,
/// match, joins, waits, outbox; possibly shared with other batches queued at
/// the same time, see [`crate::pipeline::committer`]) and returns one ack per signal, in
/// order. On error nothing of the batch was stored. Every transport (core
/// NATS, JetStream, webhooks, Kafka) goes through the commit thread; this entry
/// opens the batch's `ingest` span and each signal's `signal` span (NATS ingest
/// opens them before decoding).
pub(crate) async fn commit(
    committer: &Committer,
    metrics: &Metrics,
    batch: Vec<Incoming>,
) -> Result<Vec<Ack>, ErrorReply> {
    commit_at(committer, metrics, batch, None).await
}

/// [`commit`], also bringing the partition's input position to `input_seq`
/// in the same transaction (group mode: a partition's owner).
pub(crate) async fn commit_at(
    committer: &Committer,
    metrics: &Metrics,
    batch: Vec<Incoming>,
    input_seq: Option<u64>,
) -> Result<Vec<Ack>, ErrorReply> {
    let transport = batch.first().map_or("", |i| i.origin.transport.as_str());
    let span = crate::telemetry::ingest_span(transport, batch.len());
    async move {
        let spans: Vec<tracing::Span> = batch.iter().map(crate::telemetry::signal_span).collect();
        enqueue_at(committer, batch, input_seq, &spans)
            .wait(metrics, &spans)
            .await
    }
    .instrument(span)
    .await
}

/// A batch queued on the commit thread, with its `commit` span.
pub(crate) struct PendingCommit {
    answer: tokio::sync::oneshot::Receiver<crate::pipeline::committer::CommitAnswer>,
    commit_span: tracing::Span,
    started: std::time::Instant,
}

/// Queues `batch` on the commit thread. `spans` holds the signals' spans (one
/// per signal, same order): each signal's matching runs in a `match` span under
/// its `signal` span, the store transaction in a `commit` span, and when spans
/// are exported each firing's `traceparent` names its signal's span, so that
/// its `publish` span joins it.
pub(crate) fn enqueue(
    committer: &Committer,
    batch: Vec<Incoming>,
    spans: &[tracing::Span],
) -> PendingCommit {
    enqueue_at(committer, batch, None, spans)
}

/// [`enqueue`] with an input position (see [`commit_at`]).
fn enqueue_at(
    committer: &Committer,
    batch: Vec<Incoming>,
    input_seq: Option<u64>,
    spans: &[tracing::Span],
) -> PendingCommit {
    let commit_span = tracing::debug_span!(
        "commit",
        count = int(batch.len()),
        stored = tracing::field::Empty,
        duplicates = tracing::field::Empty,
    );
    for span in spans {
        commit_span.follows_from(span);
    }
    let traced = spans.iter().any(|s| !s.is_disabled());
    let signal_spans = if traced { spans.to_vec() } else { Vec::new() };
    let answer = committer.submit_at(batch, input_seq, signal_spans, commit_span.clone());
    PendingCommit {
        answer,
        commit_span,
        started: std::time::Instant::now(),
    }
}

impl PendingCommit {
    /// Waits for the commit and turns its outcomes into acks (metrics, logs and
    /// span fields included), or into the error reply when nothing was stored.
    pub(crate) async fn wait(
        self,
        m: &Metrics,
        spans: &[tracing::Span],
    ) -> Result<Vec<Ack>, ErrorReply> {
        let PendingCommit {
            answer,
            commit_span,
            started,
        } = self;
        let (outcomes, mut matched, created) = match answer.await {
            Ok(Ok(answer)) => {
                m.observe_commit(started.elapsed().as_secs_f64());
                answer
            }
            Ok(Err(e)) => {
                m.add(&m.commit_failures, 1);
                tracing::error!(error = %e, "store transaction failed; batch not stored");
                return Err(ErrorReply::unavailable(format!("signal not stored: {e}")));
            }
            Err(_) => {
                m.add(&m.commit_failures, 1);
                tracing::error!("the commit thread is gone; batch not stored");
                return Err(ErrorReply::unavailable("signal not stored: internal error"));
            }
        };
        let mut acks = Vec::with_capacity(outcomes.len());
        let (mut stored, mut duplicates) = (0usize, 0usize);
        for (index, (outcome, created)) in outcomes.into_iter().zip(created).enumerate() {
            let span = spans
                .get(index)
                .cloned()
                .unwrap_or_else(tracing::Span::none);
            let _in_signal = span.enter();
            acks.push(match outcome {
                IngestOutcome::Stored { instance, .. } => {
                    stored += 1;
                    let matched = matched
                        .get_mut(index)
                        .map(std::mem::take)
                        .unwrap_or_default();
                    m.add(&m.stored, 1);
                    m.add(&m.matches, matched.len() as u64);
                    m.add(&m.firings_created, created as u64);
                    span.record("signal.seq", int(instance.seq));
                    span.record("duplicate", false);
                    span.record("matched", int(matched.len()));
                    // Per signal: debug (lineage and metrics keep the
                    // record; at info a loaded router would log thousands
                    // of lines a second).
                    tracing::debug!(
                        signal = %instance.signal.name,
                        id = %instance.id,
                        seq = instance.seq,
                        matched = matched.len(),
                        firings = created,
                        "signal stored"
                    );
                    Ack {
                        name: instance.signal.name,
                        seq: instance.seq,
                        id: instance.id,
                        duplicate: false,
                        matched,
                    }
                }
                IngestOutcome::Duplicate { name, id, seq } => {
                    m.add(&m.duplicates, 1);
                    duplicates += 1;
                    span.record("signal.seq", int(seq));
                    span.record("duplicate", true);
                    tracing::info!(signal = %name, %id, seq, "duplicate signal acknowledged");
                    Ack {
                        name,
                        seq,
                        id,
                        duplicate: true,
                        matched: Vec::new(),
                    }
                }
            });
        }
        commit_span.record("stored", int(stored));
        commit_span.record("duplicates", int(duplicates));
        // The commit thread already woke the outbox (`handoff`).
        Ok(acks)
    }
}
