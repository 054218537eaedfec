//! The ingest transaction of docs/DESIGN.md section 4 (steps 1, 2, 3, 5 and 6): dedup,
//! store, plan, outbox, commit — for a whole batch in ONE redb write transaction
//! (group commit: one fsync for many signals).
//!
//! For each [`Incoming`], in order:
//! 1. dedup on `(name, id)`: the `signal_ids` row is the dedup entry; a live
//!    one (received less than the retention before this signal's
//!    `received_at_ms`) makes it a [`IngestOutcome::Duplicate`] carrying the
//!    original seq, and nothing else happens. Rows written earlier in the same
//!    batch are visible, so in-batch duplicates are caught;
//! 2. the next seq for the name, the instance row and the new `signal_ids` row
//!    (which replaces an expired entry); `signal_seq` is read once per name
//!    and written once per name, when the batch is done;
//! 3. `plan(&instance, &mut joins)` returns the firings (the router matches
//!    there, and records join offers / consumes complete joins through the
//!    [`PlanContext`], in this same transaction);
//! 4. each firing whose id is not stored yet gets a firing seq, a `firings` row in
//!    state `Pending`, an `outbox` row and lineage rows; a firing id that already
//!    exists is skipped (firing dedup).
//!
//! `ingest_at` also writes the input position of the batch (`meta["input_seq"]`)
//! in the same transaction, so a partition's new owner knows where to resume
//! reading its input.
//!
//! Invariant: the batch is committed once, at the end (through the changelog
//! sink first when one is set; a refusal is an `IngestError::Changelog`). Any error — including a
//! missing id, checked before the transaction starts — returns before the commit,
//! so the whole batch is rolled back: a caller that acks only after `Ok` never
//! acks a signal that is not stored. A panic inside `plan` unwinds through the
//! transaction and drops it, which also rolls it back.

use std::collections::HashMap;

use redb::ReadableTable;
use signalbox_model::json_write::WriteJson;
use signalbox_model::{Firing, Origin, Signal, SignalInstance};

use crate::capture::{WriteMultimap, WriteTable};
use crate::codec;
use crate::error::{AtTable, IngestError};
use crate::firing_rows::FiringTables;
use crate::joins::{PlanContext, write_matches};
use crate::signal_rows::SignalRows;
use crate::store::Store;
use crate::tables::{self, names};

/// One signal to store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incoming {
    /// The validated signal; `signal.id` must be `Some` (the router fills it in).
    pub signal: Signal,
    /// Where it came in.
    pub origin: Origin,
    /// When the router received it, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

/// What happened to one [`Incoming`] of a batch (same order as the batch).
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived, one per incoming signal; boxing would cost an allocation per stored signal"
)]
pub enum IngestOutcome {
    /// Stored with a new seq.
    Stored {
        /// The stored instance.
        instance: SignalInstance,
        /// The firings newly written for it; firings whose id already existed
        /// are left out.
        firings: Vec<NewFiring>,
    },
    /// `(name, id)` was seen within the retention; nothing was written.
    Duplicate {
        /// Signal name.
        name: String,
        /// Signal id.
        id: String,
        /// The seq of the instance stored the first time.
        seq: u64,
    },
}

/// A firing an ingest transaction wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFiring {
    /// Its `firing_seq` (its outbox key).
    pub seq: u64,
    /// The firing.
    pub firing: Firing,
    /// Its message body, [`Firing::message_bytes`]: the same bytes as in its
    /// stored record, taken from there, so that the drainer publishes them
    /// without writing them again.
    pub message: Vec<u8>,
}

impl Store {
    /// Stores a batch of signals and the firings `plan` returns for them, in one
    /// write transaction committed once (see the module docs).
    ///
    /// `plan` is called once per stored (non-duplicate) instance, in batch order,
    /// while the transaction is open; it must not call back into the store's
    /// write methods (they would wait for this transaction forever).
    pub fn ingest(
        &self,
        batch: Vec<Incoming>,
        plan: &mut dyn FnMut(&SignalInstance, &mut PlanContext<'_, '_>) -> Vec<Firing>,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        self.ingest_at(batch, None, plan)
    }

    /// [`Store::ingest`], also writing `meta["input_seq"] = input_seq` in the
    /// same transaction when it is `Some`: the position in the owner's input
    /// (say, the stream sequence of the batch's last message) from which to
    /// resume reading ([`Store::input_seq`]). With a position, an empty batch
    /// still records it. The position is stored as given, not compared with
    /// the one stored before.
    pub fn ingest_at(
        &self,
        batch: Vec<Incoming>,
        input_seq: Option<u64>,
        plan: &mut dyn FnMut(&SignalInstance, &mut PlanContext<'_, '_>) -> Vec<Firing>,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        for (index, incoming) in batch.iter().enumerate() {
            if incoming.signal.id.as_deref().is_none_or(str::is_empty) {
                return Err(IngestError::MissingId {
                    index,
                    name: incoming.signal.name.clone(),
                });
            }
        }
        if batch.is_empty() && input_seq.is_none() {
            return Ok(Vec::new());
        }
        let retention_ms = self.options.retention_ms();
        let txn = self.begin_write::<IngestError>()?;
        let outcomes = {
            let mut t = IngestTables {
                meta: crate::capture::write::<IngestError, _, _>(&txn, tables::META)?,
                signal_seq: crate::capture::write::<IngestError, _, _>(&txn, tables::SIGNAL_SEQ)?,
                signals: SignalRows::open::<IngestError>(&txn)?,
                signal_ids: crate::capture::write::<IngestError, _, _>(&txn, tables::SIGNAL_IDS)?,
                fire: FiringTables::open::<IngestError>(&txn)?,
                waits: crate::capture::write::<IngestError, _, _>(&txn, tables::WAITS)?,
                signal_waits: crate::capture::write_multimap::<IngestError, _, _>(
                    &txn,
                    tables::SIGNAL_WAITS,
                )?,
                signal_matches: crate::capture::write_multimap::<IngestError, _, _>(
                    &txn,
                    tables::SIGNAL_MATCHES,
                )?,
                join_offers: crate::capture::write::<IngestError, _, _>(&txn, tables::JOIN_OFFERS)?,
                last_seqs: HashMap::default(),
            };
            let first_seq = t
                .meta
                .get(tables::META_FIRING_SEQ)
                .at::<IngestError>(names::META)?
                .map_or(0, |g| g.value());
            let mut firing_seq = first_seq;
            let mut outcomes = Vec::with_capacity(batch.len());
            for incoming in batch {
                outcomes.push(t.one(incoming, retention_ms, &mut firing_seq, plan)?);
            }
            t.fire.finish::<IngestError>()?;
            t.signals.flush::<IngestError>()?;
            for (name, seq) in &t.last_seqs {
                t.signal_seq
                    .insert(name.as_str(), *seq)
                    .at::<IngestError>(names::SIGNAL_SEQ)?;
            }
            // Unchanged, it is not written: a batch of duplicates writes nothing.
            if firing_seq != first_seq {
                t.meta
                    .insert(tables::META_FIRING_SEQ, firing_seq)
                    .at::<IngestError>(names::META)?;
            }
            if let Some(input_seq) = input_seq {
                t.meta
                    .insert(tables::META_INPUT_SEQ, input_seq)
                    .at::<IngestError>(names::META)?;
            }
            outcomes
        };
        txn.commit::<IngestError>()?;
        Ok(outcomes)
    }
}

/// The tables the ingest transaction writes, opened once per batch.
struct IngestTables<'t> {
    meta: WriteTable<'t, &'static str, u64>,
    signal_seq: WriteTable<'t, &'static str, u64>,
    signals: SignalRows<'t>,
    signal_ids: WriteTable<'t, (&'static str, &'static str), (u64, i64)>,
    fire: FiringTables<'t>,
    waits: WriteTable<'t, &'static str, &'static [u8]>,
    signal_waits: WriteMultimap<'t, (&'static str, u64), &'static str>,
    signal_matches: WriteMultimap<'t, (&'static str, u64), &'static str>,
    join_offers:
        WriteTable<'t, (&'static str, u64, &'static str, &'static str, u64), &'static [u8]>,
    /// The last seq given per name in this transaction: `signal_seq` is read
    /// once per name and written once per name, at the end of the batch.
    last_seqs: HashMap<String, u64, foldhash::fast::RandomState>,
}

impl IngestTables<'_> {
    /// Steps 1–5 for one signal.
    fn one(
        &mut self,
        incoming: Incoming,
        retention_ms: i64,
        firing_seq: &mut u64,
        plan: &mut dyn FnMut(&SignalInstance, &mut PlanContext<'_, '_>) -> Vec<Firing>,
    ) -> Result<IngestOutcome, IngestError> {
        let Incoming {
            signal,
            origin,
            received_at_ms,
        } = incoming;
        let name = signal.name.clone();
        let id = signal.id.clone().unwrap_or_default();

        // The next seq for the name (stored below unless this is a duplicate).
        let last = match self.last_seqs.get(name.as_str()) {
            Some(&last) => last,
            None => self
                .signal_seq
                .get(name.as_str())
                .at::<IngestError>(names::SIGNAL_SEQ)?
                .map_or(0, |g| g.value()),
        };
        let live = |at: i64| at > received_at_ms.saturating_sub(retention_ms);
        let Some(seq) = last.checked_add(1) else {
            let existing = self
                .signal_ids
                .get((name.as_str(), id.as_str()))
                .at::<IngestError>(names::SIGNAL_IDS)?
                .map(|g| g.value());
            return match existing {
                Some((first_seq, first_at)) if live(first_at) => Ok(IngestOutcome::Duplicate {
                    name,
                    id,
                    seq: first_seq,
                }),
                _ => Err(IngestError::SeqOverflow { name }),
            };
        };

        // 1. Dedup on (name, id): the `signal_ids` row is the dedup entry.
        // The new row is inserted first and what it replaced is looked at
        // (`insert_unless`): a live entry (a duplicate, the rare case) stays.
        let mut live_entry = None;
        if self
            .signal_ids
            .insert_unless(
                (name.as_str(), id.as_str()),
                (seq, received_at_ms),
                |(first_seq, first_at)| {
                    live_entry = Some(first_seq);
                    live(first_at)
                },
            )
            .at::<IngestError>(names::SIGNAL_IDS)?
            && let Some(first_seq) = live_entry
        {
            return Ok(IngestOutcome::Duplicate {
                name,
                id,
                seq: first_seq,
            });
        }

        // 2. Store the instance with the next seq (its id row, written
        // above, replaced an expired one if there was one).
        let instance = SignalInstance {
            seq,
            id: id.clone(),
            received_at_ms,
            signal,
            origin,
        };
        let bytes = codec::encode_with(256, |out| instance.write_json(out));
        match self.last_seqs.get_mut(name.as_str()) {
            Some(last) => *last = seq,
            None => {
                self.last_seqs.insert(name.clone(), seq);
            }
        }
        self.signals.insert(&name, seq, bytes);

        // 3. Plan, 4./5. write the new firings.
        let mut ctx = PlanContext {
            offers: &mut self.join_offers,
            signals: &mut self.signals,
            waits: &mut self.waits,
            signal_waits: &mut self.signal_waits,
            signal_matches: &mut self.signal_matches,
            matched: Vec::new(),
            error: None,
        };
        let planned = plan(&instance, &mut ctx);
        if let Some(e) = ctx.error {
            return Err(e);
        }
        let matched = ctx.matched;
        let mut written = Vec::new();
        for firing in planned {
            if firing.firing_id.is_empty() {
                return Err(IngestError::EmptyFiringId {
                    name,
                    seq,
                    subscription: firing.subscription,
                });
            }
            if let Some(message) =
                self.fire
                    .write::<IngestError>(&firing, Some((&name, seq)), firing_seq)?
            {
                written.push(NewFiring {
                    seq: *firing_seq,
                    firing,
                    message,
                });
            }
        }
        if !matched.is_empty() {
            write_matches(
                &mut self.signal_matches,
                matched,
                Some((&name, seq)),
                written.iter().map(|f| &f.firing),
            )?;
        }
        Ok(IngestOutcome::Stored {
            instance,
            firings: written,
        })
    }
}

impl Store {
    /// Runs `plan` in a write transaction of its own, with the same context the
    /// ingest plan gets (join offers, wait answers, a scan of stored signals), and
    /// writes the firings it returns. Used for work that must not interleave with
    /// ingest, such as a new wait's lookback. Returns the firings written.
    pub fn run_plan(
        &self,
        plan: &mut dyn FnMut(&mut PlanContext<'_, '_>) -> Vec<Firing>,
    ) -> Result<Vec<Firing>, IngestError> {
        self.run_plan_at(None, plan)
    }

    /// [`Store::run_plan`], also recording the input position `input_seq`
    /// in the same transaction (group mode: a partition's owner working
    /// messages other than signals, such as join offers).
    pub fn run_plan_at(
        &self,
        input_seq: Option<u64>,
        plan: &mut dyn FnMut(&mut PlanContext<'_, '_>) -> Vec<Firing>,
    ) -> Result<Vec<Firing>, IngestError> {
        let txn = self.begin_write::<IngestError>()?;
        let written = {
            let mut meta = crate::capture::write::<IngestError, _, _>(&txn, tables::META)?;
            if let Some(input_seq) = input_seq {
                meta.insert(tables::META_INPUT_SEQ, input_seq)
                    .at::<IngestError>(names::META)?;
            }
            let mut signals = SignalRows::open::<IngestError>(&txn)?;
            let mut offers = crate::capture::write::<IngestError, _, _>(&txn, tables::JOIN_OFFERS)?;
            let mut waits = crate::capture::write::<IngestError, _, _>(&txn, tables::WAITS)?;
            let mut signal_waits =
                crate::capture::write_multimap::<IngestError, _, _>(&txn, tables::SIGNAL_WAITS)?;
            let mut signal_matches =
                crate::capture::write_multimap::<IngestError, _, _>(&txn, tables::SIGNAL_MATCHES)?;
            let mut ctx = PlanContext {
                offers: &mut offers,
                signals: &mut signals,
                waits: &mut waits,
                signal_waits: &mut signal_waits,
                signal_matches: &mut signal_matches,
                matched: Vec::new(),
                error: None,
            };
            let planned = plan(&mut ctx);
            if let Some(e) = ctx.error {
                return Err(e);
            }
            let matched = ctx.matched;
            let first_seq = meta
                .get(tables::META_FIRING_SEQ)
                .at::<IngestError>(names::META)?
                .map_or(0, |g| g.value());
            let mut firing_seq = first_seq;
            let mut fire = FiringTables::open::<IngestError>(&txn)?;
            let mut written = Vec::new();
            for firing in planned {
                if fire
                    .write::<IngestError>(&firing, None, &mut firing_seq)?
                    .is_some()
                {
                    written.push(firing);
                }
            }
            fire.finish::<IngestError>()?;
            write_matches(&mut signal_matches, matched, None, written.iter())?;
            if firing_seq != first_seq {
                meta.insert(tables::META_FIRING_SEQ, firing_seq)
                    .at::<IngestError>(names::META)?;
            }
            written
        };
        txn.commit::<IngestError>()?;
        Ok(written)
    }
}
