//! Group commit: one thread runs every ingest write transaction, and folds the
//! batches that queued up while the previous transaction committed into one.
//!
//! Each transport hands a decoded batch to [`Committer::submit`] and awaits the
//! answer; the thread takes the oldest batch and, without waiting for more,
//! every other batch already queued (up to [`Committer`]'s signal limit), runs
//! docs/DESIGN.md section 4 steps 1–5 for all of them in one store transaction, commits
//! once, and answers each batch with its own outcomes. Under load the fsync of
//! one commit is thus shared by several batches, while a lone batch at light
//! load is committed at once (no timer). Invariants:
//! - batches are stored in the order they were submitted, so a transport that
//!   submits in arrival order gets seqs in arrival order;
//! - a batch's answer is sent only after the transaction holding it committed,
//!   or failed (then nothing of it was stored);
//! - a batch that breaks the store's input rules (a signal without an id) is
//!   answered with that error alone and never fails the batches merged with it;
//! - the firings a transaction wrote are pushed to the [`Handoff`] after it
//!   committed and before any batch is answered, in `firing_seq` order;
//! - a panic while planning is caught and fails the transaction's batches; the
//!   thread lives on. Dropping the [`Committer`] ends the thread after the work
//!   already queued, and waits for it, so the store is closed when it returns.

use std::sync::Arc;
use std::sync::mpsc;

use signalbox_store::{Incoming, IngestOutcome, Store};

use crate::pipeline::catalog::Catalog;
use crate::pipeline::handoff::Handoff;

/// The answer for one submitted batch: its outcomes (one per signal, in
/// order), per outcome the subscriptions it matched, and per outcome how
/// many firings it created. The firings themselves were moved to
/// the [`Handoff`]: each `Stored` outcome's `firings` is empty.
pub(crate) type CommitAnswer = Result<(Vec<IngestOutcome>, Matched, Vec<usize>), String>;

/// Subscriptions matched, per outcome of a batch in the same order (none for
/// a duplicate).
pub(crate) type Matched = Vec<Vec<String>>;

/// One submitted batch.
struct Job {
    batch: Vec<Incoming>,
    /// The input position this batch brings the partition to (group mode).
    input_seq: Option<u64>,
    /// One `signal` span per signal (same order), or none when tracing is off.
    spans: Vec<tracing::Span>,
    /// The batch's `commit` span, entered while its transaction runs.
    commit_span: tracing::Span,
    reply: tokio::sync::oneshot::Sender<CommitAnswer>,
}

/// Handle to the commit thread. See the module docs.
pub(crate) struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread. One transaction holds at most `max_signals` signals
    /// unless a single batch is larger (it is never split).
    pub(crate) fn start(
        store: Arc<Store>,
        catalog: Arc<Catalog>,
        handoff: Arc<Handoff>,
        max_signals: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("signalbox-commit".into())
            .spawn(move || run(&store, &catalog, &handoff, &rx, max_signals))?;
        Ok(Committer {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a batch; the receiver gets its answer after the commit. If the
    /// thread is gone the receiver reports a closed channel.
    #[cfg(test)]
    pub(crate) fn submit(
        &self,
        batch: Vec<Incoming>,
        spans: Vec<tracing::Span>,
        commit_span: tracing::Span,
    ) -> tokio::sync::oneshot::Receiver<CommitAnswer> {
        self.submit_at(batch, None, spans, commit_span)
    }

    /// Queues a batch that brings the partition's input to `input_seq`
    /// (stored in the same transaction; merged batches keep the largest).
    pub(crate) fn submit_at(
        &self,
        batch: Vec<Incoming>,
        input_seq: Option<u64>,
        spans: Vec<tracing::Span>,
        commit_span: tracing::Span,
    ) -> tokio::sync::oneshot::Receiver<CommitAnswer> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Some(jobs) = &self.jobs {
            // A send error drops the job and with it `reply`: the receiver sees
            // the channel closed, which the caller reports as not stored.
            let _ = jobs.send(Job {
                batch,
                input_seq,
                spans,
                commit_span,
                reply,
            });
        }
        answer
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the commit thread ended with a panic");
        }
    }
}

/// The thread: takes the oldest job and everything queued behind it.
fn run(
    store: &Store,
    catalog: &Catalog,
    handoff: &Handoff,
    jobs: &mpsc::Receiver<Job>,
    max_signals: usize,
) {
    while let Ok(first) = jobs.recv() {
        let mut taken = vec![first];
        let mut count = taken[0].batch.len();
        while count < max_signals {
            match jobs.try_recv() {
                Ok(job) => {
                    count += job.batch.len();
                    taken.push(job);
                }
                Err(_) => break,
            }
        }
        // A batch the store would refuse as a whole is answered on its own.
        let mut merged = Vec::with_capacity(taken.len());
        for job in taken {
            match missing_id(&job.batch) {
                Some(message) => {
                    let _ = job.reply.send(Err(message));
                }
                None => merged.push(job),
            }
        }
        if !merged.is_empty() {
            commit_jobs(store, catalog, handoff, merged);
        }
    }
}

/// The store's rule that every signal carries an id, checked per batch.
fn missing_id(batch: &[Incoming]) -> Option<String> {
    batch.iter().enumerate().find_map(|(index, i)| {
        i.signal.id.as_deref().is_none_or(str::is_empty).then(|| {
            format!(
                "signal {index} ({}) has no id; every stored signal needs one",
                i.signal.name
            )
        })
    })
}

/// Runs one transaction for `jobs`, hands its firings to the drainer and
/// answers each job.
fn commit_jobs(store: &Store, catalog: &Catalog, handoff: &Handoff, jobs: Vec<Job>) {
    let mut batch = Vec::new();
    let mut spans = Vec::new();
    let mut lens = Vec::with_capacity(jobs.len());
    let mut replies = Vec::with_capacity(jobs.len());
    let commit_span = jobs[0].commit_span.clone();
    let input_seq = jobs.iter().filter_map(|j| j.input_seq).max();
    for job in jobs {
        lens.push(job.batch.len());
        if job.spans.len() == job.batch.len() {
            spans.extend(job.spans);
        } else {
            spans.extend(std::iter::repeat_n(tracing::Span::none(), job.batch.len()));
        }
        if job.commit_span.id() != commit_span.id() {
            commit_span.follows_from(&job.commit_span);
        }
        batch.extend(job.batch);
        replies.push(job.reply);
    }
    let outcome = {
        let _entered = commit_span.enter();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            transaction(store, catalog, batch, input_seq, &spans)
        }))
    };
    match outcome {
        Ok(Ok((mut outcomes, matched))) => {
            // The firings move to the drainer (no copy on this thread, which
            // bounds the router's rate); the batches get their counts.
            let mut created = Vec::with_capacity(outcomes.len());
            let mut firings = Vec::new();
            for o in &mut outcomes {
                match o {
                    IngestOutcome::Stored { firings: f, .. } => {
                        created.push(f.len());
                        firings.append(f);
                    }
                    IngestOutcome::Duplicate { .. } => created.push(0),
                }
            }
            handoff.push(firings);
            let mut outcomes = outcomes.into_iter();
            let mut created = created.into_iter();
            let mut matched = matched.into_iter();
            for (len, reply) in lens.into_iter().zip(replies) {
                let mine: Vec<IngestOutcome> = outcomes.by_ref().take(len).collect();
                let my_created: Vec<usize> = created.by_ref().take(len).collect();
                let my_matched: Matched = matched.by_ref().take(len).collect();
                let _ = reply.send(Ok((mine, my_matched, my_created)));
            }
        }
        Ok(Err(e)) => {
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(message.clone()));
            }
        }
        Err(_) => {
            tracing::error!("planning panicked; the transaction was not committed");
            for reply in replies {
                let _ = reply.send(Err("internal error while planning".into()));
            }
        }
    }
}

/// One store transaction over `batch`, with `catalog` planning each stored
/// instance; `spans` holds one `signal` span per signal.
fn transaction(
    store: &Store,
    catalog: &Catalog,
    batch: Vec<Incoming>,
    input_seq: Option<u64>,
    spans: &[tracing::Span],
) -> Result<(Vec<IngestOutcome>, Matched), signalbox_store::IngestError> {
    // Which span belongs to which instance: worked out only when spans are on
    // and the batch has more than one signal.
    let traced = spans.iter().any(|s| !s.is_disabled());
    let keys: Vec<(String, String)> = if traced && spans.len() > 1 {
        batch
            .iter()
            .map(|i| {
                let id = i.signal.id.clone().unwrap_or_default();
                (i.signal.name.clone(), id)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Each stored instance's matches, in the order `plan` was called: batch
    // order, duplicates skipped (`Store::ingest`).
    let mut planned: Vec<Vec<String>> = Vec::with_capacity(batch.len());
    let mut settled_waits: Vec<String> = Vec::new();
    let mut cursor = 0usize;
    let outcomes = store.ingest_at(batch, input_seq, &mut |instance, joins| {
        // The store calls back in batch order (duplicates skipped): the
        // instance's span is the next one with its (name, id).
        let signal_span = if !traced {
            None
        } else if keys.is_empty() {
            spans.first().cloned()
        } else {
            while cursor < keys.len()
                && (keys[cursor].0 != instance.signal.name || keys[cursor].1 != instance.id)
            {
                cursor += 1;
            }
            spans.get(cursor).cloned()
        };
        let match_span = match &signal_span {
            Some(parent) => tracing::debug_span!(
                parent: parent,
                "match",
                matched = tracing::field::Empty,
                firings = tracing::field::Empty,
            ),
            None => tracing::Span::none(),
        };
        let mut plan = {
            let _in_match = match_span.enter();
            catalog.plan(instance, joins, crate::clock::now_ms())
        };
        match_span.record("matched", crate::telemetry::int(plan.matched.len()));
        match_span.record("firings", crate::telemetry::int(plan.firings.len()));
        if !plan.firings.is_empty()
            && let Some(tp) = signal_span
                .as_ref()
                .and_then(crate::telemetry::traceparent_of)
        {
            for firing in &mut plan.firings {
                firing.traceparent = Some(tp.clone());
            }
        }
        settled_waits.extend(plan.settled_waits);
        planned.push(plan.matched);
        plan.firings
    })?;
    for id in &settled_waits {
        tracing::info!(wait = %id, "wait satisfied");
        catalog.remove_wait(id);
    }
    let mut planned = planned.into_iter();
    let matched = outcomes
        .iter()
        .map(|o| match o {
            IngestOutcome::Stored { .. } => planned.next().unwrap_or_default(),
            IngestOutcome::Duplicate { .. } => Vec::new(),
        })
        .collect();
    Ok((outcomes, matched))
}

#[cfg(test)]
mod tests {
    //! The commit thread against a real redb file: merged batches get their
    //! own outcomes, a batch without ids fails alone, order is kept.

    use super::*;
    use signalbox_model::{Limits, Origin, Signal};
    use signalbox_store::StoreOptions;

    fn incoming(name: &str, id: Option<&str>) -> Incoming {
        let json = match id {
            Some(id) => format!(r#"{{"name":"{name}","id":"{id}","params":{{}}}}"#),
            None => format!(r#"{{"name":"{name}","params":{{}}}}"#),
        };
        Incoming {
            signal: Signal::parse(json.as_bytes(), &Limits::default()).expect("valid signal"),
            origin: Origin {
                transport: "nats".into(),
                ..Origin::default()
            },
            received_at_ms: 1_000,
        }
    }

    fn job(batch: Vec<Incoming>) -> (Job, tokio::sync::oneshot::Receiver<CommitAnswer>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            batch,
            input_seq: None,
            spans: Vec::new(),
            commit_span: tracing::Span::none(),
            reply,
        };
        (job, answer)
    }

    /// `(seq, duplicate)` per signal of an answer.
    fn seqs(answer: CommitAnswer) -> Vec<(u64, bool)> {
        let (outcomes, _, _) = answer.expect("batch committed");
        outcomes
            .into_iter()
            .map(|o| match o {
                IngestOutcome::Stored { instance, .. } => (instance.seq, false),
                IngestOutcome::Duplicate { seq, .. } => (seq, true),
            })
            .collect()
    }

    fn store(dir: &tempfile::TempDir) -> Arc<Store> {
        Arc::new(Store::open(&dir.path().join("s.redb"), StoreOptions::default()).expect("store"))
    }

    #[test]
    fn merged_batches_get_their_own_outcomes_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir);
        let catalog = Catalog::new(signalbox_matcher::OperatorRegistry::new(), "waits");
        let (a, answer_a) = job(vec![incoming("s", Some("1")), incoming("s", Some("2"))]);
        let (b, answer_b) = job(vec![incoming("s", Some("3")), incoming("s", Some("1"))]);
        commit_jobs(&store, &catalog, &Handoff::default(), vec![a, b]);
        let mut answer_a = answer_a;
        let mut answer_b = answer_b;
        assert_eq!(
            seqs(answer_a.try_recv().expect("a answered")),
            [(1, false), (2, false)]
        );
        // The duplicate of a signal stored earlier in the same transaction.
        assert_eq!(
            seqs(answer_b.try_recv().expect("b answered")),
            [(3, false), (1, true)]
        );
    }

    #[test]
    fn committed_firings_are_handed_to_the_drainer_in_seq_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir);
        let catalog = Catalog::new(signalbox_matcher::OperatorRegistry::new(), "waits");
        let sub = signalbox_model::Subscription::from_yaml(
            "id: b\nsignal: s\naction: {publish: {subject: out.b}}\n",
        )
        .expect("subscription");
        catalog.insert(catalog.compile(&sub).expect("compiles"));
        let handoff = Handoff::default();
        // "1" comes twice: the duplicate fires nothing.
        let (a, _answer_a) = job(vec![incoming("s", Some("1")), incoming("s", Some("2"))]);
        let (b, _answer_b) = job(vec![incoming("s", Some("1")), incoming("s", Some("3"))]);
        commit_jobs(&store, &catalog, &handoff, vec![a, b]);
        let taken = handoff.take_after(0, 10);
        let ids: Vec<(u64, &str)> = taken
            .iter()
            .map(|f| (f.seq, f.firing.signals[0].id.as_str()))
            .collect();
        assert_eq!(ids, [(1, "1"), (2, "2"), (3, "3")]);
        // Exactly what the outbox holds, each with its message.
        let stored: Vec<(u64, signalbox_model::Firing)> =
            taken.iter().map(|f| (f.seq, f.firing.clone())).collect();
        assert_eq!(store.pending_after(None, 10).expect("outbox"), stored);
        for f in &taken {
            assert_eq!(f.message, f.firing.message_bytes());
        }
    }

    #[test]
    fn each_outcome_gets_its_own_matches_and_a_duplicate_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir);
        let catalog = Catalog::new(signalbox_matcher::OperatorRegistry::new(), "waits");
        for (id, pattern) in [("all", "{}"), ("only-2", "{n: [2]}")] {
            let sub = signalbox_model::Subscription::from_yaml(&format!(
                "id: {id}\nsignal: s\nwhere: {pattern}\naction: {{publish: {{subject: out}}}}\n"
            ))
            .expect("subscription");
            catalog.insert(catalog.compile(&sub).expect("compiles"));
        }
        let with_n = |id: &str, n: i64| {
            let mut i = incoming("s", Some(id));
            i.signal
                .params
                .insert("n".into(), signalbox_model::Value::Int(n));
            i
        };
        // "1" comes again in the second batch: a duplicate matches nothing,
        // and the outcomes after it keep their own matches.
        let (a, answer_a) = job(vec![with_n("1", 1), with_n("2", 2)]);
        let (b, answer_b) = job(vec![with_n("1", 2), with_n("3", 2), with_n("4", 4)]);
        commit_jobs(&store, &catalog, &Handoff::default(), vec![a, b]);
        let matched = |mut answer: tokio::sync::oneshot::Receiver<CommitAnswer>| {
            let (outcomes, matched, _) = answer.try_recv().expect("answered").expect("stored");
            assert_eq!(outcomes.len(), matched.len());
            matched
        };
        let all = || vec!["all".to_string()];
        let both = || vec!["all".to_string(), "only-2".to_string()];
        assert_eq!(matched(answer_a), [all(), both()]);
        assert_eq!(matched(answer_b), [Vec::new(), both(), all()]);
    }

    #[tokio::test]
    async fn a_batch_without_ids_fails_alone_and_the_others_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir);
        let catalog = Arc::new(Catalog::new(
            signalbox_matcher::OperatorRegistry::new(),
            "waits",
        ));
        let handoff = Arc::new(Handoff::default());
        let committer =
            Committer::start(store.clone(), catalog, handoff.clone(), 1_000).expect("thread");
        let none = tracing::Span::none;
        let first = committer.submit(vec![incoming("s", Some("a"))], Vec::new(), none());
        let bad = committer.submit(
            vec![incoming("s", Some("b")), incoming("s", None)],
            Vec::new(),
            none(),
        );
        let last = committer.submit(vec![incoming("s", Some("c"))], Vec::new(), none());
        assert_eq!(seqs(first.await.expect("answered")), [(1, false)]);
        let error = bad.await.expect("answered").expect_err("no id");
        assert!(error.contains("signal 1 (s) has no id"), "{error}");
        // Nothing of the refused batch was stored: "c" takes seq 2.
        assert_eq!(seqs(last.await.expect("answered")), [(2, false)]);
        drop(committer);
        // The thread is gone and the store is still usable.
        let again = Committer::start(
            store,
            Arc::new(Catalog::new(
                signalbox_matcher::OperatorRegistry::new(),
                "waits",
            )),
            handoff,
            1_000,
        )
        .expect("thread");
        let dup = again.submit(vec![incoming("s", Some("b"))], Vec::new(), none());
        assert_eq!(seqs(dup.await.expect("answered")), [(3, false)]);
    }
}
