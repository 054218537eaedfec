//! Waits: registration (idempotent by id), reads, and settling a wait exactly
//! once (satisfied, timed out or cancelled) together with its answer firing.
//!
//! Invariants: a `waits` row is created once per id and never replaced; its state
//! moves from `waiting` to exactly one final state, in a write transaction that
//! also writes the answer firing to the outbox (so the answer is delivered even
//! after a crash) and, when satisfied, the lineage rows `signal_waits`.

use redb::ReadableTable;
use signalbox_model::{Firing, WaitRecord, WaitState};

use crate::capture::{WriteMultimap, WriteTable};
use crate::codec;
use crate::error::{AtTable, IngestError, ReadError, TableFailure, WaitError};
use crate::firing_rows::FiringTables;
use crate::store::Store;
use crate::tables::{self, names};

/// What registering a wait did.
#[derive(Debug, Clone, PartialEq)]
pub enum Registered {
    /// A new wait was stored.
    Created(WaitRecord),
    /// A wait with that id exists already; it is returned as it stands.
    Existing(WaitRecord),
}

impl Store {
    /// Stores a new wait, or returns the one with the same id (idempotency).
    pub fn register_wait(&self, record: WaitRecord) -> Result<Registered, WaitError> {
        let txn = self.begin_write::<WaitError>()?;
        let registered = {
            let mut waits = crate::capture::write::<WaitError, _, _>(&txn, tables::WAITS)?;
            let id = record.wait.id.clone();
            let existing = waits.get(id.as_str()).at::<WaitError>(names::WAITS)?;
            match existing {
                Some(g) => {
                    Registered::Existing(codec::decode(names::WAITS, g.value(), || id.clone())?)
                }
                None => {
                    drop(existing);
                    let bytes = codec::encode(&record).map_err(|source| WaitError::Encode {
                        id: id.clone(),
                        source,
                    })?;
                    waits
                        .insert(id.as_str(), bytes.as_slice())
                        .at::<WaitError>(names::WAITS)?;
                    Registered::Created(record)
                }
            }
        };
        if let Registered::Existing(_) = registered {
            txn.abort::<WaitError>(names::WAITS)?;
        } else {
            txn.commit::<WaitError>()?;
        }
        Ok(registered)
    }

    /// The wait with this id.
    pub fn wait(&self, id: &str) -> Result<Option<WaitRecord>, ReadError> {
        let txn = self.begin_read()?;
        let waits = tables::read(&txn, tables::WAITS)?;
        let Some(g) = waits.get(id).at::<ReadError>(names::WAITS)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(names::WAITS, g.value(), || {
            id.to_string()
        })?))
    }

    /// All waits, or only those still waiting, in id order.
    pub fn waits(&self, waiting_only: bool) -> Result<Vec<WaitRecord>, ReadError> {
        let txn = self.begin_read()?;
        let waits = tables::read(&txn, tables::WAITS)?;
        let mut out = Vec::new();
        for row in waits.iter().at::<ReadError>(names::WAITS)? {
            let (k, v) = row.at::<ReadError>(names::WAITS)?;
            let record: WaitRecord =
                codec::decode(names::WAITS, v.value(), || k.value().to_string())?;
            if !waiting_only || record.is_waiting() {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The waits a signal instance satisfied (lineage).
    pub fn waits_of_signal(&self, name: &str, seq: u64) -> Result<Vec<String>, ReadError> {
        let txn = self.begin_read()?;
        let links = tables::read_multimap(&txn, tables::SIGNAL_WAITS)?;
        let mut out = Vec::new();
        for v in links
            .get((name, seq))
            .at::<ReadError>(names::SIGNAL_WAITS)?
        {
            out.push(v.at::<ReadError>(names::SIGNAL_WAITS)?.value().to_string());
        }
        Ok(out)
    }

    /// The subscriptions a signal instance matched (lineage), fired or not,
    /// sorted: its `signal_matches` rows and the subscriptions of the firings
    /// it fed (`signal_firing_links`; answers to waits, whose subscription field
    /// is `@<wait id>`, are not subscriptions and are left out). The ingest
    /// writes a `signal_matches` row only for a match no firing of the same
    /// transaction records (`joins::write_matches`).
    pub fn matches_of_signal(&self, name: &str, seq: u64) -> Result<Vec<String>, ReadError> {
        let mut out = std::collections::BTreeSet::new();
        let txn = self.begin_read()?;
        {
            let links = tables::read_multimap(&txn, tables::SIGNAL_MATCHES)?;
            for v in links
                .get((name, seq))
                .at::<ReadError>(names::SIGNAL_MATCHES)?
            {
                out.insert(
                    v.at::<ReadError>(names::SIGNAL_MATCHES)?
                        .value()
                        .to_string(),
                );
            }
        }
        // A firing that history retention deleted before its signal (their
        // clocks differ: the signal's receive time, the firing's creation
        // time) is left out, not an error: lineage near the retention edge
        // is what is left of it.
        let firings = tables::read(&txn, tables::FIRINGS)?;
        let links = tables::read(&txn, tables::SIGNAL_FIRINGS)?;
        for fid in tables::linked_firings::<ReadError>(&links, name, seq)? {
            let Some(g) = firings.get(fid.as_str()).at::<ReadError>(names::FIRINGS)? else {
                continue;
            };
            let head: SubscriptionOf =
                crate::codec::decode(names::FIRINGS, g.value(), || fid.clone())?;
            if !head.firing.subscription.starts_with('@') {
                out.insert(head.firing.subscription);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Moves wait `id` from waiting to `state` and writes its answer firing, in
    /// one transaction. Returns the settled record, or `None` when the wait does
    /// not exist or was already answered (nothing is written then).
    pub fn settle_wait(
        &self,
        id: &str,
        state: WaitState,
        answer: impl FnOnce(&WaitRecord) -> Firing,
    ) -> Result<Option<WaitRecord>, WaitError> {
        let txn = self.begin_write::<WaitError>()?;
        let settled = {
            let mut waits = crate::capture::write::<WaitError, _, _>(&txn, tables::WAITS)?;
            let mut links =
                crate::capture::write_multimap::<WaitError, _, _>(&txn, tables::SIGNAL_WAITS)?;
            let settled = settle_in::<WaitError>(&mut waits, &mut links, id, state)?;
            if let Some(record) = &settled {
                let mut meta = crate::capture::write::<WaitError, _, _>(&txn, tables::META)?;
                let first_seq = meta
                    .get(tables::META_FIRING_SEQ)
                    .at::<WaitError>(names::META)?
                    .map_or(0, |g| g.value());
                let mut firing_seq = first_seq;
                let mut fire = FiringTables::open::<WaitError>(&txn)?;
                fire.write::<WaitError>(&answer(record), None, &mut firing_seq)?;
                fire.finish::<WaitError>()?;
                if firing_seq != first_seq {
                    meta.insert(tables::META_FIRING_SEQ, firing_seq)
                        .at::<WaitError>(names::META)?;
                }
            }
            settled
        };
        if settled.is_some() {
            txn.commit::<WaitError>()?;
        } else {
            txn.abort::<WaitError>(names::WAITS)?;
        }
        Ok(settled)
    }
}

/// Settles a waiting record inside an open transaction (see [`Store::settle_wait`]).
pub(crate) fn settle_in<E: TableFailure + From<crate::error::Corrupt> + From<EncodeFailure>>(
    waits: &mut WriteTable<'_, &'static str, &'static [u8]>,
    links: &mut WriteMultimap<'_, (&'static str, u64), &'static str>,
    id: &str,
    state: WaitState,
) -> Result<Option<WaitRecord>, E> {
    let Some(mut record) = waits
        .get(id)
        .at::<E>(names::WAITS)?
        .map(|g| codec::decode::<WaitRecord>(names::WAITS, g.value(), || id.to_string()))
        .transpose()?
    else {
        return Ok(None);
    };
    if !record.is_waiting() {
        return Ok(None);
    }
    if let WaitState::Satisfied { signals, .. } = &state {
        for s in signals {
            links
                .insert((s.name.as_str(), s.seq), id)
                .at::<E>(names::SIGNAL_WAITS)?;
        }
    }
    record.state = state;
    let bytes = codec::encode(&record).map_err(|source| EncodeFailure {
        id: id.to_string(),
        source,
    })?;
    waits.insert(id, bytes.as_slice()).at::<E>(names::WAITS)?;
    Ok(Some(record))
}

/// A wait record could not be encoded (converted into each family's error).
#[derive(Debug)]
pub(crate) struct EncodeFailure {
    id: String,
    source: serde_json::Error,
}

impl From<EncodeFailure> for WaitError {
    fn from(e: EncodeFailure) -> Self {
        WaitError::Encode {
            id: e.id,
            source: e.source,
        }
    }
}

impl From<EncodeFailure> for IngestError {
    fn from(e: EncodeFailure) -> Self {
        IngestError::Encode {
            what: "wait record",
            source: e.source,
        }
    }
}

/// The part of a stored firing record that lineage's match list reads: its
/// firing's subscription (the rest of the JSON is skipped, not built).
#[derive(serde::Deserialize)]
struct SubscriptionOf {
    firing: FiringSubscription,
}

/// See [`SubscriptionOf`].
#[derive(serde::Deserialize)]
struct FiringSubscription {
    subscription: String,
}
