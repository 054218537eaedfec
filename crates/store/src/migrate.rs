//! Schema migrations, run by [`Store::open`](crate::Store::open) inside its
//! setup transaction, so a file is either fully migrated or untouched.
//!
//! Version 1 → 2: the `dedup` table (with its time index `dedup_by_time`) is
//! folded into `signal_ids`, whose value becomes `(seq, received_at_ms)`; the
//! row is both the lookup by producer id and the dedup entry. A v1 id row whose
//! dedup entry was already compacted (or belongs to an older instance) gets
//! `received_at_ms = i64::MIN`: never live, as it was not live before. A dedup
//! entry without an id row (its instance deleted by history retention first)
//! keeps its seq and time, so it stays a live dedup entry until it expires.
//! The rows are copied through memory (about 100 bytes per id), once.
//!
//! Version 2 → 3: the multimap `signal_firings` (`(name, seq) ->> firing
//! id`) becomes the plain table `signal_firing_links` (`(name, seq, firing
//! id) -> ()`, [`v2_to_v3`]), and the `delivered` table is added (created
//! empty by `Store::open`, like every table); rows that a schema-2 store
//! marked delivered keep their state (`outbox` module docs).

use redb::{
    MultimapTableDefinition, ReadableMultimapTable, ReadableTable, TableDefinition,
    WriteTransaction,
};

use crate::error::{AtTable, MigrateFailure, TableFailure};
use crate::tables::{self, names};

/// Opens `def` in the setup transaction. Migrations write the raw redb
/// transaction: they are not part of any changelog (every store migrates its
/// own file when it is opened).
fn open<'t, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &'t WriteTransaction,
    def: TableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<redb::Table<'t, K, V>, MigrateFailure> {
    txn.open_table(def)
        .map_err(|e| MigrateFailure::table(name, e))
}

/// v1 `dedup`'s name.
const DEDUP: &str = "dedup";
/// v1 `dedup_by_time`'s name.
const DEDUP_BY_TIME: &str = "dedup_by_time";
/// v1 `signal_ids`: `(name, id) -> seq`.
const V1_SIGNAL_IDS: TableDefinition<(&str, &str), u64> = TableDefinition::new(names::SIGNAL_IDS);
/// v1 `dedup`: `(name, id) -> (seq, received_at_ms)`.
const V1_DEDUP: TableDefinition<(&str, &str), (u64, i64)> = TableDefinition::new(DEDUP);
/// v1 `dedup_by_time`: `(received_at_ms, name, id) -> ()`.
const V1_DEDUP_BY_TIME: TableDefinition<(i64, &str, &str), ()> =
    TableDefinition::new(DEDUP_BY_TIME);

/// Migrates a version-1 file to version 2 inside `txn`; returns the number of
/// `signal_ids` rows written. The caller writes the new schema version.
pub(crate) fn v1_to_v2(txn: &WriteTransaction) -> Result<usize, MigrateFailure> {
    let mut rows: Vec<(String, String, u64, i64)> = Vec::new();
    {
        let ids = open(txn, V1_SIGNAL_IDS, names::SIGNAL_IDS)?;
        let dedup = open(txn, V1_DEDUP, DEDUP)?;
        for row in ids.iter().at::<MigrateFailure>(names::SIGNAL_IDS)? {
            let (k, v) = row.at::<MigrateFailure>(names::SIGNAL_IDS)?;
            let (name, id) = k.value();
            let seq = v.value();
            let at = dedup
                .get((name, id))
                .at::<MigrateFailure>(DEDUP)?
                .map(|g| g.value())
                .filter(|(dedup_seq, _)| *dedup_seq == seq)
                .map_or(i64::MIN, |(_, at)| at);
            rows.push((name.to_string(), id.to_string(), seq, at));
        }
        for row in dedup.iter().at::<MigrateFailure>(DEDUP)? {
            let (k, v) = row.at::<MigrateFailure>(DEDUP)?;
            let (name, id) = k.value();
            if ids
                .get((name, id))
                .at::<MigrateFailure>(names::SIGNAL_IDS)?
                .is_none()
            {
                let (seq, at) = v.value();
                rows.push((name.to_string(), id.to_string(), seq, at));
            }
        }
    }
    txn.delete_table(V1_SIGNAL_IDS)
        .map_err(|e| MigrateFailure::table(names::SIGNAL_IDS, e))?;
    txn.delete_table(V1_DEDUP)
        .map_err(|e| MigrateFailure::table(DEDUP, e))?;
    txn.delete_table(V1_DEDUP_BY_TIME)
        .map_err(|e| MigrateFailure::table(DEDUP_BY_TIME, e))?;
    let mut ids = open(txn, tables::SIGNAL_IDS.def, names::SIGNAL_IDS)?;
    for (name, id, seq, at) in &rows {
        ids.insert((name.as_str(), id.as_str()), (*seq, *at))
            .at::<MigrateFailure>(names::SIGNAL_IDS)?;
    }
    Ok(rows.len())
}

/// v2 `signal_firings`' name.
const V2_SIGNAL_FIRINGS_NAME: &str = "signal_firings";
/// v2 `signal_firings`: `(name, seq) ->> firing_id`.
const V2_SIGNAL_FIRINGS: MultimapTableDefinition<(&str, u64), &str> =
    MultimapTableDefinition::new(V2_SIGNAL_FIRINGS_NAME);

/// Migrates a version-2 file to version 3 inside `txn`: copies every
/// `signal_firings` pair into `signal_firing_links` and drops the multimap;
/// returns the number of links. The caller writes the new schema version.
pub(crate) fn v2_to_v3(txn: &WriteTransaction) -> Result<usize, MigrateFailure> {
    let mut links: Vec<(String, u64, String)> = Vec::new();
    {
        let old = txn
            .open_multimap_table(V2_SIGNAL_FIRINGS)
            .map_err(|e| MigrateFailure::table(V2_SIGNAL_FIRINGS_NAME, e))?;
        for row in old.iter().at::<MigrateFailure>(V2_SIGNAL_FIRINGS_NAME)? {
            let (k, values) = row.at::<MigrateFailure>(V2_SIGNAL_FIRINGS_NAME)?;
            let (name, seq) = k.value();
            for v in values {
                let fid = v.at::<MigrateFailure>(V2_SIGNAL_FIRINGS_NAME)?;
                links.push((name.to_string(), seq, fid.value().to_string()));
            }
        }
    }
    txn.delete_multimap_table(V2_SIGNAL_FIRINGS)
        .map_err(|e| MigrateFailure::table(V2_SIGNAL_FIRINGS_NAME, e))?;
    let mut new = open(txn, tables::SIGNAL_FIRINGS.def, names::SIGNAL_FIRINGS)?;
    for (name, seq, fid) in &links {
        new.insert((name.as_str(), *seq, fid.as_str()), ())
            .at::<MigrateFailure>(names::SIGNAL_FIRINGS)?;
    }
    Ok(links.len())
}
