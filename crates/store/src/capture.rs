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
