//! Opening older files. Schema 1: `dedup` is folded into `signal_ids` once,
//! and every dedup answer stays what it was. Schema 2: delivered firings keep
//! the state in their rows, pending ones are delivered the schema-3 way.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use redb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition};
use signalbox_store::{FiringState, OpenError, SCHEMA_VERSION, Store, StoreOptions};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SIGNAL_SEQ: TableDefinition<&str, u64> = TableDefinition::new("signal_seq");
const V1_SIGNAL_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("signal_ids");
const V1_DEDUP: TableDefinition<(&str, &str), (u64, i64)> = TableDefinition::new("dedup");
const V1_DEDUP_BY_TIME: TableDefinition<(i64, &str, &str), ()> =
    TableDefinition::new("dedup_by_time");

/// Writes a v1 file by hand: five instances of `a` were stored; "live" (seq 1)
/// has its dedup entry; "expired" (seq 2) had its entry compacted; "gone"
/// (seq 5) lost its id row to history retention while its entry lives on.
fn write_v1(path: &Path) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("schema_version", 1).unwrap();
        meta.insert("firing_seq", 0).unwrap();
        txn.open_table(SIGNAL_SEQ).unwrap().insert("a", 5).unwrap();
        let mut ids = txn.open_table(V1_SIGNAL_IDS).unwrap();
        ids.insert(("a", "live"), 1).unwrap();
        ids.insert(("a", "expired"), 2).unwrap();
        let mut dedup = txn.open_table(V1_DEDUP).unwrap();
        dedup.insert(("a", "live"), (1, T0)).unwrap();
        dedup.insert(("a", "gone"), (5, T0)).unwrap();
        let mut by_time = txn.open_table(V1_DEDUP_BY_TIME).unwrap();
        by_time.insert((T0, "a", "live"), ()).unwrap();
        by_time.insert((T0, "a", "gone"), ()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_v1_file_is_migrated_and_keeps_its_dedup_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    write_v1(&path);

    let store = open_with_retention(&path, Duration::from_secs(24 * 60 * 60));
    assert_eq!(store.stats().unwrap().signal_ids, 3);
    let out = store
        .ingest(
            vec![
                incoming("a", "live", T0 + 10),
                incoming("a", "expired", T0 + 10),
                incoming("a", "gone", T0 + 10),
            ],
            &mut no_plan(),
        )
        .unwrap();
    assert_eq!(
        out.iter().map(seq_of).collect::<Vec<_>>(),
        vec![(true, 1), (false, 6), (true, 5)]
    );
    drop(store);

    // The old tables are gone and the version is written: a second open does
    // not migrate again, and the answers hold.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(V1_DEDUP).is_err());
        assert!(txn.open_table(V1_DEDUP_BY_TIME).is_err());
        let meta = txn.open_table(META).unwrap();
        let version = meta.get("schema_version").unwrap().unwrap().value();
        assert_eq!(version, SCHEMA_VERSION);
    }
    let store = open_with_retention(&path, Duration::from_secs(24 * 60 * 60));
    let out = store
        .ingest(vec![incoming("a", "expired", T0 + 20)], &mut no_plan())
        .unwrap();
    assert_eq!(seq_of(&out[0]), (true, 6));
    assert_eq!(store.stats().unwrap().signal_ids, 3);
}

#[test]
fn a_newer_schema_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, OpenError::SchemaMismatch { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("schema version"), "{err}");
}

/// A schema-2 store marked a firing delivered by rewriting its row (state
/// `delivered`, attempts counted) and removing its outbox row, had no
/// `delivered` table, and kept lineage links in the multimap
/// `signal_firings`: after the open migrates the file to 3, such rows read
/// as they are, the links are where lineage finds them, and pending firings
/// are delivered the new way.
#[test]
fn a_v2_file_keeps_its_delivered_rows_and_delivers_the_pending_ones() {
    const FIRINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("firings");
    const OUTBOX: TableDefinition<u64, &str> = TableDefinition::new("outbox");
    const DELIVERED: TableDefinition<u64, i64> = TableDefinition::new("delivered");
    const LINKS: TableDefinition<(&str, u64, &str), ()> =
        TableDefinition::new("signal_firing_links");
    const V2_SIGNAL_FIRINGS: MultimapTableDefinition<(&str, u64), &str> =
        MultimapTableDefinition::new("signal_firings");
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let ids = fired(ingest_firing(
        &open(&path),
        vec![incoming("a", "1", T0), incoming("a", "2", T0)],
        "s",
    ));
    assert_eq!(ids.len(), 2);
    // Turn the file into what schema 2 left after delivering the first.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 2)
            .unwrap();
        {
            let mut firings = txn.open_table(FIRINGS).unwrap();
            let old = firings
                .get(ids[0].1.as_str())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let text = String::from_utf8(old).unwrap();
            let delivered = text
                .replace(
                    r#""state":{"state":"pending"}"#,
                    &format!(r#""state":{{"state":"delivered","at_ms":{}}}"#, T0 + 3),
                )
                .replace(r#""attempts":0"#, r#""attempts":1"#);
            assert_ne!(delivered, text, "the row's encoding changed: {text}");
            firings
                .insert(ids[0].1.as_str(), delivered.as_bytes())
                .unwrap();
            txn.open_table(OUTBOX).unwrap().remove(ids[0].0).unwrap();
        }
        txn.delete_table(DELIVERED).unwrap();
        let links: Vec<(String, u64, String)> = txn
            .open_table(LINKS)
            .unwrap()
            .iter()
            .unwrap()
            .map(|row| {
                let (k, _) = row.unwrap();
                let (name, seq, fid) = k.value();
                (name.to_string(), seq, fid.to_string())
            })
            .collect();
        assert_eq!(links.len(), 2);
        txn.delete_table(LINKS).unwrap();
        let mut old = txn.open_multimap_table(V2_SIGNAL_FIRINGS).unwrap();
        for (name, seq, fid) in &links {
            old.insert((name.as_str(), *seq), fid.as_str()).unwrap();
        }
        drop(old);
        txn.commit().unwrap();
    }
    let store = open(&path);
    let first = store.firing(&ids[0].1).unwrap().unwrap();
    assert_eq!(
        (first.state, first.attempts),
        (FiringState::Delivered { at_ms: T0 + 3 }, 1)
    );
    let second = store.firing(&ids[1].1).unwrap().unwrap();
    assert_eq!((second.state, second.attempts), (FiringState::Pending, 0));
    for (seq, (_, fid)) in [1, 2].into_iter().zip(&ids) {
        let fed: Vec<String> = store
            .firings_of_signal("a", seq)
            .unwrap()
            .into_iter()
            .map(|r| r.firing.firing_id)
            .collect();
        assert_eq!(fed, vec![fid.clone()], "lineage of a/{seq}");
    }
    assert_eq!(store.matches_of_signal("a", 1).unwrap(), vec!["s"]);
    store
        .mark_delivered_seqs(std::slice::from_ref(&ids[1]), T0 + 5)
        .unwrap();
    let second = store.firing(&ids[1].1).unwrap().unwrap();
    assert_eq!(
        (second.state, second.attempts),
        (FiringState::Delivered { at_ms: T0 + 5 }, 1)
    );
    assert!(store.pending(10).unwrap().is_empty());
    drop(store);
    let db = Database::create(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(txn.open_multimap_table(V2_SIGNAL_FIRINGS).is_err());
    let version = txn
        .open_table(META)
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(version, SCHEMA_VERSION);
}
