//! Opening a schema-version-1 file: `dedup` is folded into `signal_ids` once,
//! and every dedup answer stays what it was.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use redb::{Database, ReadableDatabase, TableDefinition};
use signalbox_store::{OpenError, SCHEMA_VERSION, Store, StoreOptions};

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
