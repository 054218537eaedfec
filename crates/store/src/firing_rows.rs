//! Writing one firing: its `firings` row (state `Pending`), its `outbox` row and
//! its lineage rows, shared by every transaction that creates firings (ingest,
//! wait answers).
//!
//! Invariant: a firing id is written at most once; [`FiringTables::write`]
//! returns `false` and leaves every table as it was when the id exists
//! (firing dedup; nothing is recorded for the changelog either). The
//! caller owns the firing-seq counter (`meta["firing_seq"]`) and stores it back
//! in the same transaction.
//!
//! Nothing reads the rows of a new firing while its transaction is open
//! except the next firing's dedup, which looks at the firings kept so far
//! and then at the table. The table is read only for an id at or before its
//! last key, read once per transaction: firing ids start with their time, so
//! a new firing's id nearly always sorts after every stored one, and an id
//! after the last key is in no row. So every row is kept until
//! [`FiringTables::finish`] writes them, each table's rows in key order
//! through one cursor: a batch's rows mostly land after the last key of
//! their range (firing ids start with their time, seqs grow), and redb then
//! writes them together instead of walking the tree once per row
//! (docs/DECISIONS.md, "Store rows are written in key order, at the end of
//! the transaction"). Every caller calls `finish` before it commits.

use redb::ReadableTable;
use signalbox_model::Firing;

use crate::capture::{WriteTable, WriteTxn};
use crate::codec;
use crate::error::{AtTable, TableFailure};
use crate::outbox::{FiringState, NewRecord};
use crate::tables::{self, names};

/// The tables a new firing touches, opened in one write transaction.
pub(crate) struct FiringTables<'t> {
    pub(crate) firings: WriteTable<'t, &'static str, &'static [u8]>,
    pub(crate) outbox: WriteTable<'t, u64, &'static str>,
    pub(crate) signal_firings: WriteTable<'t, (&'static str, u64, &'static str), ()>,
    pub(crate) subscription_firings: WriteTable<'t, (&'static str, u64), &'static str>,
    /// The firings written so far, for [`FiringTables::finish`].
    pending: Pending,
}

/// The firings kept until [`FiringTables::finish`].
#[derive(Default)]
struct Pending {
    /// In the order written: their seqs ascend.
    firings: Vec<Kept>,
    /// Their ids, for the dedup of the next ones.
    ids: std::collections::HashSet<String, foldhash::fast::RandomState>,
    /// The `firings` table's last key when the first firing was written
    /// (`Some(None)`: the table was empty); `None` until then.
    table_last: Option<Option<String>>,
    /// `signal_firing_links`: (signal name, signal seq, index in `firings`).
    links: Vec<(String, u64, usize)>,
}

/// One firing kept until [`FiringTables::finish`].
struct Kept {
    id: String,
    seq: u64,
    subscription: String,
    /// The encoded `firings` row.
    record: Vec<u8>,
}

impl<'t> FiringTables<'t> {
    /// Opens the tables in `txn`.
    pub(crate) fn open<E: TableFailure>(txn: &'t WriteTxn<'_>) -> Result<Self, E> {
        Ok(FiringTables {
            firings: crate::capture::write::<E, _, _>(txn, tables::FIRINGS)?,
            outbox: crate::capture::write::<E, _, _>(txn, tables::OUTBOX)?,
            signal_firings: crate::capture::write::<E, _, _>(txn, tables::SIGNAL_FIRINGS)?,
            subscription_firings: crate::capture::write::<E, _, _>(
                txn,
                tables::SUBSCRIPTION_FIRINGS,
            )?,
            pending: Pending::default(),
        })
    }

    /// Writes the rows of every firing written since `open`, each table's in
    /// key order. Must run before the transaction commits.
    pub(crate) fn finish<E: TableFailure>(&mut self) -> Result<(), E> {
        // The table's last key changes here: a later write reads it again.
        let Pending { firings, links, .. } = std::mem::take(&mut self.pending);
        let mut by_id: Vec<&Kept> = firings.iter().collect();
        by_id.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        self.firings
            .insert_ascending(by_id.iter().map(|k| (k.id.as_str(), k.record.as_slice())))
            .at::<E>(names::FIRINGS)?;
        self.outbox
            .insert_ascending(firings.iter().map(|k| (k.seq, k.id.as_str())))
            .at::<E>(names::OUTBOX)?;
        let mut subscriptions: Vec<(&str, u64, &str)> = firings
            .iter()
            .map(|k| (k.subscription.as_str(), k.seq, k.id.as_str()))
            .collect();
        subscriptions.sort_unstable();
        self.subscription_firings
            .insert_ascending(
                subscriptions
                    .iter()
                    .map(|&(sub, seq, fid)| ((sub, seq), fid)),
            )
            .at::<E>(names::SUBSCRIPTION_FIRINGS)?;
        let mut links: Vec<(&str, u64, &str)> = links
            .iter()
            .filter_map(|(name, seq, i)| Some((name.as_str(), *seq, firings.get(*i)?.id.as_str())))
            .collect();
        links.sort_unstable();
        links.dedup();
        self.signal_firings
            .insert_ascending(links.iter().map(|&link| (link, ())))
            .at::<E>(names::SIGNAL_FIRINGS)?;
        Ok(())
    }

    /// Whether the `firings` table has a row for `fid` (the rows kept for
    /// `finish` aside): looked up only when `fid` is not after the table's
    /// last key.
    fn in_table<E: TableFailure>(&mut self, fid: &str) -> Result<bool, E> {
        let last = match &self.pending.table_last {
            Some(last) => last,
            None => {
                let last = self
                    .firings
                    .last()
                    .at::<E>(names::FIRINGS)?
                    .map(|(key, _)| key.value().to_string());
                self.pending.table_last.insert(last)
            }
        };
        if last.as_deref().is_none_or(|last| fid > last) {
            return Ok(false);
        }
        Ok(self.firings.get(fid).at::<E>(names::FIRINGS)?.is_some())
    }

    /// Writes `firing` unless its id exists; returns its message (its JSON,
    /// [`Firing::message_bytes`], taken from its row) if it was written, and
    /// `None` if the id existed. `trigger` is the instance whose arrival
    /// created it, if any; every input in `firing.signals` gets a lineage row
    /// too.
    pub(crate) fn write<E: TableFailure>(
        &mut self,
        firing: &Firing,
        trigger: Option<(&str, u64)>,
        firing_seq: &mut u64,
    ) -> Result<Option<Vec<u8>>, E> {
        let fid = firing.firing_id.as_str();
        // A firing id that exists is rare (a dedup template, a redelivered
        // offer): its row stays as it was.
        if self.pending.ids.contains(fid) || self.in_table::<E>(fid)? {
            tracing::debug!(firing_id = fid, "firing exists; skipped");
            return Ok(None);
        }
        let seq = firing_seq.saturating_add(1);
        *firing_seq = seq;
        let record = NewRecord {
            firing,
            state: FiringState::Pending,
            attempts: 0,
            firing_seq: seq,
        };
        let mut at = 0..0;
        let row = codec::encode_with(640, |out| at = record.write_json(out));
        // The message is the firing's JSON inside the row (`at` always lies in
        // it; encoding again is the fallback that cannot be wrong).
        let message = row
            .get(at)
            .map_or_else(|| firing.message_bytes(), <[u8]>::to_vec);
        let pending = &mut self.pending;
        let index = pending.firings.len();
        pending.ids.insert(fid.to_string());
        pending.firings.push(Kept {
            id: fid.to_string(),
            seq,
            subscription: firing.subscription.clone(),
            record: row,
        });
        // The trigger is usually one of the inputs (always for a single-signal
        // firing): its row is then written for the input.
        if let Some(trigger) = trigger
            && !firing
                .signals
                .iter()
                .any(|i| i.name == trigger.0 && i.seq == trigger.1)
        {
            pending
                .links
                .push((trigger.0.to_string(), trigger.1, index));
        }
        for input in &firing.signals {
            pending.links.push((input.name.clone(), input.seq, index));
        }
        Ok(Some(message))
    }
}
