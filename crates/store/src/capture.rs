//! Change capture: the store's write transaction and its table handles, which
//! record every write they make, and the commit protocol with a changelog sink.
//!
//! Every write transaction of the store is a [`WriteTxn`]; its tables are opened
//! through `tables::write` / `tables::write_multimap`, which return a
//! [`WriteTable`] or a [`WriteMultimap`]. Those expose `insert` / `remove` /
//! `remove_all`, which write to redb and record the change (table id, redb's
//! own key and value bytes: `Key::as_bytes` / `Value::as_bytes`), and deref to
//! the redb table for reads only (`Deref`, never `DerefMut`). The raw redb
//! transaction never leaves this module, so a write that bypasses recording
//! does not compile. Only the setup transaction of `Store::open` (schema
//! creation and migrations) writes without recording.
//!
//! Invariants:
//! - recording happens only when a sink was set when the transaction began
//!   (`Store::set_changelog`); without one a handle holds `None` and a write
//!   costs one branch more than redb's own: no allocation, no copy;
//! - a change is recorded after redb accepted the write, and only if it changed
//!   something that a replay could observe: a `remove` of an absent key, a
//!   multimap `insert` of a pair already present, a multimap `remove` of an
//!   absent pair and a `remove_all` of an empty key are not recorded (a plain
//!   `insert` always is, even of the same value);
//! - [`WriteTxn::commit`] calls the sink with the recorded changes BEFORE the
//!   redb commit, and only if there are any. On `Ok(position)` it writes
//!   `meta["changelog_seq"] = position` (not recorded) in the same transaction
//!   and commits; on `Err` it returns the family's `Changelog` error without
//!   committing, so the dropped transaction is rolled back and nothing of it is
//!   stored. The log, not the local file, is the source of truth;
//! - if the sink accepted a change set but the local commit then failed, the
//!   store remembers that position: every later transaction that recorded
//!   changes fails with [`ChangelogError::Behind`] until `Store::apply` has
//!   applied the log up to it (a store that missed an entry of its own log must
//!   not write the next one).

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

use redb::{AccessGuard, Key, MultimapTable, MultimapValue, Table, Value, WriteTransaction};

use crate::change_set::{ChangeOp, ChangeSet};
use crate::error::{AtTable, ChangelogError, TableFailure, WriteFailure};
use crate::sink::{ChangeSink, Unapplied};
use crate::tables::{self, Def, MultiDef, names};

/// A write transaction of the store, recording its changes when a sink is set.
pub(crate) struct WriteTxn<'s> {
    txn: WriteTransaction,
    capture: Option<Capture>,
    unapplied: &'s Unapplied,
}

/// The sink a transaction commits through and what it has recorded so far.
struct Capture {
    sink: Arc<dyn ChangeSink>,
    changes: RefCell<ChangeSet>,
}

impl<'s> WriteTxn<'s> {
    /// Wraps `txn`; records changes iff `sink` is `Some`.
    pub(crate) fn new(
        unapplied: &'s Unapplied,
        txn: WriteTransaction,
        sink: Option<Arc<dyn ChangeSink>>,
    ) -> Self {
        WriteTxn {
            txn,
            capture: sink.map(|sink| Capture {
                sink,
                changes: RefCell::new(ChangeSet::new()),
            }),
            unapplied,
        }
    }

    fn log(&self) -> Option<&RefCell<ChangeSet>> {
        self.capture.as_ref().map(|c| &c.changes)
    }

    /// Opens `def` for writing (see [`write`]).
    pub(crate) fn table<E: TableFailure, K: Key + 'static, V: Value + 'static>(
        &self,
        def: Def<K, V>,
    ) -> Result<WriteTable<'_, K, V>, E> {
        let table = self
            .txn
            .open_table(def.def)
            .map_err(|e| E::table(def.name, e))?;
        Ok(WriteTable {
            table,
            id: def.id,
            log: self.log(),
        })
    }

    /// Opens the multimap `def` for writing (see [`write_multimap`]).
    pub(crate) fn multimap<E: TableFailure, K: Key + 'static, V: Key + 'static>(
        &self,
        def: MultiDef<K, V>,
    ) -> Result<WriteMultimap<'_, K, V>, E> {
        let table = self
            .txn
            .open_multimap_table(def.def)
            .map_err(|e| E::table(def.name, e))?;
        Ok(WriteMultimap {
            table,
            id: def.id,
            log: self.log(),
        })
    }

    /// Whether this transaction records its changes (a sink was set when it
    /// began).
    #[cfg(test)]
    pub(crate) fn records(&self) -> bool {
        self.capture.is_some()
    }

    /// Commits: through the sink first when anything was recorded (module
    /// docs), then redb. An `Err` means nothing of the transaction was stored.
    pub(crate) fn commit<E: WriteFailure>(self) -> Result<(), E> {
        let WriteTxn {
            txn,
            capture,
            unapplied,
        } = self;
        if let Some(Capture { sink, changes }) = capture {
            let changes = changes.into_inner();
            if !changes.is_empty() {
                if let Some(position) = unapplied.position() {
                    return Err(E::changelog(ChangelogError::Behind { position }));
                }
                let position = sink.commit(&changes).map_err(E::changelog)?;
                let local = (|| {
                    let mut meta = txn
                        .open_table(tables::META.def)
                        .map_err(|e| E::table(names::META, e))?;
                    meta.insert(tables::META_CHANGELOG_SEQ, position)
                        .at::<E>(names::META)?;
                    drop(meta);
                    txn.commit().map_err(E::commit)
                })();
                if local.is_err() {
                    unapplied.set(position);
                    tracing::error!(
                        position,
                        "the changelog accepted a transaction that the store failed to commit; \
                         writes are refused until the log is applied up to it"
                    );
                }
                return local;
            }
        }
        txn.commit().map_err(E::commit)
    }

    /// Rolls back (for a transaction that found nothing to write).
    pub(crate) fn abort<E: TableFailure>(self, table: &'static str) -> Result<(), E> {
        self.txn.abort().at::<E>(table)
    }
}

/// A plain table opened for writing: writes record themselves; reads go
/// through `Deref` to the redb table.
pub(crate) struct WriteTable<'t, K: Key + 'static, V: Value + 'static> {
    table: Table<'t, K, V>,
    id: u8,
    log: Option<&'t RefCell<ChangeSet>>,
}

impl<'t, K: Key + 'static, V: Value + 'static> Deref for WriteTable<'t, K, V> {
    type Target = Table<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K: Key + 'static, V: Value + 'static> WriteTable<'_, K, V> {
    /// redb's `Table::insert`, recorded.
    pub(crate) fn insert<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, redb::StorageError> {
        let old = self.table.insert(key.borrow(), value.borrow())?;
        record_insert::<K, V>(self.log, self.id, key.borrow(), value.borrow());
        Ok(old)
    }

    /// Inserts `value` unless the row it replaces passes `keep`: then that
    /// row is put back, nothing is recorded (the table holds what it held),
    /// and `true` is returned. One tree walk where a lookup and an insert
    /// took two, when the row is usually absent or not kept (dedup entries,
    /// firing ids).
    pub(crate) fn insert_unless<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
        keep: impl FnOnce(V::SelfType<'_>) -> bool,
    ) -> Result<bool, redb::StorageError> {
        let kept = match self.table.insert(key.borrow(), value.borrow())? {
            Some(old) => {
                let bytes = V::as_bytes(&old.value()).as_ref().to_vec();
                keep(old.value()).then_some(bytes)
            }
            None => None,
        };
        if let Some(bytes) = kept {
            self.table.insert(key.borrow(), V::from_bytes(&bytes))?;
            return Ok(true);
        }
        record_insert::<K, V>(self.log, self.id, key.borrow(), value.borrow());
        Ok(false)
    }

    /// Inserts `rows`, given in ascending key order, as many `insert`s would
    /// (each recorded), but through a mutable cursor: rows that fall into
    /// one gap of the table (say, new seqs after its last key) are written
    /// together instead of one tree walk each. A row that does not fit the
    /// cursor's gap moves the cursor to its own gap; a row whose key exists
    /// is inserted on its own (replacing, as `insert` does).
    pub(crate) fn insert_ascending<'k, 'v, KB, VB>(
        &mut self,
        rows: impl IntoIterator<Item = (KB, VB)>,
    ) -> Result<(), redb::StorageError>
    where
        KB: std::borrow::Borrow<K::SelfType<'k>>,
        VB: std::borrow::Borrow<V::SelfType<'v>>,
    {
        let mut rows = rows.into_iter();
        let mut next = rows.next();
        while let Some((first, first_value)) = next.take() {
            let mut cursor = self
                .table
                .lower_bound_mut(std::ops::Bound::Included(first.borrow()))?;
            // At its own gap, the first row is refused only if its key exists.
            let exists = match cursor.insert_before(first.borrow(), first_value.borrow()) {
                Ok(()) => {
                    record_insert::<K, V>(self.log, self.id, first.borrow(), first_value.borrow());
                    false
                }
                Err(redb::CursorError::Storage(e)) => return Err(e),
                Err(_) => true,
            };
            if !exists {
                for (key, value) in rows.by_ref() {
                    match cursor.insert_before(key.borrow(), value.borrow()) {
                        Ok(()) => {
                            record_insert::<K, V>(self.log, self.id, key.borrow(), value.borrow());
                        }
                        Err(redb::CursorError::Storage(e)) => return Err(e),
                        // Not in this gap (or existing): the next round
                        // seeks its own gap.
                        Err(_) => {
                            next = Some((key, value));
                            break;
                        }
                    }
                }
            }
            cursor.close()?;
            if exists {
                self.insert(first.borrow(), first_value.borrow())?;
                next = rows.next();
            }
        }
        Ok(())
    }

    /// Removes the rows with these keys, given in ascending key order, as
    /// many `remove`s would (each removal recorded), in one pass of redb's
    /// `retain_in` over the keys' range, which removes a leaf's rows together
    /// instead of walking the tree once per row. Absent keys are skipped;
    /// rows in the range whose keys are not given stay. `check` sees each
    /// row to be removed (its index in `keys` and its value); a row it
    /// refuses stays, nothing after it is removed, and its index is returned
    /// (the caller fails its transaction).
    pub(crate) fn remove_ascending<'k, KB>(
        &mut self,
        keys: &'k [KB],
        mut check: impl FnMut(usize, V::SelfType<'_>) -> bool,
    ) -> Result<Option<usize>, redb::StorageError>
    where
        KB: std::borrow::Borrow<K::SelfType<'k>>,
    {
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(None);
        };
        let wanted: Vec<_> = keys.iter().map(|k| K::as_bytes(k.borrow())).collect();
        let mut next = 0; // the first key of `wanted` not passed yet
        let mut refused = None;
        let log = self.log;
        let id = self.id;
        self.table.retain_in::<&K::SelfType<'k>, _>(
            first.borrow()..=last.borrow(),
            |key, value| {
                if refused.is_some() {
                    return true;
                }
                let bytes = K::as_bytes(&key);
                while next < wanted.len()
                    && K::compare(wanted[next].as_ref(), bytes.as_ref()).is_lt()
                {
                    next += 1;
                }
                let Some(w) = wanted.get(next) else {
                    return true;
                };
                if K::compare(w.as_ref(), bytes.as_ref()).is_ne() {
                    return true;
                }
                if !check(next, value) {
                    refused = Some(next);
                    return true;
                }
                if let Some(log) = log {
                    log.borrow_mut()
                        .push(id, ChangeOp::Remove, bytes.as_ref(), None);
                }
                next += 1;
                false
            },
        )?;
        Ok(refused)
    }

    /// redb's `Table::remove`, recorded when a row was removed.
    pub(crate) fn remove<'k>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuard<'_, V>>, redb::StorageError> {
        let old = self.table.remove(key.borrow())?;
        if let (Some(log), true) = (self.log, old.is_some()) {
            log.borrow_mut().push(
                self.id,
                ChangeOp::Remove,
                K::as_bytes(key.borrow()).as_ref(),
                None,
            );
        }
        Ok(old)
    }
}

/// Records an insert of `value` under `key` in table `id` (when recording).
fn record_insert<K: Key + 'static, V: Value + 'static>(
    log: Option<&RefCell<ChangeSet>>,
    id: u8,
    key: &K::SelfType<'_>,
    value: &V::SelfType<'_>,
) {
    if let Some(log) = log {
        log.borrow_mut().push(
            id,
            ChangeOp::Insert,
            K::as_bytes(key).as_ref(),
            Some(V::as_bytes(value).as_ref()),
        );
    }
}

/// A multimap table opened for writing: writes record themselves; reads go
/// through `Deref` to the redb table.
pub(crate) struct WriteMultimap<'t, K: Key + 'static, V: Key + 'static> {
    table: MultimapTable<'t, K, V>,
    id: u8,
    log: Option<&'t RefCell<ChangeSet>>,
}

impl<'t, K: Key + 'static, V: Key + 'static> Deref for WriteMultimap<'t, K, V> {
    type Target = MultimapTable<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K: Key + 'static, V: Key + 'static> WriteMultimap<'_, K, V> {
    /// redb's `MultimapTable::insert`, recorded when the pair is new.
    pub(crate) fn insert<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<bool, redb::StorageError> {
        let existed = self.table.insert(key.borrow(), value.borrow())?;
        if let (Some(log), false) = (self.log, existed) {
            log.borrow_mut().push(
                self.id,
                ChangeOp::Insert,
                K::as_bytes(key.borrow()).as_ref(),
                Some(V::as_bytes(value.borrow()).as_ref()),
            );
        }
        Ok(existed)
    }

    /// redb's `MultimapTable::remove`, recorded when the pair was there.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no store operation removes one pair yet; replay and its tests do"
        )
    )]
    pub(crate) fn remove<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<bool, redb::StorageError> {
        let removed = self.table.remove(key.borrow(), value.borrow())?;
        if let (Some(log), true) = (self.log, removed) {
            log.borrow_mut().push(
                self.id,
                ChangeOp::RemoveValue,
                K::as_bytes(key.borrow()).as_ref(),
                Some(V::as_bytes(value.borrow()).as_ref()),
            );
        }
        Ok(removed)
    }

    /// redb's `MultimapTable::remove_all`, recorded when the key had values.
    pub(crate) fn remove_all<'k>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
    ) -> Result<MultimapValue<'_, V>, redb::StorageError> {
        let removed = self.table.remove_all(key.borrow())?;
        if let (Some(log), false) = (self.log, removed.is_empty()) {
            log.borrow_mut().push(
                self.id,
                ChangeOp::RemoveAll,
                K::as_bytes(key.borrow()).as_ref(),
                None,
            );
        }
        Ok(removed)
    }
}

/// Opens `def` for writing in `txn`, mapping the error to the family `E`; the
/// handle records every write it makes.
pub(crate) fn write<'t, E: TableFailure, K: Key + 'static, V: Value + 'static>(
    txn: &'t WriteTxn,
    def: Def<K, V>,
) -> Result<WriteTable<'t, K, V>, E> {
    txn.table(def)
}

/// Opens the multimap `def` for writing in `txn`, mapping the error to the
/// family `E`; the handle records every write it makes.
pub(crate) fn write_multimap<'t, E: TableFailure, K: Key + 'static, V: Key + 'static>(
    txn: &'t WriteTxn,
    def: MultiDef<K, V>,
) -> Result<WriteMultimap<'t, K, V>, E> {
    txn.multimap(def)
}

#[cfg(test)]
mod tests {
    //! The cursor writes against one-row-at-a-time writes on two real redb
    //! files: same rows after, same changes recorded.

    use super::*;
    use crate::error::IngestError;
    use redb::ReadableTable;

    struct Counting;

    impl ChangeSink for Counting {
        fn commit(&self, _: &ChangeSet) -> Result<u64, ChangelogError> {
            Ok(1)
        }
    }

    fn db(dir: &tempfile::TempDir, name: &str) -> redb::Database {
        redb::Database::create(dir.path().join(name)).expect("db")
    }

    /// Runs `write` on the outbox table of a fresh file holding keys 10, 20,
    /// …, 100; returns the table's rows and the changes recorded.
    fn outbox_after(
        dir: &tempfile::TempDir,
        name: &str,
        write: impl FnOnce(&mut WriteTable<'_, u64, &'static str>),
    ) -> (Vec<(u64, String)>, Vec<u8>) {
        let db = db(dir, name);
        let unapplied = Unapplied::default();
        let txn = WriteTxn::new(
            &unapplied,
            db.begin_write().expect("txn"),
            Some(Arc::new(Counting)),
        );
        let changes = {
            let mut table = txn
                .table::<IngestError, _, _>(tables::OUTBOX)
                .expect("table");
            for k in (10..=100).step_by(10) {
                table.table.insert(k, "old").expect("seed");
            }
            write(&mut table);
            let changes = txn.log().expect("records").borrow().encoded().to_vec();
            let rows = table
                .iter()
                .expect("iter")
                .map(|r| {
                    let (k, v) = r.expect("row");
                    (k.value(), v.value().to_string())
                })
                .collect();
            (rows, changes)
        };
        txn.commit::<IngestError>().expect("commit");
        changes
    }

    #[test]
    fn rows_in_key_order_land_as_one_insert_each_would() {
        let dir = tempfile::tempdir().expect("tempdir");
        // After the end, into a gap, onto an existing key, then out of order.
        let rows: Vec<(u64, &str)> = vec![
            (15, "a"),
            (16, "b"),
            (20, "c"),
            (25, "d"),
            (101, "e"),
            (102, "f"),
            (5, "g"),
            (103, "h"),
        ];
        let by_cursor = outbox_after(&dir, "a.redb", |t| {
            t.insert_ascending(rows.iter().copied()).expect("cursor");
        });
        let one_by_one = outbox_after(&dir, "b.redb", |t| {
            for (k, v) in &rows {
                t.insert(*k, *v).expect("insert");
            }
        });
        assert_eq!(by_cursor, one_by_one);
        assert!(by_cursor.0.contains(&(20, "c".to_string())), "replaced");
    }

    #[test]
    fn removals_in_key_order_are_one_remove_each_would() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = [5u64, 10, 30, 35, 40, 100, 200];
        let mut seen = Vec::new();
        let by_cursor = outbox_after(&dir, "a.redb", |t| {
            let stopped = t
                .remove_ascending(&keys, |i, v| {
                    seen.push((keys[i], v.to_string()));
                    true
                })
                .expect("cursor");
            assert_eq!(stopped, None);
        });
        let one_by_one = outbox_after(&dir, "b.redb", |t| {
            for k in keys {
                t.remove(k).expect("remove");
            }
        });
        assert_eq!(by_cursor, one_by_one);
        let removed: Vec<u64> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(removed, [10, 30, 40, 100], "absent keys are skipped");
    }

    #[test]
    fn a_refused_row_stops_the_removals_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rows, changes) = outbox_after(&dir, "a.redb", |t| {
            let stopped = t
                .remove_ascending(&[10u64, 20, 30], |i, _| i != 1)
                .expect("cursor");
            assert_eq!(stopped, Some(1));
        });
        let keys: Vec<u64> = rows.iter().map(|(k, _)| *k).collect();
        // 10 went (and was recorded); 20, refused, and 30 after it stay (the
        // caller fails the transaction, which is then never committed).
        assert!(
            !keys.contains(&10) && keys.contains(&20) && keys.contains(&30),
            "{keys:?}"
        );
        assert_eq!(ChangeSet::decode(&changes).expect("decode").len(), 1);
    }
}
