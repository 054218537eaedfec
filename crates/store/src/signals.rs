//! Reads of stored signal instances: by seq, by producer id, in seq order, and
//! the list of names with their last seq.
//!
//! Every read runs in its own read transaction and sees the last committed
//! state; rows are decoded with `codec` and a bad row is a `Corrupt` error, never
//! a panic. Instances are written only by the ingest transaction.

use redb::ReadableTable;
use signalbox_model::SignalInstance;

use crate::codec;
use crate::error::{AtTable, ReadError};
use crate::store::Store;
use crate::tables::{self, names};

impl Store {
    /// The instance `(name, seq)`.
    pub fn signal(&self, name: &str, seq: u64) -> Result<Option<SignalInstance>, ReadError> {
        let txn = self.begin_read()?;
        let signals = tables::read(&txn, tables::SIGNALS)?;
        read_instance(&signals, name, seq)
    }

    /// The latest instance of `name` stored with producer id `id` (still found
    /// after its dedup entry has expired).
    pub fn signal_by_id(&self, name: &str, id: &str) -> Result<Option<SignalInstance>, ReadError> {
        let txn = self.begin_read()?;
        let ids = tables::read(&txn, tables::SIGNAL_IDS)?;
        let Some(seq) = ids
            .get((name, id))
            .at::<ReadError>(names::SIGNAL_IDS)?
            .map(|g| g.value().0)
        else {
            return Ok(None);
        };
        let signals = tables::read(&txn, tables::SIGNALS)?;
        read_instance(&signals, name, seq)
    }

    /// Up to `limit` instances of `name` with seq greater than `after_seq`, ascending.
    pub fn signals(
        &self,
        name: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<SignalInstance>, ReadError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let txn = self.begin_read()?;
        let signals = tables::read(&txn, tables::SIGNALS)?;
        let mut out = Vec::new();
        let rows = signals
            .range((name, first)..=(name, u64::MAX))
            .at::<ReadError>(names::SIGNALS)?;
        for row in rows.take(limit) {
            let (k, v) = row.at::<ReadError>(names::SIGNALS)?;
            let (_, seq) = k.value();
            out.push(codec::decode(names::SIGNALS, v.value(), || {
                format!("({name:?}, {seq})")
            })?);
        }
        Ok(out)
    }

    /// Every signal name with its last seq, ordered by name.
    pub fn signal_names(&self) -> Result<Vec<(String, u64)>, ReadError> {
        let txn = self.begin_read()?;
        let seqs = tables::read(&txn, tables::SIGNAL_SEQ)?;
        let mut out = Vec::new();
        for row in seqs.iter().at::<ReadError>(names::SIGNAL_SEQ)? {
            let (k, v) = row.at::<ReadError>(names::SIGNAL_SEQ)?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }
}

fn read_instance(
    signals: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    name: &str,
    seq: u64,
) -> Result<Option<SignalInstance>, ReadError> {
    let Some(guard) = signals.get((name, seq)).at::<ReadError>(names::SIGNALS)? else {
        return Ok(None);
    };
    let instance = codec::decode(names::SIGNALS, guard.value(), || {
        format!("({name:?}, {seq})")
    })?;
    Ok(Some(instance))
}
