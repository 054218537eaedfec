//! Dedup retention (entries expire by time, and go with their instances);
//! opening checks.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::*;
use signalbox_store::{OpenError, Store, StoreOptions};

#[test]
fn dedup_entry_expires_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open_with_retention(&path, Duration::from_secs(24 * 60 * 60));
    ingest_firing(
        &store,
        vec![incoming("a", "x", T0), incoming("a", "y", T0 + DAY_MS / 2)],
        "s",
    );

    // Inside the retention: a duplicate, carrying the first seq.
    let out = store
        .ingest(vec![incoming("a", "x", T0 + 10)], &mut no_plan())
        .unwrap();
    assert_eq!(seq_of(&out[0]), (true, 1));

    // A day later "x" has expired, "y" has not (across a reopen).
    drop(store);
    let store = open_with_retention(&path, Duration::from_secs(24 * 60 * 60));
    let out = ingest_firing(
        &store,
        vec![
            incoming("a", "x", T0 + DAY_MS),
            incoming("a", "y", T0 + DAY_MS),
        ],
        "s",
    );
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(false, 3), (true, 2)]
    );
    // The firing id hashes `name/id#seq`, so the re-accepted instance (a new
    // seq) is a new firing, not swallowed by the first one's.
    match &out[0] {
        signalbox_store::IngestOutcome::Stored { firings, .. } => assert_eq!(firings.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.pending(10).unwrap().len(), 3);
    assert_eq!(store.signal_by_id("a", "x").unwrap().unwrap().seq, 3);
    // Both instances are still stored; the id row points at the newer one.
    assert_eq!(store.signal("a", 1).unwrap().unwrap().id, "x");
    assert_eq!(store.stats().unwrap().signal_ids, 2);
}

#[test]
fn a_replaced_entry_is_the_new_dedup_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_retention(&db_path(&dir), Duration::from_secs(60));
    store
        .ingest(vec![incoming("a", "x", T0)], &mut no_plan())
        .unwrap();
    let out = store
        .ingest(
            vec![
                incoming("a", "x", T0 + 60_000),
                incoming("a", "x", T0 + 60_001),
            ],
            &mut no_plan(),
        )
        .unwrap();
    // Expired at T0 + 60 s, so stored anew; the next one, in the same batch,
    // is a duplicate of that new instance, not of the first.
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(false, 2), (true, 2)]
    );
    assert_eq!(store.stats().unwrap().signal_ids, 1);
    assert_eq!(store.signal_by_id("a", "x").unwrap().unwrap().seq, 2);
}

#[test]
fn history_is_kept_as_long_as_a_dedup_entry_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_retention(&db_path(&dir), Duration::from_secs(24 * 60 * 60));
    ingest_firing(&store, vec![incoming("a", "x", T0)], "s");

    // An hour of history asked for, but the dedup retention is a day: the
    // instance and its id row stay while the entry is live ...
    let removed = store.compact_history(T0 + DAY_MS - 1, 3_600_000).unwrap();
    assert_eq!(removed.signals, 0, "{removed:?}");
    let out = store
        .ingest(vec![incoming("a", "x", T0 + DAY_MS - 1)], &mut no_plan())
        .unwrap();
    assert_eq!(seq_of(&out[0]), (true, 1));

    // ... and go when it has expired.
    let removed = store.compact_history(T0 + DAY_MS + 1, 3_600_000).unwrap();
    assert_eq!(removed.signals, 1, "{removed:?}");
    assert_eq!(store.stats().unwrap().signal_ids, 0);
    assert!(store.signal_by_id("a", "x").unwrap().is_none());
    let out = store
        .ingest(vec![incoming("a", "x", T0 + DAY_MS + 2)], &mut no_plan())
        .unwrap();
    assert_eq!(seq_of(&out[0]), (false, 2));
}

#[test]
fn default_retention_is_seven_days() {
    assert_eq!(
        StoreOptions::default().dedup_retention,
        Duration::from_secs(7 * 24 * 60 * 60)
    );
}

#[test]
fn open_twice_in_one_process_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let _store = open(&path);
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Database { .. }), "{err}");
    assert!(err.to_string().contains("node.redb"), "{err}");
}

#[test]
fn not_a_redb_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::write(
        &path,
        b"this is not a database, just some text of some length",
    )
    .unwrap();
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Database { .. }), "{err}");
}

#[test]
fn stats_report_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    assert!(store.stats().unwrap().file_bytes > 0);
}
