//! The `signals` rows of an open write transaction, kept and written
//! together in key order.
//!
//! An ingest batch stores one instance row per signal, `(name, seq)` with
//! seqs growing per name, so the rows land after the last key of each
//! name's range. [`SignalRows`] keeps them and writes them through one cursor
//! per run of keys ([`WriteTable::insert_ascending`]) instead of one tree
//! walk per row (docs/DECISIONS.md, "Store rows are written in key order, at
//! the end of the transaction").
//!
//! Invariant: every read of the table inside the transaction goes through
//! [`SignalRows::read`], which writes what is kept first, so a read sees
//! every row stored before it (a join loading an instance stored earlier in
//! the same batch, a wait's lookback); the transaction calls
//! [`SignalRows::flush`] before it commits.

use crate::capture::{WriteTable, WriteTxn};
use crate::error::{AtTable, TableFailure};
use crate::tables::{self, names};

/// The `signals` table of a write transaction and the rows not written yet.
pub(crate) struct SignalRows<'t> {
    table: WriteTable<'t, (&'static str, u64), &'static [u8]>,
    /// `(name, seq)` → encoded instance, in the order they were stored.
    kept: Vec<((String, u64), Vec<u8>)>,
}

impl<'t> SignalRows<'t> {
    /// Opens the table in `txn`.
    pub(crate) fn open<E: TableFailure>(txn: &'t WriteTxn<'_>) -> Result<Self, E> {
        Ok(SignalRows {
            table: crate::capture::write::<E, _, _>(txn, tables::SIGNALS)?,
            kept: Vec::new(),
        })
    }

    /// Stores instance `(name, seq)` (written by the next `read` or `flush`).
    pub(crate) fn insert(&mut self, name: &str, seq: u64, bytes: Vec<u8>) {
        self.kept.push(((name.to_string(), seq), bytes));
    }

    /// Writes the rows kept so far, in key order.
    pub(crate) fn flush<E: TableFailure>(&mut self) -> Result<(), E> {
        if self.kept.is_empty() {
            return Ok(());
        }
        let mut kept = std::mem::take(&mut self.kept);
        // Stable: a key stored twice keeps its last row, as inserts would.
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        self.table
            .insert_ascending(
                kept.iter()
                    .map(|((name, seq), bytes)| ((name.as_str(), *seq), bytes.as_slice())),
            )
            .at::<E>(names::SIGNALS)
    }

    /// The table with every row stored so far written, for reading.
    pub(crate) fn read<E: TableFailure>(
        &mut self,
    ) -> Result<&redb::Table<'t, (&'static str, u64), &'static [u8]>, E> {
        self.flush::<E>()?;
        Ok(&self.table)
    }
}
