//! The outbox: pending → delivered, attempts, survival across reopen.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use signalbox_store::{FiringState, OutboxError};

#[test]
fn pending_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    ingest_firing(
        &store,
        vec![
            incoming("a", "1", T0),
            incoming("a", "2", T0),
            incoming("a", "3", T0),
        ],
        "s",
    );
    let pending = store.pending(10).unwrap();
    assert_eq!(pending.len(), 3);
    // Oldest first.
    let seqs: Vec<u64> = pending.iter().map(|f| f.signals[0].seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(store.pending(2).unwrap().len(), 2);

    let first = pending[0].firing_id.clone();
    let record = store.firing(&first).unwrap().unwrap();
    assert_eq!(record.state, FiringState::Pending);
    assert_eq!(record.attempts, 0);
    assert_eq!(record.firing, pending[0]);

    store
        .record_failed_attempts(std::slice::from_ref(&first))
        .unwrap();
    store
        .mark_delivered(std::slice::from_ref(&first), T0 + 7)
        .unwrap();
    let record = store.firing(&first).unwrap().unwrap();
    assert_eq!(record.state, FiringState::Delivered { at_ms: T0 + 7 });
    assert_eq!(record.attempts, 2);
    let left: Vec<String> = store
        .pending(10)
        .unwrap()
        .into_iter()
        .map(|f| f.firing_id)
        .collect();
    assert_eq!(
        left,
        vec![pending[1].firing_id.clone(), pending[2].firing_id.clone()]
    );

    // Marking again is a no-op: the first delivery time stays.
    store
        .mark_delivered(std::slice::from_ref(&first), T0 + 99)
        .unwrap();
    assert_eq!(
        store.firing(&first).unwrap().unwrap().state,
        FiringState::Delivered { at_ms: T0 + 7 }
    );

    // An unknown id fails the whole call; the known one in it stays pending.
    let err = store
        .mark_delivered(&[pending[1].firing_id.clone(), "nope".into()], T0)
        .unwrap_err();
    assert!(
        matches!(&err, OutboxError::UnknownFiring(id) if id == "nope"),
        "{err}"
    );
    assert_eq!(store.pending(10).unwrap().len(), 2);

    store.mark_delivered(&left, T0 + 8).unwrap();
    assert!(store.pending(10).unwrap().is_empty());
    let stats = store.stats().unwrap();
    assert_eq!((stats.firings, stats.pending), (3, 0));
    assert!(store.mark_delivered(&[], T0).is_ok());
}

#[test]
fn pending_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let ids: Vec<String> = {
        let store = open(&path);
        ingest_firing(
            &store,
            vec![incoming("a", "1", T0), incoming("a", "2", T0)],
            "s",
        );
        let ids = store
            .pending(10)
            .unwrap()
            .into_iter()
            .map(|f| f.firing_id)
            .collect();
        store
            .mark_delivered(&[store.pending(1).unwrap()[0].firing_id.clone()], T0)
            .unwrap();
        ids
    };
    let store = open(&path);
    let pending: Vec<String> = store
        .pending(10)
        .unwrap()
        .into_iter()
        .map(|f| f.firing_id)
        .collect();
    assert_eq!(pending, vec![ids[1].clone()]);
    // New firings after the reopen queue behind the old ones.
    ingest_firing(&store, vec![incoming("a", "3", T0)], "s");
    let pending = store.pending(10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].firing_id, ids[1]);
    assert_eq!(pending[1].signals[0].seq, 3);
}

#[test]
fn firings_for_is_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    ingest_firing(
        &store,
        vec![incoming("a", "1", T0), incoming("a", "2", T0)],
        "s",
    );
    ingest_firing(&store, vec![incoming("a", "3", T0)], "other");
    let seqs: Vec<u64> = store
        .firings_for("s", 10)
        .unwrap()
        .iter()
        .map(|r| r.firing.signals[0].seq)
        .collect();
    assert_eq!(seqs, vec![2, 1]);
    assert_eq!(store.firings_for("s", 1).unwrap().len(), 1);
    assert_eq!(store.firings_for("other", 10).unwrap().len(), 1);
    assert!(store.firings_for("none", 10).unwrap().is_empty());
    assert!(store.firing("none").unwrap().is_none());
}

/// Delivery marks are lazy commits: durable with the next durable commit or
/// `sync_lazy`; lost in a crash before that (the firing is published again),
/// while the firing itself, committed durably at ingest, never is.
#[test]
fn delivery_marks_become_durable_with_sync_lazy_or_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let ids: Vec<String> = {
        let store = open(&path);
        ingest_firing(
            &store,
            vec![incoming("a", "1", T0), incoming("a", "2", T0)],
            "s",
        );
        store
            .pending(10)
            .unwrap()
            .into_iter()
            .map(|f| f.firing_id)
            .collect()
    };
    {
        let store = open(&path);
        // Within a second of the last durable commit: lazy.
        ingest_firing(&store, vec![incoming("b", "1", T0)], "s");
        store.mark_delivered(&ids[..1], T0 + 1).unwrap();
        assert_eq!(store.pending(10).unwrap().len(), 2, "visible at once");
        assert!(
            store.sync_lazy(std::time::Duration::ZERO).unwrap(),
            "a lazy commit was pending"
        );
        assert!(
            !store.sync_lazy(std::time::Duration::ZERO).unwrap(),
            "nothing left to sync"
        );
        store.mark_delivered(&ids[1..], T0 + 2).unwrap();
        // The next durable commit carries the second mark.
        ingest_firing(&store, vec![incoming("c", "1", T0)], "s");
    }
    let store = open(&path);
    for id in &ids {
        assert!(
            matches!(
                store.firing(id).unwrap().unwrap().state,
                FiringState::Delivered { .. }
            ),
            "{id} delivered after reopening"
        );
    }
    assert_eq!(
        store.pending(10).unwrap().len(),
        2,
        "b/1 and c/1 are still pending"
    );
}

#[test]
fn pending_after_reads_on_past_firings_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    ingest_firing(
        &store,
        vec![incoming("a", "1", T0), incoming("a", "2", T0)],
        "s",
    );
    let first = store.pending_after(None, 10).unwrap();
    let seqs: Vec<u64> = first.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1], "oldest first: {seqs:?}");
    // With both in flight, nothing is left past the cursor…
    assert!(store.pending_after(Some(seqs[1]), 10).unwrap().is_empty());
    // …until new firings arrive: they come after every stored one.
    ingest_firing(&store, vec![incoming("a", "3", T0)], "s");
    let next = store.pending_after(Some(seqs[1]), 10).unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].0 > seqs[1]);
    assert_eq!(next[0].1.signals[0].seq, 3);
    // The limit and the first-row cursor.
    assert_eq!(store.pending_after(Some(seqs[0]), 1).unwrap().len(), 1);
    assert_eq!(store.pending_after(Some(seqs[0]), 1).unwrap()[0].0, seqs[1]);
    assert!(store.pending_after(Some(u64::MAX), 10).unwrap().is_empty());
    // Delivered firings leave the outbox; the rest stay readable from the start.
    store
        .mark_delivered(&[first[0].1.firing_id.clone()], T0)
        .unwrap();
    let all: Vec<u64> = store
        .pending_after(None, 10)
        .unwrap()
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    assert_eq!(all, vec![seqs[1], next[0].0]);
}

#[test]
fn delivery_by_seq_moves_the_outbox_row_and_leaves_other_firings_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let stored = fired(ingest_firing(
        &store,
        vec![
            incoming("a", "1", T0),
            incoming("a", "2", T0),
            incoming("a", "3", T0),
        ],
        "s",
    ));
    assert_eq!(stored.len(), 3);

    // An outbox row that names another firing fails the whole call.
    let wrong = (stored[1].0, stored[2].1.clone());
    let err = store
        .mark_delivered_seqs(&[stored[0].clone(), wrong], T0)
        .unwrap_err();
    assert!(matches!(err, OutboxError::Corrupt(_)), "{err}");
    assert_eq!(store.pending(10).unwrap().len(), 3, "nothing was marked");

    store
        .mark_delivered_seqs(std::slice::from_ref(&stored[0]), T0 + 1)
        .unwrap();
    let first = store.firing(&stored[0].1).unwrap().unwrap();
    assert_eq!(
        (first.state, first.attempts),
        (FiringState::Delivered { at_ms: T0 + 1 }, 1)
    );
    // Delivered is final: a late failure, dead-lettering or second delivery
    // changes nothing.
    assert!(
        store
            .record_failure(&stored[0].1, "late")
            .unwrap()
            .is_none()
    );
    store
        .mark_dead_lettered(std::slice::from_ref(&stored[0].1), T0 + 2)
        .unwrap();
    store
        .mark_delivered_seqs(std::slice::from_ref(&stored[0]), T0 + 3)
        .unwrap();
    let first = store.firing(&stored[0].1).unwrap().unwrap();
    assert_eq!(
        (first.state, first.attempts, first.last_error),
        (FiringState::Delivered { at_ms: T0 + 1 }, 1, None)
    );
    // The others are still pending, listed by subscription with their state.
    let states: Vec<FiringState> = store
        .firings_for("s", 10)
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        vec![
            FiringState::Pending,
            FiringState::Pending,
            FiringState::Delivered { at_ms: T0 + 1 }
        ]
    );
}
