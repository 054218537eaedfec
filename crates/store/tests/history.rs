//! History retention: old instances, delivered firings and their lineage go;
//! pending firings and seq counters stay.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use signalbox_store::FiringState;

#[test]
fn history_past_retention_is_removed_and_pending_work_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // Dedup retention no longer than the history kept below (it would raise it).
    let store = open_with_retention(&db_path(&dir), std::time::Duration::from_secs(3600));
    ingest_firing(
        &store,
        vec![incoming("a", "old-1", T0), incoming("a", "old-2", T0 + 1)],
        "s",
    );
    ingest_firing(&store, vec![incoming("a", "new", T0 + DAY_MS)], "s");
    // Deliver the first old firing; leave the second pending.
    let old = store.firings_for("s", 10).unwrap();
    let oldest = old.iter().min_by_key(|r| r.firing_seq).unwrap();
    store
        .mark_delivered(std::slice::from_ref(&oldest.firing.firing_id), T0 + 5)
        .unwrap();
    let before = store.stats().unwrap();
    assert_eq!(before.signals, 3);

    // Keep one hour of history, as seen a day after T0.
    let removed = store.compact_history(T0 + DAY_MS, 3_600_000).unwrap();
    assert_eq!(removed.signals, 2, "{removed:?}");
    assert_eq!(
        removed.firings, 1,
        "only the delivered old firing: {removed:?}"
    );
    assert!(store.signal("a", 1).unwrap().is_none());
    assert!(store.signal("a", 3).unwrap().is_some());
    assert!(
        store.firings_of_signal("a", 1).unwrap().is_empty(),
        "lineage rows go too"
    );
    let left = store.firings_for("s", 10).unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().any(|r| r.state == FiringState::Pending));
    assert_eq!(
        store.pending(10).unwrap().len(),
        2,
        "pending work is never dropped"
    );

    // Seqs continue after the old instances are gone.
    let out = store
        .ingest(
            vec![incoming("a", "later", T0 + DAY_MS + 1)],
            &mut no_plan(),
        )
        .unwrap();
    assert_eq!(seq_of(&out[0]), (false, 4));
    // A second pass finds nothing more to do.
    let again = store.compact_history(T0 + DAY_MS, 3_600_000).unwrap();
    assert_eq!(again.signals + again.firings, 0);
}

#[test]
fn a_firing_deleted_before_its_signal_leaves_the_signals_match_list_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_retention(&db_path(&dir), std::time::Duration::from_secs(3600));
    // The firing's creation time is older than its signal's receive time (in a
    // group they come from different clocks), so retention reaches it first.
    let fired = fired(
        store
            .ingest(
                vec![incoming("a", "1", T0 + DAY_MS - 1_000)],
                &mut |inst, ctx| {
                    ctx.record_match(inst, "s");
                    ctx.record_match(inst, "quiet");
                    let mut f = firing("s", inst);
                    f.created_at_ms = T0;
                    vec![f]
                },
            )
            .unwrap(),
    );
    store.mark_delivered_seqs(&fired, T0 + 1).unwrap();
    assert_eq!(store.matches_of_signal("a", 1).unwrap(), vec!["quiet", "s"]);
    let removed = store.compact_history(T0 + DAY_MS, 3_600_000).unwrap();
    assert_eq!((removed.signals, removed.firings), (0, 1), "{removed:?}");
    assert_eq!(store.matches_of_signal("a", 1).unwrap(), vec!["quiet"]);
    assert!(store.firings_of_signal("a", 1).unwrap().is_empty());
}
