//! The ingest transaction: seqs, dedup, firing dedup, atomicity.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use signalbox_model::{Firing, SignalInstance};
use signalbox_store::{IngestError, IngestOutcome, PlanContext, Store};

#[test]
fn store_is_send_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<IngestError>();
    assert_send_sync::<signalbox_store::ReadError>();
    assert_send_sync::<signalbox_store::OpenError>();
}

#[test]
fn seq_per_name_continues_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        let out = store
            .ingest(
                vec![
                    incoming("a", "1", T0),
                    incoming("b", "1", T0),
                    incoming("a", "2", T0),
                ],
                &mut no_plan(),
            )
            .unwrap();
        let seqs: Vec<_> = out.iter().map(seq_of).collect();
        assert_eq!(seqs, vec![(false, 1), (false, 1), (false, 2)]);
    }
    let store = open(&path);
    let out = store
        .ingest(
            vec![incoming("a", "3", T0), incoming("b", "2", T0)],
            &mut no_plan(),
        )
        .unwrap();
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(false, 3), (false, 2)]
    );
    assert_eq!(
        store.signal_names().unwrap(),
        vec![("a".to_string(), 3), ("b".to_string(), 2)]
    );
    let a: Vec<u64> = store
        .signals("a", 0, 10)
        .unwrap()
        .iter()
        .map(|i| i.seq)
        .collect();
    assert_eq!(a, vec![1, 2, 3]);
    let after: Vec<u64> = store
        .signals("a", 1, 1)
        .unwrap()
        .iter()
        .map(|i| i.seq)
        .collect();
    assert_eq!(after, vec![2]);
    assert!(store.signals("a", u64::MAX, 10).unwrap().is_empty());
    let inst = store.signal("a", 2).unwrap().unwrap();
    assert_eq!(inst.id, "2");
    assert_eq!(inst.signal.id.as_deref(), Some("2"));
    assert_eq!(inst.origin.transport, "nats");
    assert_eq!(store.signal_by_id("a", "3").unwrap().unwrap().seq, 3);
    assert!(store.signal_by_id("a", "nope").unwrap().is_none());
    assert!(store.signal("a", 4).unwrap().is_none());
}

#[test]
fn dedup_within_batch_across_batches_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        let out = store
            .ingest(
                vec![
                    incoming("a", "x", T0),
                    incoming("a", "y", T0),
                    incoming("a", "x", T0 + 1),
                ],
                &mut no_plan(),
            )
            .unwrap();
        assert_eq!(
            out.iter().map(seq_of).collect::<Vec<_>>(),
            vec![(false, 1), (false, 2), (true, 1)]
        );
        let out = store
            .ingest(vec![incoming("a", "y", T0 + 5)], &mut no_plan())
            .unwrap();
        assert_eq!(
            out,
            vec![IngestOutcome::Duplicate {
                name: "a".into(),
                id: "y".into(),
                seq: 2
            }]
        );
        // Same id under another name is another signal.
        let out = store
            .ingest(vec![incoming("b", "x", T0)], &mut no_plan())
            .unwrap();
        assert_eq!(seq_of(&out[0]), (false, 1));
    }
    let store = open(&path);
    let out = store
        .ingest(
            vec![incoming("a", "x", T0 + 10), incoming("a", "z", T0 + 10)],
            &mut no_plan(),
        )
        .unwrap();
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(true, 1), (false, 3)]
    );
    assert_eq!(store.stats().unwrap().signals, 4);
}

#[test]
fn duplicate_is_not_planned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut calls = Vec::new();
    let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| {
        calls.push(inst.seq);
        Vec::new()
    };
    store
        .ingest(
            vec![incoming("a", "x", T0), incoming("a", "x", T0)],
            &mut plan,
        )
        .unwrap();
    assert_eq!(calls, vec![1]);
}

#[test]
fn plan_returning_nothing_stores_the_signal_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let out = store
        .ingest(vec![incoming("a", "x", T0)], &mut no_plan())
        .unwrap();
    match &out[0] {
        IngestOutcome::Stored { instance, firings } => {
            assert_eq!(instance.seq, 1);
            assert!(firings.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
    let stats = store.stats().unwrap();
    assert_eq!((stats.signals, stats.firings, stats.pending), (1, 0, 0));
    assert!(store.pending(10).unwrap().is_empty());
    assert!(store.ingest(Vec::new(), &mut no_plan()).unwrap().is_empty());
}

#[test]
fn a_new_firing_carries_the_message_its_record_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| {
        let mut f = firing("s\"1", inst);
        f.params
            .insert("note".into(), "quote \" slash \\ tab \t é 🚀".into());
        f.params.insert("n".into(), (-1.5e-7).into());
        f.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        vec![f]
    };
    let out = store
        .ingest(vec![incoming("t", "1", T0)], &mut plan)
        .unwrap();
    let [IngestOutcome::Stored { firings, .. }] = out.as_slice() else {
        panic!("unexpected {out:?}");
    };
    let [new] = firings.as_slice() else {
        panic!("one firing expected, got {firings:?}");
    };
    assert_eq!(new.message, new.firing.message_bytes());
    let stored = store.firing(&new.firing.firing_id).unwrap().unwrap();
    assert_eq!(new.message, stored.firing.message_bytes());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&new.message).unwrap()["params"]["note"],
        "quote \" slash \\ tab \t é 🚀"
    );
}

#[test]
fn firing_dedup_reads_the_table_for_ids_not_after_its_last_key() {
    // The table is read only for an id at or before its last key: an
    // existing id before the last one is still found, and new ids on
    // either side of it are written.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| {
        let mut f = firing("s", inst);
        f.firing_id = format!("f-{}", inst.id);
        vec![f]
    };
    let written = |out: Vec<IngestOutcome>| -> Vec<String> {
        out.into_iter()
            .flat_map(|o| match o {
                IngestOutcome::Stored { firings, .. } => firings,
                IngestOutcome::Duplicate { .. } => Vec::new(),
            })
            .map(|f| f.firing.firing_id)
            .collect()
    };
    let out = store
        .ingest(
            vec![incoming("t", "b", T0), incoming("t", "d", T0)],
            &mut plan,
        )
        .unwrap();
    assert_eq!(written(out), vec!["f-b", "f-d"]);
    // Signal ids differ, firing ids repeat: "a" and "e" are new, "b" exists
    // (before the last key "f-d"), and "d" is the last key itself.
    let mut again = |inst: &SignalInstance, ctx: &mut PlanContext<'_, '_>| {
        let mut fs = plan(inst, ctx);
        for f in &mut fs {
            f.firing_id = f.firing_id.trim_end_matches('2').to_string();
        }
        fs
    };
    let out = store
        .ingest(
            vec![
                incoming("t", "a", T0),
                incoming("t", "b2", T0),
                incoming("t", "e", T0),
                incoming("t", "d2", T0),
            ],
            &mut again,
        )
        .unwrap();
    assert_eq!(written(out), vec!["f-a", "f-e"]);
    let stats = store.stats().unwrap();
    assert_eq!((stats.signals, stats.firings, stats.pending), (6, 4, 4));
    let ids: Vec<String> = store
        .pending(10)
        .unwrap()
        .into_iter()
        .map(|f| f.firing_id)
        .collect();
    assert_eq!(ids, vec!["f-b", "f-d", "f-a", "f-e"]);
}

#[test]
fn firing_dedup_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    // A dedup-template style plan: every signal maps to the same firing id.
    let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| {
        let mut f = firing("daily", inst);
        f.firing_id = signalbox_model::dedup_firing_id("daily", "20261126");
        vec![f]
    };
    let out = store
        .ingest(
            vec![incoming("t", "1", T0), incoming("t", "2", T0)],
            &mut plan,
        )
        .unwrap();
    let written: Vec<usize> = out
        .iter()
        .map(|o| match o {
            IngestOutcome::Stored { firings, .. } => firings.len(),
            IngestOutcome::Duplicate { .. } => 99,
        })
        .collect();
    assert_eq!(written, vec![1, 0]);
    let out = store
        .ingest(vec![incoming("t", "3", T0)], &mut plan)
        .unwrap();
    assert!(matches!(&out[0], IngestOutcome::Stored { firings, .. } if firings.is_empty()));
    let stats = store.stats().unwrap();
    assert_eq!((stats.signals, stats.firings, stats.pending), (3, 1, 1));
    // The one firing's lineage points at the signal that made it.
    let fid = signalbox_model::dedup_firing_id("daily", "20261126");
    assert_eq!(
        store.firings_of_signal("t", 1).unwrap()[0].firing.firing_id,
        fid
    );
    assert!(store.firings_of_signal("t", 2).unwrap().is_empty());
    assert_eq!(store.firings_for("daily", 10).unwrap().len(), 1);
}

#[test]
fn missing_id_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut no_id = incoming("a", "x", T0);
    no_id.signal.id = None;
    let err = store
        .ingest(vec![incoming("a", "ok", T0), no_id], &mut no_plan())
        .unwrap_err();
    assert!(
        matches!(&err, IngestError::MissingId { index: 1, name } if name == "a"),
        "{err}"
    );
    assert!(err.to_string().contains("no id"), "{err}");
    let mut empty_id = incoming("a", "x", T0);
    empty_id.signal.id = Some(String::new());
    assert!(matches!(
        store.ingest(vec![empty_id], &mut no_plan()),
        Err(IngestError::MissingId { index: 0, .. })
    ));
    assert_eq!(store.stats().unwrap().signals, 0);
}

/// "Crash-ish": data committed before a failed batch is there, after a reopen;
/// nothing of the failed batch is, and seqs carry on as if it never happened.
#[test]
fn failed_batch_is_rolled_back_and_committed_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ingest_firing(&store, vec![incoming("a", "1", T0)], "s");
        // The plan breaks on the second signal, after the first one of the batch
        // and its firing were written inside the transaction.
        let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| -> Vec<Firing> {
            let mut f = firing("s", inst);
            if inst.seq == 3 {
                f.firing_id = String::new();
            }
            vec![f]
        };
        let err = store
            .ingest(
                vec![incoming("a", "2", T0), incoming("a", "3", T0)],
                &mut plan,
            )
            .unwrap_err();
        assert!(
            matches!(err, IngestError::EmptyFiringId { seq: 3, .. }),
            "{err}"
        );
        // Dropped here without anything else: no close, no flush.
    }
    let store = open(&path);
    assert_eq!(store.signal_names().unwrap(), vec![("a".to_string(), 1)]);
    assert!(store.signal("a", 2).unwrap().is_none());
    assert!(store.signal_by_id("a", "2").unwrap().is_none());
    assert_eq!(store.pending(10).unwrap().len(), 1);
    let stats = store.stats().unwrap();
    assert_eq!((stats.signals, stats.signal_ids, stats.firings), (1, 1, 1));
    // The ids of the failed batch are not taken: they store now, with the next seqs.
    let out = store
        .ingest(
            vec![incoming("a", "2", T0), incoming("a", "3", T0)],
            &mut no_plan(),
        )
        .unwrap();
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(false, 2), (false, 3)]
    );
}

/// A panic in the plan (a matcher bug) unwinds through the transaction: it is
/// rolled back and the store keeps working.
#[test]
fn panic_in_plan_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut plan = |_: &SignalInstance, _: &mut PlanContext<'_, '_>| -> Vec<Firing> {
            panic!("matcher bug")
        };
        let _ = store.ingest(vec![incoming("a", "1", T0)], &mut plan);
    }));
    assert!(result.is_err());
    assert_eq!(store.stats().unwrap().signals, 0);
    let out = store
        .ingest(vec![incoming("a", "1", T0)], &mut no_plan())
        .unwrap();
    assert_eq!(seq_of(&out[0]), (false, 1));
}

#[test]
fn join_firing_links_every_input_signal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    store
        .ingest(vec![incoming("t", "1", T0)], &mut no_plan())
        .unwrap();
    let first = store.signal("t", 1).unwrap().unwrap();
    let mut plan = |inst: &SignalInstance, _: &mut PlanContext<'_, '_>| {
        let mut f = firing("join", inst);
        f.signals
            .insert(0, firing("join", &first).signals[0].clone());
        f.firing_id = signalbox_model::firing_id("join", 1, &f.signals, inst.received_at_ms);
        vec![f]
    };
    store
        .ingest(vec![incoming("m", "1", T0)], &mut plan)
        .unwrap();
    assert_eq!(store.firings_of_signal("t", 1).unwrap().len(), 1);
    assert_eq!(store.firings_of_signal("m", 1).unwrap().len(), 1);
    assert_eq!(store.stats().unwrap().signal_firing_links, 2);
}

#[test]
fn lineage_lists_every_matched_subscription_fired_skipped_or_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    // Per instance: "fires" fires; "quiet" matches without a firing; "dup"
    // fires with one firing id for every instance, so the second instance's
    // firing is skipped as a duplicate; a wait answer ("@w") is no match.
    store
        .ingest(
            vec![incoming("a", "1", T0), incoming("a", "2", T0)],
            &mut |inst, ctx| {
                for sub in ["fires", "quiet", "dup"] {
                    ctx.record_match(inst, sub);
                }
                let mut dup = firing("dup", inst);
                dup.firing_id = "dup-once".into();
                vec![firing("fires", inst), dup, firing("@w", inst)]
            },
        )
        .unwrap();
    for seq in [1, 2] {
        assert_eq!(
            store.matches_of_signal("a", seq).unwrap(),
            vec!["dup", "fires", "quiet"],
            "instance a/{seq}"
        );
    }
    let fed = |seq| -> Vec<String> {
        let mut subs: Vec<String> = store
            .firings_of_signal("a", seq)
            .unwrap()
            .into_iter()
            .map(|r| r.firing.subscription)
            .collect();
        subs.sort();
        subs
    };
    assert_eq!(fed(1), vec!["@w", "dup", "fires"]);
    assert_eq!(fed(2), vec!["@w", "fires"]);
}

#[test]
fn a_join_completed_in_the_batch_that_stored_its_first_side_loads_it() {
    // The first side's offer does not carry its instance, so completing the
    // join reads it back from `signals`, which it was stored to earlier in
    // the same transaction.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let aliases = vec!["a".to_string(), "b".to_string()];
    let mut completed = Vec::new();
    store
        .ingest(
            vec![incoming("a", "1", T0), incoming("b", "1", T0)],
            &mut |inst, ctx| {
                let offer = signalbox_store::JoinOffer {
                    subscription: "j",
                    version: 1,
                    key: "k",
                    alias: &inst.signal.name,
                    aliases: &aliases,
                    within_ms: None,
                };
                if let Some(done) = ctx.offer(offer, inst) {
                    completed = done;
                }
                Vec::new()
            },
        )
        .unwrap();
    let got: Vec<(String, String, u64)> = completed
        .iter()
        .map(|(alias, i)| (alias.clone(), i.signal.name.clone(), i.seq))
        .collect();
    assert_eq!(
        got,
        vec![("a".into(), "a".into(), 1), ("b".into(), "b".into(), 1)]
    );
    assert_eq!(completed[0].1, store.signal("a", 1).unwrap().unwrap());
}
