//! Replay reproduces the owner's store: random sequences of store operations
//! on store A with a recording sink, every recorded entry applied in order to
//! an empty store B (and to a snapshot of A taken midway), and the three
//! compared table by table, byte for byte ([`Store::dump`]), and through the
//! public readers. Also: the op/table checks of `apply`, and the store that
//! fell behind its own log.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signalbox_model::{
    ActionKind, Firing, Origin, Signal, SignalInstance, SignalRef, Subscription, Wait, WaitRecord,
    WaitState,
};

use crate::change_set::{ChangeOp, ChangeSet};
use crate::error::{ApplyError, ChangelogError, IngestError};
use crate::joins::JoinOffer;
use crate::plugins::PluginVersion;
use crate::sink::ChangeSink;
use crate::store::{CommitDurability, Store, StoreOptions};
use crate::tables;
use crate::test_rng::Rng;

/// A sink that keeps every entry (encoded, as a log would) and hands out
/// positions with gaps, as a stream shared by several partitions would.
#[derive(Default)]
struct Log {
    entries: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl ChangeSink for Log {
    fn commit(&self, changes: &ChangeSet) -> Result<u64, ChangelogError> {
        assert!(
            !changes.is_empty(),
            "a sink is never called without changes"
        );
        let mut entries = self.entries.lock().unwrap();
        let last = entries.last().map_or(0, |(p, _)| *p);
        let position = last + 1 + (entries.len() as u64 % 3);
        entries.push((position, changes.encode()));
        Ok(position)
    }
}

impl Log {
    fn entries(&self) -> Vec<(u64, Vec<u8>)> {
        self.entries.lock().unwrap().clone()
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        // Short, so that history compaction removes things.
        dedup_retention: Duration::from_secs(20),
        durability: CommitDurability::None,
        cache_size: Some(1 << 20),
    }
}

fn open(path: &Path) -> Store {
    Store::open(path, options()).unwrap()
}

const NAMES: [&str; 3] = ["a", "b", "c"];
const SUBSCRIPTIONS: [&str; 3] = ["s0", "s1", "j"];
const T0: i64 = 1_800_000_000_000;

fn incoming(name: &str, id: &str, at_ms: i64) -> crate::Incoming {
    let mut params = signalbox_model::Map::new();
    params.insert("k".into(), signalbox_model::Value::String(id.into()));
    crate::Incoming {
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

fn signal_ref(inst: &SignalInstance) -> SignalRef {
    SignalRef {
        alias: inst.signal.name.clone(),
        name: inst.signal.name.clone(),
        id: inst.id.clone(),
        seq: inst.seq,
        params: None,
        payload: None,
    }
}

fn firing(subscription: &str, version: u64, signals: Vec<SignalRef>, at_ms: i64) -> Firing {
    Firing {
        firing_id: signalbox_model::firing_id(subscription, version, &signals, at_ms),
        subscription: subscription.into(),
        version,
        action: ActionKind::Publish,
        subject: format!("out.{subscription}"),
        params: signalbox_model::Map::new(),
        signals,
        created_at_ms: at_ms,
        traceparent: None,
    }
}

fn subscription(id: &str, subject: &str) -> Subscription {
    Subscription::from_yaml(&format!(
        "id: {id}\nsignal: a\naction: {{publish: {{subject: {subject}}}}}\n"
    ))
    .unwrap()
}

fn wait(id: &str, name: &str, at_ms: i64) -> WaitRecord {
    WaitRecord {
        wait: Wait::from_yaml(&format!("id: {id}\nsignal: {name}\n")).unwrap(),
        registered_at_ms: at_ms,
        deadline_ms: None,
        state: WaitState::Waiting,
    }
}

/// Runs one random operation on `store` at time `now`.
fn random_op(rng: &mut Rng, store: &Store, now: i64, input: &mut u64, waits_made: &mut u64) {
    match rng.below(16) {
        0..=4 => {
            // A batch: ids repeat (duplicates), some instances fire, every
            // `a`/`b` offers a join side, waiting waits on the name are
            // satisfied, matches are recorded.
            let batch: Vec<_> = (0..1 + rng.below(4))
                .map(|i| {
                    let name = *rng.pick(&NAMES).unwrap();
                    let id = format!("i{}", rng.below(12));
                    incoming(name, &id, now + i as i64)
                })
                .collect();
            let waiting = store.waits(true).unwrap();
            let join_version = store.subscription("j").unwrap().map_or(1, |s| s.version);
            let fire_mask = rng.next();
            let mut plan = |inst: &SignalInstance, ctx: &mut crate::PlanContext<'_, '_>| {
                let mut out = Vec::new();
                ctx.record_match(inst, "s0");
                if fire_mask & (1 << (inst.seq % 64)) != 0 {
                    out.push(firing("s0", 1, vec![signal_ref(inst)], inst.received_at_ms));
                }
                if inst.signal.name != "c" {
                    let aliases = ["a".to_string(), "b".to_string()];
                    let key = inst.id.chars().last().unwrap().to_string();
                    let offer = JoinOffer {
                        subscription: "j",
                        version: join_version,
                        key: &key,
                        alias: &inst.signal.name,
                        aliases: &aliases,
                        within_ms: Some(5_000),
                    };
                    if let Some(done) = ctx.offer(offer, inst) {
                        let refs = done.iter().map(|(_, i)| signal_ref(i)).collect();
                        out.push(firing("j", join_version, refs, inst.received_at_ms));
                    }
                }
                for w in &waiting {
                    if w.wait.signals[0].name == inst.signal.name {
                        let signals = vec![signal_ref(inst)];
                        if ctx.satisfy_wait(&w.wait.id, &signals, inst.received_at_ms) {
                            let mut answered = w.clone();
                            answered.state = WaitState::Satisfied {
                                at_ms: inst.received_at_ms,
                                signals,
                            };
                            out.push(answered.answer("waits", &[], inst.received_at_ms));
                        }
                    }
                }
                out
            };
            let input_seq = if rng.below(2) == 0 {
                *input += 1 + rng.below(3);
                Some(*input)
            } else {
                None
            };
            store.ingest_at(batch, input_seq, &mut plan).unwrap();
        }
        5 => {
            let pending = store.pending(10).unwrap();
            let ids: Vec<String> = pending
                .iter()
                .filter(|_| rng.below(2) == 0)
                .map(|f| f.firing_id.clone())
                .collect();
            store.mark_delivered(&ids, now).unwrap();
        }
        6 => {
            if let Some(f) = rng.pick(&store.pending(10).unwrap()) {
                store.record_failure(&f.firing_id, "timed out").unwrap();
                store
                    .record_failed_attempts(std::slice::from_ref(&f.firing_id))
                    .unwrap();
            }
        }
        7 => {
            if let Some(f) = rng.pick(&store.pending(10).unwrap()) {
                store
                    .mark_dead_lettered(std::slice::from_ref(&f.firing_id), now)
                    .unwrap();
            }
        }
        8 => {
            // A new wait, or the same id again (nothing written).
            let id = if *waits_made > 0 && rng.below(3) == 0 {
                format!("w{}", rng.below(*waits_made))
            } else {
                *waits_made += 1;
                format!("w{}", *waits_made - 1)
            };
            let name = *rng.pick(&NAMES).unwrap();
            store.register_wait(wait(&id, name, now)).unwrap();
        }
        9 => {
            if let Some(w) = rng.pick(&store.waits(true).unwrap()) {
                let state = if rng.below(2) == 0 {
                    WaitState::TimedOut { at_ms: now }
                } else {
                    WaitState::Cancelled { at_ms: now }
                };
                store
                    .settle_wait(&w.wait.id, state, |r| r.answer("waits", &[], now))
                    .unwrap();
            }
        }
        10 | 11 => {
            let id = *rng.pick(&SUBSCRIPTIONS).unwrap();
            let subject = format!("out.{}", rng.below(3));
            store.put_subscription(subscription(id, &subject)).unwrap();
        }
        12 => {
            let id = *rng.pick(&SUBSCRIPTIONS).unwrap();
            store.delete_subscription(id).unwrap();
        }
        13 => {
            store.compact_history(now, 20_000).unwrap();
        }
        14 => {
            // A wait's lookback: scan stored signals, satisfy, answer.
            let Some(w) = rng.pick(&store.waits(true).unwrap()).cloned() else {
                return;
            };
            store
                .run_plan(&mut |ctx| {
                    let found = ctx.stored(&w.wait.signals[0].name, 0, 1);
                    let Some(inst) = found.first() else {
                        return Vec::new();
                    };
                    let signals = vec![signal_ref(inst)];
                    if !ctx.satisfy_wait(&w.wait.id, &signals, now) {
                        return Vec::new();
                    }
                    let mut answered = w.clone();
                    answered.state = WaitState::Satisfied {
                        at_ms: now,
                        signals,
                    };
                    vec![answered.answer("waits", &[], now)]
                })
                .unwrap();
        }
        _ => {
            let name = *rng.pick(&["p", "q"]).unwrap();
            match rng.below(3) {
                0 => {
                    let hash = format!("h{}", rng.below(3));
                    let version = PluginVersion {
                        version: 0,
                        hash: hash.clone(),
                        size: 0,
                        settings: BTreeMap::new(),
                        description: serde_json::Value::Null,
                        deployed_at_ms: now,
                    };
                    store
                        .deploy_plugin(name, "operator", hash.as_bytes(), version)
                        .unwrap();
                }
                1 => {
                    let _ = store.rollback_plugin(name);
                }
                _ => {
                    let _ = store.remove_plugin(name);
                }
            }
        }
    }
}

/// Everything the public readers say about a store (file size aside).
fn observe(store: &Store) -> String {
    let mut out = String::new();
    let mut stats = store.stats().unwrap();
    stats.file_bytes = 0;
    out += &format!("{stats:?}\n");
    let names = store.signal_names().unwrap();
    out += &format!("{names:?}\n");
    for (name, _) in &names {
        for inst in store.signals(name, 0, usize::MAX).unwrap() {
            out += &format!("{inst:?}\n");
            out += &format!("{:?}\n", store.firings_of_signal(name, inst.seq).unwrap());
            out += &format!("{:?}\n", store.waits_of_signal(name, inst.seq).unwrap());
            out += &format!("{:?}\n", store.matches_of_signal(name, inst.seq).unwrap());
        }
        for id in 0..12 {
            out += &format!(
                "{:?}\n",
                store.signal_by_id(name, &format!("i{id}")).unwrap()
            );
        }
    }
    let waits = store.waits(false).unwrap();
    out += &format!("{waits:?}\n");
    let mut subs: BTreeSet<String> = SUBSCRIPTIONS.iter().map(|s| s.to_string()).collect();
    subs.extend(waits.iter().map(|w| format!("@{}", w.wait.id)));
    for sub in &subs {
        out += &format!("{:?}\n", store.firings_for(sub, usize::MAX).unwrap());
        out += &format!("{:?}\n", store.subscription(sub).unwrap());
        out += &format!("{:?}\n", store.subscription_history(sub).unwrap());
        out += &format!("{:?}\n", store.dropped_joins(sub).unwrap());
        for version in 0..6 {
            out += &format!("{:?}\n", store.pending_joins(sub, version).unwrap());
        }
    }
    out += &format!("{:?}\n", store.pending_after(None, usize::MAX).unwrap());
    out += &format!("{:?}\n", store.subscriptions().unwrap());
    out += &format!("{:?}\n", store.plugins().unwrap());
    for hash in ["h0", "h1", "h2"] {
        out += &format!("{:?}\n", store.plugin_blob(hash).unwrap());
    }
    out += &format!("{:?}\n", store.input_seq().unwrap());
    out += &format!("{:?}\n", store.changelog_seq().unwrap());
    out
}

/// Panics naming the first row where two dumps differ (table, key, values as
/// lossy UTF-8), instead of printing both dumps whole.
fn assert_same(a: &crate::replay::Dump, b: &crate::replay::Dump, what: &str) {
    let show = |(table, key): &(u8, Vec<u8>), values: Option<&Vec<Vec<u8>>>| {
        let values: Vec<String> = values
            .into_iter()
            .flatten()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        format!(
            "{}[{}] = {values:?}",
            tables::name_of(*table).unwrap_or("?"),
            String::from_utf8_lossy(key)
        )
    };
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        assert!(
            x == y,
            "{what}: first difference:\n  left:  {}\n  right: {}",
            show(key, x),
            show(key, y)
        );
    }
}

fn apply_all(store: &Store, entries: &[(u64, Vec<u8>)]) {
    for (position, bytes) in entries {
        store
            .apply(&ChangeSet::decode(bytes).unwrap(), *position)
            .unwrap();
    }
}

#[test]
fn replaying_the_log_of_random_operations_rebuilds_the_same_store() {
    let mut tables_written = BTreeSet::new();
    let mut ops_written = BTreeSet::new();
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let a = open(&dir.path().join("a.redb"));
        let log = Arc::new(Log::default());
        a.set_changelog(Some(log.clone()));
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (mut input, mut waits_made) = (0, 0);
        let ops = 140;
        let mut snapshot = None;
        for op in 0..ops {
            let now = T0 + op * 1_000;
            random_op(&mut rng, &a, now, &mut input, &mut waits_made);
            if op == ops / 2 {
                let path = dir.path().join("snap.redb");
                let position = a.snapshot_to(&path).unwrap();
                assert_eq!(position, a.changelog_seq().unwrap(), "seed {seed}");
                snapshot = Some((path, position, log.entries().len()));
            }
        }
        let entries = log.entries();
        assert!(entries.len() > 50, "seed {seed}: {} entries", entries.len());
        assert_eq!(a.changelog_seq().unwrap(), entries.last().unwrap().0);
        for (_, bytes) in &entries {
            for change in ChangeSet::decode(bytes).unwrap().iter() {
                tables_written.insert(change.table_name().unwrap());
                ops_written.insert(format!("{:?}", change.op));
            }
        }

        // B: an empty store, the whole log.
        let b = open(&dir.path().join("b.redb"));
        apply_all(&b, &entries);
        assert_same(&a.dump(), &b.dump(), &format!("seed {seed}: A and B"));
        assert_eq!(observe(&a), observe(&b), "seed {seed}: readers differ");

        // The same log again changes nothing (every entry is at or below
        // changelog_seq now).
        let before = b.dump();
        apply_all(&b, &entries);
        assert_same(&before, &b.dump(), &format!("seed {seed}: replayed twice"));

        // C: the snapshot taken midway, then the whole log (the entries it
        // already holds are skipped).
        let (path, position, held) = snapshot.unwrap();
        assert_eq!(entries[held - 1].0, position, "seed {seed}");
        let c = open(&path);
        assert_eq!(c.changelog_seq().unwrap(), position);
        apply_all(&c, &entries);
        assert_same(
            &a.dump(),
            &c.dump(),
            &format!("seed {seed}: A and snapshot + log"),
        );
        assert_eq!(observe(&a), observe(&c), "seed {seed}");
        drop(c);

        // And B reopened holds what it held.
        let before = b.dump();
        drop(b);
        let b = open(&dir.path().join("b.redb"));
        assert_same(&before, &b.dump(), &format!("seed {seed}: B reopened"));
    }
    let every_table: BTreeSet<&str> = tables::ALL.iter().map(|(_, name, _)| *name).collect();
    assert_eq!(
        tables_written, every_table,
        "the operations wrote every table"
    );
    assert_eq!(
        ops_written,
        ["Insert", "Remove", "RemoveAll"]
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn a_removed_multimap_pair_is_recorded_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir.path().join("a.redb"));
    let b = open(&dir.path().join("b.redb"));
    let log = Arc::new(Log::default());
    a.set_changelog(Some(log.clone()));
    let txn = a.begin_write::<IngestError>().unwrap();
    assert!(txn.records());
    {
        let mut links =
            crate::capture::write_multimap::<IngestError, _, _>(&txn, tables::SIGNAL_MATCHES)
                .unwrap();
        links.insert(("x", 1), "f1").unwrap();
        links.insert(("x", 1), "f2").unwrap();
        // Already there: changes nothing, records nothing.
        assert!(links.insert(("x", 1), "f2").unwrap());
    }
    txn.commit::<IngestError>().unwrap();
    let txn = a.begin_write::<IngestError>().unwrap();
    {
        let mut links =
            crate::capture::write_multimap::<IngestError, _, _>(&txn, tables::SIGNAL_MATCHES)
                .unwrap();
        assert!(links.remove(("x", 1), "f1").unwrap());
        // Gone already: changes nothing, records nothing.
        assert!(!links.remove(("x", 1), "f1").unwrap());
        assert!(links.remove_all(("y", 1)).unwrap().is_empty());
    }
    txn.commit::<IngestError>().unwrap();
    let entries = log.entries();
    assert_eq!(entries.len(), 2);
    let first = ChangeSet::decode(&entries[0].1).unwrap();
    assert_eq!(first.len(), 2);
    let last = ChangeSet::decode(&entries[1].1).unwrap();
    let changes: Vec<_> = last.iter().collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].op, ChangeOp::RemoveValue);
    assert_eq!(changes[0].value, Some(&b"f1"[..]));
    apply_all(&b, &entries);
    assert_eq!(a.dump(), b.dump());
    let key = <(&str, u64) as redb::Value>::as_bytes(&("x", 1));
    assert_eq!(
        b.dump().get(&(tables::ids::SIGNAL_MATCHES, key)),
        Some(&vec![b"f2".to_vec()])
    );
}

#[test]
fn without_a_sink_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir.path().join("a.redb"));
    let txn = a.begin_write::<IngestError>().unwrap();
    assert!(!txn.records());
    drop(txn);
    let log = Arc::new(Log::default());
    a.set_changelog(Some(log.clone()));
    a.set_changelog(None);
    a.ingest(vec![incoming("a", "1", T0)], &mut |_, _| Vec::new())
        .unwrap();
    assert!(log.entries().is_empty());
    assert_eq!(a.changelog_seq().unwrap(), 0);
}

#[test]
fn apply_refuses_changes_that_do_not_fit_their_table_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("b.redb"));
    let before = b.dump();
    // Every table id is known to apply and checks its key: a lone 0xff is no
    // key of any table (not UTF-8, not 8 bytes, a cut-off tuple length).
    for (id, name, kind) in tables::ALL {
        let mut set = ChangeSet::new();
        set.push(id, ChangeOp::Insert, &[0xff], Some(b""));
        match b.apply(&set, 5) {
            Err(ApplyError::BadChange {
                position: 5,
                index: 0,
                table,
                reason,
            }) => {
                assert_eq!(table, name);
                assert!(reason.starts_with("key: "), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
        // An op of the other kind of table (refused before its key is read).
        let op = match kind {
            tables::Kind::Table => ChangeOp::RemoveAll,
            tables::Kind::Multimap => ChangeOp::Remove,
        };
        let mut set = ChangeSet::new();
        set.push(id, op, &[0xff], None);
        let err = b.apply(&set, 5).unwrap_err();
        assert!(
            matches!(&err, ApplyError::BadChange { reason, .. } if reason.contains("does not apply")),
            "{name}: {err:?}"
        );
    }
    // Good changes before a bad one are not applied either.
    let mut set = ChangeSet::new();
    set.push(
        tables::ids::SIGNAL_SEQ,
        ChangeOp::Insert,
        b"a",
        Some(&7u64.to_le_bytes()),
    );
    set.push(99, ChangeOp::Insert, b"a", Some(b"b"));
    assert!(matches!(
        b.apply(&set, 5),
        Err(ApplyError::UnknownTable {
            position: 5,
            index: 1,
            table: 99
        })
    ));
    let mut set = ChangeSet::new();
    set.push(
        tables::ids::SIGNAL_SEQ,
        ChangeOp::Insert,
        b"a",
        Some(&7u64.to_le_bytes()),
    );
    set.push(
        tables::ids::OUTBOX,
        ChangeOp::Insert,
        &1u64.to_le_bytes(),
        Some(&[0xc3]),
    );
    let err = b.apply(&set, 5).unwrap_err();
    assert!(
        matches!(&err, ApplyError::BadChange { table: "outbox", index: 1, reason, .. } if reason.starts_with("value: not UTF-8")),
        "{err:?}"
    );
    assert_eq!(b.dump(), before);
    assert_eq!(b.changelog_seq().unwrap(), 0);
}

#[test]
fn a_store_behind_its_own_log_refuses_to_write_until_it_applied_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir.path().join("a.redb"));
    let log = Arc::new(Log::default());
    a.set_changelog(Some(log.clone()));
    a.ingest(vec![incoming("a", "1", T0)], &mut |_, _| Vec::new())
        .unwrap();
    let held = a.changelog_seq().unwrap();
    // As if the log had accepted an entry at held + 3 whose local commit failed.
    a.set_unapplied_position(held + 3);
    let err = a
        .ingest(vec![incoming("a", "2", T0)], &mut |_, _| Vec::new())
        .unwrap_err();
    assert!(
        matches!(err, IngestError::Changelog(ChangelogError::Behind { position }) if position == held + 3),
        "{err:?}"
    );
    assert_eq!(log.entries().len(), 1, "the sink was not called");
    // A transaction that writes nothing is not refused.
    a.mark_delivered(&[], T0).unwrap();
    // Applying the missing entry (here: one that stores instance a#2) lets it write again.
    let b = open(&dir.path().join("b.redb"));
    let blog = Arc::new(Log::default());
    b.set_changelog(Some(blog.clone()));
    b.ingest(
        vec![incoming("a", "1", T0), incoming("a", "2", T0)],
        &mut |_, _| Vec::new(),
    )
    .unwrap();
    let (_, bytes) = blog.entries().pop().unwrap();
    a.apply(&ChangeSet::decode(&bytes).unwrap(), held + 3)
        .unwrap();
    assert_eq!(a.changelog_seq().unwrap(), held + 3);
    assert!(a.signal("a", 2).unwrap().is_some());
    a.ingest(vec![incoming("a", "3", T0)], &mut |_, _| Vec::new())
        .unwrap();
    assert_eq!(a.signal_names().unwrap(), vec![("a".to_string(), 3)]);
}

#[test]
fn a_schema_2_entry_for_the_retired_signal_firings_multimap_replays_into_the_links() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir.path().join("b.redb"));
    let key = |name: &str, seq: u64| <(&str, u64) as redb::Value>::as_bytes(&(name, seq));
    let legacy = tables::ids::LEGACY_SIGNAL_FIRINGS;
    let mut set = ChangeSet::new();
    set.push(legacy, ChangeOp::Insert, &key("a", 1), Some(b"f1"));
    set.push(legacy, ChangeOp::Insert, &key("a", 1), Some(b"f2"));
    set.push(legacy, ChangeOp::Insert, &key("a", 2), Some(b"f3"));
    set.push(legacy, ChangeOp::Insert, &key("b", 1), Some(b"f4"));
    b.apply(&set, 1).unwrap();
    let mut set = ChangeSet::new();
    set.push(legacy, ChangeOp::RemoveValue, &key("a", 1), Some(b"f1"));
    set.push(legacy, ChangeOp::RemoveAll, &key("a", 2), None);
    b.apply(&set, 2).unwrap();
    let links: Vec<(u8, Vec<u8>)> = b
        .dump()
        .into_keys()
        .filter(|(id, _)| *id == tables::ids::SIGNAL_FIRINGS)
        .collect();
    let row = |name: &str, seq: u64, fid: &str| {
        (
            tables::ids::SIGNAL_FIRINGS,
            <(&str, u64, &str) as redb::Value>::as_bytes(&(name, seq, fid)),
        )
    };
    assert_eq!(links, vec![row("a", 1, "f2"), row("b", 1, "f4")]);
    // A change that no multimap takes is refused, naming the old table.
    let mut set = ChangeSet::new();
    set.push(legacy, ChangeOp::Remove, &key("a", 1), None);
    let err = b.apply(&set, 3).unwrap_err();
    assert!(
        matches!(&err, ApplyError::BadChange { table: "signal_firings", reason, .. } if reason.contains("does not apply")),
        "{err:?}"
    );
}
