//! Writing one firing: its `firings` row (state `Pending`), its `outbox` row and
//! its lineage rows, shared by every transaction that creates firings (ingest,
//! wait answers).
//!
//! Invariant: a firing id is written at most once; [`FiringTables::write`]
//! returns `false` and leaves every table as it was when the id exists
//! (firing dedup; nothing is recorded for the changelog either). The
//! caller owns the firing-seq counter (`meta["firing_seq"]`) and stores it back
//! in the same transaction.

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
        })
    }

    /// Writes `firing` unless its id exists; returns whether it was written.
    /// `trigger` is the instance whose arrival created it, if any; every input
    /// in `firing.signals` gets a lineage row too.
    pub(crate) fn write<E: TableFailure>(
        &mut self,
        firing: &Firing,
        trigger: Option<(&str, u64)>,
        firing_seq: &mut u64,
    ) -> Result<bool, E> {
        let fid = firing.firing_id.as_str();
        let seq = firing_seq.saturating_add(1);
        let record = NewRecord {
            firing,
            state: FiringState::Pending,
            attempts: 0,
            firing_seq: seq,
        };
        let bytes = codec::encode_with(640, |out| record.write_json(out));
        // Insert first and look at what it replaced: one tree walk instead of
        // a lookup and an insert. A firing id that exists is rare (a dedup
        // template, a redelivered offer): its row stays as it was.
        if self
            .firings
            .insert_unless(fid, bytes.as_slice(), |_| true)
            .at::<E>(names::FIRINGS)?
        {
            tracing::debug!(firing_id = fid, "firing exists; skipped");
            return Ok(false);
        }
        *firing_seq = seq;
        self.outbox.insert(seq, fid).at::<E>(names::OUTBOX)?;
        self.subscription_firings
            .insert((firing.subscription.as_str(), seq), fid)
            .at::<E>(names::SUBSCRIPTION_FIRINGS)?;
        // The trigger is usually one of the inputs (always for a single-signal
        // firing): its row is then written by the loop below.
        if let Some(trigger) = trigger
            && !firing
                .signals
                .iter()
                .any(|i| i.name == trigger.0 && i.seq == trigger.1)
        {
            self.signal_firings
                .insert((trigger.0, trigger.1, fid), ())
                .at::<E>(names::SIGNAL_FIRINGS)?;
        }
        for input in &firing.signals {
            self.signal_firings
                .insert((input.name.as_str(), input.seq, fid), ())
                .at::<E>(names::SIGNAL_FIRINGS)?;
        }
        Ok(true)
    }
}
