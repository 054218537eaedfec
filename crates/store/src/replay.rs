//! Replay: applying a changelog entry ([`ChangeSet`]) to a store, as a new
//! owner of a partition does to rebuild its state from the log.
//!
//! [`Store::apply`] runs one redb write transaction: each change is decoded
//! with its table's own redb types (after `wire` checked the bytes, so junk
//! is an error, never a panic) and applied; `meta["changelog_seq"]` is set to
//! the entry's position; the transaction is committed with the store's
//! configured durability. No sink is called and nothing is recorded.
//!
//! Invariants:
//! - an entry at or below the store's `changelog_seq` is skipped (`Ok`, nothing
//!   written), so replaying a log from any earlier point is harmless;
//! - an entry is applied whole or not at all: an unknown table id, bytes that
//!   do not decode, or an op that does not fit the table's kind fails the
//!   whole entry, naming the position, the change and the table;
//! - changes to one table are applied in their recorded order. Changes to
//!   different tables commute, so the entry is applied table by table (each
//!   table opened once), which gives the same state as the recorded order;
//! - entries written by schema-2 stores stay replayable: their changes to the
//!   retired multimap `signal_firings` (id 7) are applied to the table that
//!   replaced it, `signal_firing_links`, pair by pair ([`apply_legacy_links`]).

use redb::{Key, ReadableTable, WriteTransaction};

use crate::change_set::{ChangeOp, ChangeSet};
use crate::error::{ApplyError, AtTable, TableFailure};
use crate::store::Store;
use crate::tables::{self, Def, MultiDef, names, with_table};
use crate::wire::Wire;

impl Store {
    /// Applies `changes`, the changelog entry at `position`, in one
    /// transaction (module docs); a no-op for `position <= changelog_seq`.
    pub fn apply(&self, changes: &ChangeSet, position: u64) -> Result<(), ApplyError> {
        let mut txn = self.db.begin_write().map_err(ApplyError::Transaction)?;
        txn.set_durability(self.configured_durability())
            .map_err(ApplyError::Durability)?;
        {
            let meta = txn
                .open_table(tables::META.def)
                .map_err(|e| ApplyError::table(names::META, e))?;
            let current = meta
                .get(tables::META_CHANGELOG_SEQ)
                .at::<ApplyError>(names::META)?
                .map_or(0, |g| g.value());
            if position <= current {
                drop(meta);
                txn.abort().at::<ApplyError>(names::META)?;
                return Ok(());
            }
            let mut present: u32 = 0;
            for (index, change) in changes.iter().enumerate() {
                if tables::name_of(change.table).is_none()
                    && change.table != tables::ids::LEGACY_SIGNAL_FIRINGS
                {
                    return Err(ApplyError::UnknownTable {
                        position,
                        index,
                        table: change.table,
                    });
                }
                present |= 1 << change.table;
            }
            // `meta` itself may be among the tables written: close it first.
            drop(meta);
            for (id, _, _) in tables::ALL {
                if present & (1 << id) != 0 {
                    with_table!(
                        id,
                        apply_table,
                        apply_multimap,
                        (&txn, changes, position),
                        unreachable_table(id, position)
                    )?;
                }
            }
            if present & (1 << tables::ids::LEGACY_SIGNAL_FIRINGS) != 0 {
                apply_legacy_links(&txn, changes, position)?;
            }
            let mut meta = txn
                .open_table(tables::META.def)
                .map_err(|e| ApplyError::table(names::META, e))?;
            meta.insert(tables::META_CHANGELOG_SEQ, position)
                .at::<ApplyError>(names::META)?;
        }
        txn.commit().map_err(ApplyError::Commit)?;
        self.applied_up_to(position);
        Ok(())
    }
}

/// `with_table!`'s fallback; not reached, since unknown ids were refused first.
fn unreachable_table(id: u8, position: u64) -> Result<(), ApplyError> {
    Err(ApplyError::UnknownTable {
        position,
        index: 0,
        table: id,
    })
}

/// Applies the changes of `changes` that belong to the plain table `def`.
fn apply_table<K: Key + Wire + 'static, V: Wire + 'static>(
    txn: &WriteTransaction,
    changes: &ChangeSet,
    position: u64,
    def: Def<K, V>,
) -> Result<(), ApplyError> {
    let mut table = txn
        .open_table(def.def)
        .map_err(|e| ApplyError::table(def.name, e))?;
    for (index, change) in changes.iter().enumerate() {
        if change.table != def.id {
            continue;
        }
        let bad = |reason: String| ApplyError::BadChange {
            position,
            index,
            table: def.name,
            reason,
        };
        let value = match (change.op, change.value) {
            (ChangeOp::Insert, Some(value)) => Some(value),
            (ChangeOp::Remove, None) => None,
            (op, _) => return Err(bad(format!("{op:?} does not apply to a plain table"))),
        };
        K::check(change.key).map_err(|r| bad(format!("key: {r}")))?;
        let key = K::from_bytes(change.key);
        match value {
            Some(value) => {
                V::check(value).map_err(|r| bad(format!("value: {r}")))?;
                table
                    .insert(key, V::from_bytes(value))
                    .at::<ApplyError>(def.name)?;
            }
            None => {
                table.remove(key).at::<ApplyError>(def.name)?;
            }
        }
    }
    Ok(())
}

/// Applies the changes of `changes` that belong to the multimap table `def`.
fn apply_multimap<K: Key + Wire + 'static, V: Key + Wire + 'static>(
    txn: &WriteTransaction,
    changes: &ChangeSet,
    position: u64,
    def: MultiDef<K, V>,
) -> Result<(), ApplyError> {
    let mut table = txn
        .open_multimap_table(def.def)
        .map_err(|e| ApplyError::table(def.name, e))?;
    for (index, change) in changes.iter().enumerate() {
        if change.table != def.id {
            continue;
        }
        let bad = |reason: String| ApplyError::BadChange {
            position,
            index,
            table: def.name,
            reason,
        };
        if !matches!(
            (change.op, change.value),
            (ChangeOp::Insert | ChangeOp::RemoveValue, Some(_)) | (ChangeOp::RemoveAll, None)
        ) {
            return Err(bad(format!(
                "{:?} does not apply to a multimap table",
                change.op
            )));
        }
        K::check(change.key).map_err(|r| bad(format!("key: {r}")))?;
        let key = K::from_bytes(change.key);
        let value = match change.value {
            Some(value) => {
                V::check(value).map_err(|r| bad(format!("value: {r}")))?;
                Some(V::from_bytes(value))
            }
            None => None,
        };
        match (change.op, value) {
            (ChangeOp::Insert, Some(value)) => {
                table.insert(key, value).at::<ApplyError>(def.name)?;
            }
            (ChangeOp::RemoveValue, Some(value)) => {
                table.remove(key, value).at::<ApplyError>(def.name)?;
            }
            _ => {
                table.remove_all(key).at::<ApplyError>(def.name)?;
            }
        }
    }
    Ok(())
}

/// Applies the changes of a schema-2 entry to the retired multimap
/// `signal_firings` (`(name, seq) ->> firing_id`) to `signal_firing_links`
/// (`(name, seq, firing_id) -> ()`): an inserted or removed pair is that
/// row; removing a key's whole set removes every row under `(name, seq)`.
fn apply_legacy_links(
    txn: &WriteTransaction,
    changes: &ChangeSet,
    position: u64,
) -> Result<(), ApplyError> {
    let def = tables::SIGNAL_FIRINGS;
    let mut table = txn
        .open_table(def.def)
        .map_err(|e| ApplyError::table(def.name, e))?;
    for (index, change) in changes.iter().enumerate() {
        if change.table != tables::ids::LEGACY_SIGNAL_FIRINGS {
            continue;
        }
        let bad = |reason: String| ApplyError::BadChange {
            position,
            index,
            table: tables::names::LEGACY_SIGNAL_FIRINGS,
            reason,
        };
        <(&str, u64)>::check(change.key).map_err(|r| bad(format!("key: {r}")))?;
        let (name, seq) = <(&str, u64) as redb::Value>::from_bytes(change.key);
        let fid = match change.value {
            Some(value) => {
                <&str>::check(value).map_err(|r| bad(format!("value: {r}")))?;
                Some(<&str as redb::Value>::from_bytes(value))
            }
            None => None,
        };
        match (change.op, fid) {
            (ChangeOp::Insert, Some(fid)) => {
                table
                    .insert((name, seq, fid), ())
                    .at::<ApplyError>(def.name)?;
            }
            (ChangeOp::RemoveValue, Some(fid)) => {
                table.remove((name, seq, fid)).at::<ApplyError>(def.name)?;
            }
            (ChangeOp::RemoveAll, None) => {
                let fids = tables::linked_firings::<ApplyError>(&table, name, seq)?;
                for fid in fids {
                    table
                        .remove((name, seq, fid.as_str()))
                        .at::<ApplyError>(def.name)?;
                }
            }
            (op, _) => {
                return Err(bad(format!("{op:?} does not apply to a multimap table")));
            }
        }
    }
    Ok(())
}

/// Every row of every table as redb's bytes: `(table id, key) -> values`
/// (one value for a plain table, the sorted set for a multimap). Two stores
/// with equal dumps hold the same state, byte for byte.
#[cfg(test)]
pub(crate) type Dump = std::collections::BTreeMap<(u8, Vec<u8>), Vec<Vec<u8>>>;

#[cfg(test)]
impl Store {
    /// The whole store as a [`Dump`].
    pub(crate) fn dump(&self) -> Dump {
        use redb::ReadableDatabase;

        fn table<K: Key + 'static, V: redb::Value + 'static>(
            txn: &redb::ReadTransaction,
            out: &mut Dump,
            def: Def<K, V>,
        ) {
            let table = txn.open_table(def.def).expect("open");
            for row in table.iter().expect("iter") {
                let (k, v) = row.expect("row");
                let key = K::as_bytes(&k.value()).as_ref().to_vec();
                let value = V::as_bytes(&v.value()).as_ref().to_vec();
                out.insert((def.id, key), vec![value]);
            }
        }

        fn multimap<K: Key + 'static, V: Key + 'static>(
            txn: &redb::ReadTransaction,
            out: &mut Dump,
            def: MultiDef<K, V>,
        ) {
            use redb::ReadableMultimapTable;
            let table = txn.open_multimap_table(def.def).expect("open");
            for row in table.iter().expect("iter") {
                let (k, values) = row.expect("row");
                let key = K::as_bytes(&k.value()).as_ref().to_vec();
                let values: Vec<Vec<u8>> = values
                    .map(|v| V::as_bytes(&v.expect("value").value()).as_ref().to_vec())
                    .collect();
                out.insert((def.id, key), values);
            }
        }

        let txn = self.db.begin_read().expect("read");
        let mut out = Dump::new();
        for (id, _, _) in tables::ALL {
            with_table!(
                id,
                table,
                multimap,
                (&txn, &mut out),
                panic!("table id {id}")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
