//! The changelog through the public API: a refused entry leaves the store as
//! it was, the sink runs before the commit, positions survive a reopen,
//! replay is idempotent, snapshots hold exactly the position they report, and
//! a store without a sink behaves as before. Stand-alone: its helpers are here.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use signalbox_model::{
    ActionKind, Firing, Origin, Signal, SignalInstance, SignalRef, Subscription, Wait, WaitRecord,
    WaitState,
};
use signalbox_store::{
    ChangeSet, ChangeSink, ChangelogError, CommitDurability, CompactError, Incoming, IngestError,
    OutboxError, PluginStoreError, PluginVersion, Store, StoreOptions, SubscriptionError,
    WaitError,
};

const T0: i64 = 1_800_000_000_000;

/// What the sink does with the next entries.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Accept,
    Refuse(ChangelogError),
}

/// A sink that keeps the entries it accepted and answers as it is told; it
/// can look at its store while it is called (reads do not wait for the
/// writer), to show what is committed at that moment.
#[derive(Default)]
struct Log {
    entries: Mutex<Vec<(u64, Vec<u8>)>>,
    answer: Mutex<Option<Answer>>,
    calls: AtomicU64,
    store: OnceLock<Weak<Store>>,
    /// `signal_names()` of the store as each call saw it.
    seen: Mutex<Vec<Vec<(String, u64)>>>,
}

impl ChangeSink for Log {
    fn commit(&self, changes: &ChangeSet) -> Result<u64, ChangelogError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(store) = self.store.get().and_then(Weak::upgrade) {
            self.seen
                .lock()
                .unwrap()
                .push(store.signal_names().unwrap());
        }
        if let Some(Answer::Refuse(e)) = self.answer.lock().unwrap().clone() {
            return Err(e);
        }
        let mut entries = self.entries.lock().unwrap();
        let position = entries.last().map_or(0, |(p, _)| *p) + 10;
        entries.push((position, changes.encode()));
        Ok(position)
    }
}

impl Log {
    fn refuse(&self, e: ChangelogError) {
        *self.answer.lock().unwrap() = Some(Answer::Refuse(e));
    }

    fn accept(&self) {
        *self.answer.lock().unwrap() = Some(Answer::Accept);
    }

    fn entries(&self) -> Vec<(u64, Vec<u8>)> {
        self.entries.lock().unwrap().clone()
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn fenced() -> ChangelogError {
    ChangelogError::Fenced {
        detail: "wrong last sequence".into(),
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        durability: CommitDurability::None,
        cache_size: Some(256 * 1024),
        ..StoreOptions::default()
    }
}

fn open(path: &Path) -> Store {
    Store::open(path, options()).unwrap()
}

/// A store at `path` with a fresh log as its sink.
fn logged(path: &Path) -> (Arc<Store>, Arc<Log>) {
    let store = Arc::new(open(path));
    let log = Arc::new(Log::default());
    log.store.set(Arc::downgrade(&store)).unwrap();
    store.set_changelog(Some(log.clone()));
    (store, log)
}

fn incoming(name: &str, id: &str, at_ms: i64) -> Incoming {
    let mut params = signalbox_model::Map::new();
    params.insert("k".into(), signalbox_model::Value::String(id.into()));
    Incoming {
        signal: Signal {
            name: name.into(),
            id: Some(id.into()),
            params,
            payload: None,
            source: None,
            producer: None,
            occurred_at: None,
        },
        origin: Origin {
            transport: "nats".into(),
            address: Some(format!("signals.{name}")),
            ..Origin::default()
        },
        received_at_ms: at_ms,
    }
}

fn firing(subscription: &str, inst: &SignalInstance) -> Firing {
    let signals = vec![SignalRef {
        alias: inst.signal.name.clone(),
        name: inst.signal.name.clone(),
        id: inst.id.clone(),
        seq: inst.seq,
        params: None,
        payload: None,
    }];
    Firing {
        firing_id: signalbox_model::firing_id(subscription, 1, &signals, inst.received_at_ms),
        subscription: subscription.into(),
        version: 1,
        action: ActionKind::Publish,
        subject: format!("out.{subscription}"),
        params: signalbox_model::Map::new(),
        signals,
        created_at_ms: inst.received_at_ms,
        traceparent: None,
    }
}

/// Ingests `batch` with a plan that fires subscription `s` for every instance.
fn ingest_firing(store: &Store, batch: Vec<Incoming>) -> Result<(), IngestError> {
    store
        .ingest(batch, &mut |inst, _| vec![firing("s", inst)])
        .map(|_| ())
}

fn subscription(id: &str, subject: &str) -> Subscription {
    Subscription::from_yaml(&format!(
        "id: {id}\nsignal: a\naction: {{publish: {{subject: {subject}}}}}\n"
    ))
    .unwrap()
}

fn wait(id: &str) -> WaitRecord {
    WaitRecord {
        wait: Wait::from_yaml(&format!("id: {id}\nsignal: a\n")).unwrap(),
        registered_at_ms: T0,
        deadline_ms: None,
        state: WaitState::Waiting,
    }
}

fn plugin_version(hash: &str) -> PluginVersion {
    PluginVersion {
        version: 0,
        hash: hash.into(),
        size: 0,
        settings: Default::default(),
        description: serde_json::Value::Null,
        deployed_at_ms: T0,
    }
}

/// What the public readers say about a store (file size aside).
fn observe(store: &Store) -> String {
    let mut stats = store.stats().unwrap();
    stats.file_bytes = 0;
    let mut out = format!("{stats:?}\n{:?}\n", store.signal_names().unwrap());
    for (name, _) in store.signal_names().unwrap() {
        out += &format!("{:?}\n", store.signals(&name, 0, usize::MAX).unwrap());
    }
    out += &format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
        store.pending_after(None, usize::MAX).unwrap(),
        store.firings_for("s", usize::MAX).unwrap(),
        store.waits(false).unwrap(),
        store.subscriptions().unwrap(),
        store.plugins().unwrap(),
        store.input_seq().unwrap(),
        store.changelog_seq().unwrap(),
    );
    out
}

fn apply_all(store: &Store, entries: &[(u64, Vec<u8>)]) {
    for (position, bytes) in entries {
        store
            .apply(&ChangeSet::decode(bytes).unwrap(), *position)
            .unwrap();
    }
}

#[test]
fn a_fenced_ingest_stores_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = logged(&dir.path().join("a.redb"));
    store
        .ingest_at(vec![incoming("a", "1", T0)], Some(7), &mut |inst, _| {
            vec![firing("s", inst)]
        })
        .unwrap();
    let before = observe(&store);
    assert_eq!(store.changelog_seq().unwrap(), 10);

    log.refuse(fenced());
    let err = store
        .ingest_at(
            vec![incoming("a", "2", T0 + 1), incoming("b", "1", T0 + 1)],
            Some(8),
            &mut |inst, _| vec![firing("s", inst)],
        )
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::Changelog(ChangelogError::Fenced { detail }) if detail == "wrong last sequence"),
        "{err:?}"
    );
    assert!(err.to_string().contains("fenced"), "{err}");
    assert_eq!(
        observe(&store),
        before,
        "nothing of the refused batch is stored"
    );
    assert!(store.signal("a", 2).unwrap().is_none());
    assert!(store.signal("b", 1).unwrap().is_none());
    assert_eq!(store.pending(10).unwrap().len(), 1);
    assert_eq!(store.changelog_seq().unwrap(), 10, "position not advanced");
    assert_eq!(store.input_seq().unwrap(), Some(7));

    // Once the log accepts again, the same batch gets the seqs it would have had.
    log.accept();
    store
        .ingest_at(
            vec![incoming("a", "2", T0 + 1), incoming("b", "1", T0 + 1)],
            Some(8),
            &mut |inst, _| vec![firing("s", inst)],
        )
        .unwrap();
    assert_eq!(store.signal("a", 2).unwrap().unwrap().id, "2");
    assert_eq!(store.changelog_seq().unwrap(), 20);
    assert_eq!(store.input_seq().unwrap(), Some(8));
    assert_eq!(log.entries().len(), 2);
}

#[test]
fn every_write_family_reports_a_refusal_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = logged(&dir.path().join("a.redb"));
    ingest_firing(&store, vec![incoming("a", "1", T0)]).unwrap();
    store.register_wait(wait("w1")).unwrap();
    store.put_subscription(subscription("s", "out.1")).unwrap();
    store
        .deploy_plugin("p", "operator", b"one", plugin_version("h1"))
        .unwrap();
    let fid = store.pending(1).unwrap()[0].firing_id.clone();
    let before = observe(&store);
    let unavailable = ChangelogError::Unavailable {
        detail: "no responders".into(),
    };
    log.refuse(unavailable.clone());
    let is = |e: &ChangelogError| *e == unavailable;

    assert!(
        matches!(store.mark_delivered(std::slice::from_ref(&fid), T0), Err(OutboxError::Changelog(e)) if is(&e))
    );
    assert!(matches!(store.record_failure(&fid, "x"), Err(OutboxError::Changelog(e)) if is(&e)));
    assert!(
        matches!(store.mark_dead_lettered(std::slice::from_ref(&fid), T0), Err(OutboxError::Changelog(e)) if is(&e))
    );
    assert!(matches!(store.register_wait(wait("w2")), Err(WaitError::Changelog(e)) if is(&e)));
    assert!(matches!(
        store.settle_wait("w1", WaitState::Cancelled { at_ms: T0 }, |r| r.answer("waits", &[], T0)),
        Err(WaitError::Changelog(e)) if is(&e)
    ));
    assert!(
        matches!(store.put_subscription(subscription("s", "out.2")), Err(SubscriptionError::Changelog(e)) if is(&e))
    );
    assert!(
        matches!(store.delete_subscription("s"), Err(SubscriptionError::Changelog(e)) if is(&e))
    );
    assert!(
        matches!(store.compact_history(T0 + 400 * 86_400_000, 0), Err(CompactError::Changelog(e)) if is(&e))
    );
    assert!(matches!(
        store.deploy_plugin("p", "operator", b"two", plugin_version("h2")),
        Err(PluginStoreError::Changelog(e)) if is(&e)
    ));
    assert!(matches!(store.remove_plugin("p"), Err(PluginStoreError::Changelog(e)) if is(&e)));
    assert!(matches!(
        store.run_plan(&mut |ctx| {
            let found = ctx.stored("a", 0, 1);
            vec![firing("replay", &found[0])]
        }),
        Err(IngestError::Changelog(e)) if is(&e)
    ));
    assert_eq!(observe(&store), before);
    assert_eq!(
        log.entries().len(),
        4,
        "only the four accepted set-up entries"
    );
}

#[test]
fn the_sink_runs_before_the_commit_and_only_when_something_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = logged(&dir.path().join("a.redb"));
    ingest_firing(&store, vec![incoming("a", "1", T0)]).unwrap();
    ingest_firing(&store, vec![incoming("a", "2", T0)]).unwrap();
    // While the sink ran, the batch it was given was not committed yet.
    assert_eq!(
        *log.seen.lock().unwrap(),
        vec![vec![], vec![("a".to_string(), 1)]]
    );
    assert_eq!(log.calls(), 2);

    // Transactions that find nothing to write call no sink.
    ingest_firing(&store, vec![incoming("a", "1", T0 + 1)]).unwrap(); // a duplicate
    store.ingest(Vec::new(), &mut |_, _| Vec::new()).unwrap();
    store.register_wait(wait("w1")).unwrap();
    let calls = log.calls();
    store.register_wait(wait("w1")).unwrap(); // exists
    store.put_subscription(subscription("s", "out.1")).unwrap();
    let calls = calls + 1;
    store.put_subscription(subscription("s", "out.1")).unwrap(); // unchanged
    store.mark_delivered(&[], T0).unwrap();
    store.compact_history(T0, 1).unwrap(); // nothing old enough
    store
        .settle_wait("nope", WaitState::Cancelled { at_ms: T0 }, |r| {
            r.answer("waits", &[], T0)
        })
        .unwrap();
    assert!(store.sync_lazy(Duration::ZERO).is_ok());
    assert_eq!(log.calls(), calls);

    // An empty batch with an input position records the position.
    store
        .ingest_at(Vec::new(), Some(42), &mut |_, _| Vec::new())
        .unwrap();
    assert_eq!(log.calls(), calls + 1);
    assert_eq!(store.input_seq().unwrap(), Some(42));
}

#[test]
fn positions_survive_a_reopen_and_replay_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    let entries = {
        let (store, log) = logged(&path);
        ingest_firing(&store, vec![incoming("a", "1", T0)]).unwrap();
        store
            .ingest_at(vec![incoming("a", "2", T0)], Some(1234), &mut |_, _| {
                Vec::new()
            })
            .unwrap();
        store
            .mark_delivered(&[store.pending(1).unwrap()[0].firing_id.clone()], T0)
            .unwrap();
        store.set_changelog(None);
        log.entries()
    };
    let a = open(&path);
    assert_eq!(a.changelog_seq().unwrap(), 30);
    assert_eq!(a.input_seq().unwrap(), Some(1234));

    let b_path = dir.path().join("b.redb");
    {
        let b = open(&b_path);
        assert_eq!(
            (b.changelog_seq().unwrap(), b.input_seq().unwrap()),
            (0, None)
        );
        apply_all(&b, &entries[..2]);
        let after_two = observe(&b);
        // The same entries again, and an older one after a newer one: no-ops.
        apply_all(&b, &entries[..2]);
        apply_all(&b, &entries[..1]);
        assert_eq!(observe(&b), after_two);
        apply_all(&b, &entries);
        assert_eq!(observe(&b), observe(&a));
    }
    let b = open(&b_path);
    assert_eq!(b.changelog_seq().unwrap(), 30);
    assert_eq!(b.input_seq().unwrap(), Some(1234));
    assert_eq!(observe(&b), observe(&a));
}

#[test]
fn a_snapshot_holds_exactly_the_position_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = logged(&dir.path().join("a.redb"));
    // A writer keeps ingesting, one signal per entry, while snapshots are taken.
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..300 {
                ingest_firing(&store, vec![incoming("a", &i.to_string(), T0 + i)]).unwrap();
            }
        })
    };
    let mut taken = Vec::new();
    for k in 0..5 {
        let path = dir.path().join(format!("snap-{k}.redb"));
        let position = store.snapshot_to(&path).unwrap();
        taken.push((path, position));
    }
    writer.join().unwrap();
    let entries = log.entries();
    for (path, position) in taken {
        let copy = open(&path);
        assert_eq!(copy.changelog_seq().unwrap(), position);
        // Entry k (position 10 k) stored signal a#k.
        let held = entries.iter().filter(|(p, _)| *p <= position).count() as u64;
        assert_eq!(
            copy.signal_names().unwrap(),
            if held == 0 {
                vec![]
            } else {
                vec![("a".to_string(), held)]
            },
            "{}",
            path.display()
        );
        assert_eq!(copy.pending(1000).unwrap().len() as u64, held);
        // The rest of the log brings it to the writer's state.
        apply_all(&copy, &entries);
        assert_eq!(observe(&copy), observe(&store));
        assert!(
            !dir.path()
                .join(format!("{}.partial", path.display()))
                .exists()
        );
    }
}

#[test]
fn a_snapshot_includes_commits_that_were_not_durable_and_refuses_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    let store = open(&path); // CommitDurability::None: nothing fsynced yet
    ingest_firing(&store, vec![incoming("a", "1", T0), incoming("a", "2", T0)]).unwrap();
    store.put_subscription(subscription("s", "out.1")).unwrap();
    let snap = dir.path().join("snap.redb");
    assert_eq!(store.snapshot_to(&snap).unwrap(), 0, "no sink: position 0");
    let copy = open(&snap);
    assert_eq!(observe(&copy), observe(&store));
    assert!(matches!(
        store.snapshot_to(&path),
        Err(signalbox_store::SnapshotError::SameFile(_))
    ));
    assert_eq!(store.signal_names().unwrap(), vec![("a".to_string(), 2)]);
}

#[test]
fn without_a_sink_the_store_writes_positions_but_calls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("a.redb"));
    ingest_firing(&store, vec![incoming("a", "1", T0)]).unwrap();
    assert_eq!(store.changelog_seq().unwrap(), 0);
    assert_eq!(store.input_seq().unwrap(), None);
    store
        .ingest_at(vec![incoming("a", "2", T0)], Some(5), &mut |_, _| {
            Vec::new()
        })
        .unwrap();
    assert_eq!(store.input_seq().unwrap(), Some(5));
    assert_eq!(store.changelog_seq().unwrap(), 0);

    // A sink set and removed again leaves no trace either.
    let log = Arc::new(Log::default());
    store.set_changelog(Some(log.clone()));
    store.set_changelog(None);
    ingest_firing(&store, vec![incoming("a", "3", T0)]).unwrap();
    assert_eq!(log.calls(), 0);
    assert_eq!(store.changelog_seq().unwrap(), 0);
    assert_eq!(store.signal_names().unwrap(), vec![("a".to_string(), 3)]);
}

#[test]
fn junk_is_refused_by_decode_and_apply_names_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("a.redb"));
    assert!(ChangeSet::decode(b"").is_err());
    assert!(ChangeSet::decode(&[1, 3, 1, 200]).is_err());
    // Well-formed, but table 3 (signals) needs a (name, seq) key.
    let entry = ChangeSet::decode(&[1, 3, 1, 1, b'x', 1, b'y']).unwrap();
    let err = store.apply(&entry, 77).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("position 77") && text.contains("signals"),
        "{text}"
    );
    assert_eq!(store.changelog_seq().unwrap(), 0);
}
