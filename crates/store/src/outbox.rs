//! Firings and the outbox: what the drain task reads, and its bookkeeping.
//!
//! A firing is written once, by the ingest transaction, in state
//! [`FiringState::Pending`] with an `outbox` row keyed by its `firing_seq` (a
//! store-wide counter, so the outbox is in creation order). The drain task reads
//! [`Store::pending`], publishes each firing with `Nats-Msg-Id: <firing id>`, and
//! calls [`Store::mark_delivered_seqs`] (or [`Store::mark_delivered`] by id),
//! which removes the outbox row and writes `delivered[firing_seq] = at_ms` in
//! one transaction. The firing's own row, JSON of a few hundred bytes, is not
//! read or rewritten on delivery (that was most of the cost of a delivery);
//! its stored state stays `Pending`, and every reader takes the state through
//! [`resolve`]: stored `Pending` without an outbox row is
//! [`FiringState::Delivered`] at the `delivered` row's time, with the
//! successful attempt counted. Rows written by schema-2 stores carry
//! `Delivered` themselves and are read as they are.
//!
//! Invariant: a firing is `Pending` iff its outbox row exists. A crash between
//! publish and `mark_delivered` leaves it pending, so it is published again after
//! a restart with the same id — harmless for a receiver that deduplicates by
//! `Nats-Msg-Id` (JetStream).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use signalbox_model::Firing;
use signalbox_model::json_write::{WriteJson, write_i64, write_u64};

use crate::capture::WriteTable;
use crate::codec;
use crate::error::{AtTable, Corrupt, OutboxError, ReadError, TableFailure};
use crate::store::Store;
use crate::tables::{self, names};

/// Delivery state of a firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum FiringState {
    /// In the outbox, not yet acknowledged by the target.
    Pending,
    /// Acknowledged by the target.
    Delivered {
        /// When it was marked delivered, ms since the Unix epoch.
        at_ms: i64,
    },
    /// Given up after repeated failures and published to the dead-letter subject
    /// (the reason is the record's `last_error`).
    DeadLettered {
        /// When, ms since the Unix epoch.
        at_ms: i64,
    },
}

/// A stored firing with its delivery state.
///
/// Its encoding is shared with [`RecordHead`] (bookkeeping) and
/// [`NewRecord`] (the ingest's write): same field names, same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringRecord {
    /// The firing as planned.
    pub firing: Firing,
    /// Pending or delivered.
    pub state: FiringState,
    /// Delivery attempts recorded: failed ones ([`Store::record_failed_attempts`])
    /// plus the successful one ([`Store::mark_delivered`]).
    pub attempts: u32,
    /// Store-wide creation order of the firing; its outbox key while pending.
    pub firing_seq: u64,
    /// The last delivery error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A [`FiringRecord`] whose firing stays raw JSON: what delivery bookkeeping
/// reads and writes back. Marking a firing delivered then copies the firing's
/// bytes instead of parsing them into a [`Firing`] and encoding that again,
/// which was most of the cost of a mark, paid while holding the store's write
/// lock. It decodes any stored record and encodes to the same JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RecordHead {
    firing: Box<serde_json::value::RawValue>,
    state: FiringState,
    attempts: u32,
    firing_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// A new record as the ingest writes it, borrowing its firing (no clone of
/// the firing just to encode it). Encodes exactly as the equal
/// [`FiringRecord`] would.
#[derive(Debug, Serialize)]
pub(crate) struct NewRecord<'a> {
    pub(crate) firing: &'a Firing,
    pub(crate) state: FiringState,
    pub(crate) attempts: u32,
    pub(crate) firing_seq: u64,
}

impl NewRecord<'_> {
    /// Appends the record's JSON, byte for byte what serde_json writes for
    /// it (and so for the equal [`FiringRecord`]), the firing written by
    /// `signalbox_model::json_write`. Returns where in `out` the firing's
    /// JSON is: the bytes [`Firing::message_bytes`] returns.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> std::ops::Range<usize> {
        out.extend_from_slice(b"{\"firing\":");
        let start = out.len();
        self.firing.write_json(out);
        let firing = start..out.len();
        out.extend_from_slice(b",\"state\":{\"state\":");
        let at = match self.state {
            FiringState::Pending => {
                out.extend_from_slice(b"\"pending\"");
                None
            }
            FiringState::Delivered { at_ms } => {
                out.extend_from_slice(b"\"delivered\"");
                Some(at_ms)
            }
            FiringState::DeadLettered { at_ms } => {
                out.extend_from_slice(b"\"dead_lettered\"");
                Some(at_ms)
            }
        };
        if let Some(at_ms) = at {
            out.extend_from_slice(b",\"at_ms\":");
            write_i64(out, at_ms);
        }
        out.extend_from_slice(b"},\"attempts\":");
        write_u64(out, u64::from(self.attempts));
        out.extend_from_slice(b",\"firing_seq\":");
        write_u64(out, self.firing_seq);
        out.push(b'}');
        firing
    }
}

impl Store {
    /// The firing with this id.
    pub fn firing(&self, firing_id: &str) -> Result<Option<FiringRecord>, ReadError> {
        let txn = self.begin_read()?;
        Records::open(&txn)?.get(firing_id)
    }

    /// Up to `limit` undelivered firings, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<Firing>, ReadError> {
        Ok(self
            .pending_after(None, limit)?
            .into_iter()
            .map(|(_, firing)| firing)
            .collect())
    }

    /// Up to `limit` undelivered firings whose `firing_seq` is greater than
    /// `after` (all of them for `None`), oldest first, each with its
    /// `firing_seq`. A drainer with firings still in flight passes the last
    /// seq it read, so that it reads on without taking those again: new
    /// firings always get a greater seq than every stored one.
    pub fn pending_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Firing)>, ReadError> {
        let txn = self.begin_read()?;
        let outbox = tables::read(&txn, tables::OUTBOX)?;
        let firings = tables::read(&txn, tables::FIRINGS)?;
        let rows = match after {
            None => outbox.range::<u64>(..),
            Some(after) => match after.checked_add(1) {
                Some(from) => outbox.range::<u64>(from..),
                None => return Ok(Vec::new()),
            },
        }
        .at::<ReadError>(names::OUTBOX)?;
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (k, v) = row.at::<ReadError>(names::OUTBOX)?;
            let record =
                read_record::<ReadError, FiringRecord>(&firings, v.value())?.ok_or_else(|| {
                    Corrupt {
                        table: names::OUTBOX,
                        key: k.value().to_string(),
                        reason: format!("names firing {} which does not exist", v.value()),
                    }
                })?;
            out.push((k.value(), record.firing));
        }
        Ok(out)
    }

    /// Marks these firings delivered at `at_ms`: removes their outbox rows and
    /// records the time, in one transaction. A firing already delivered is left
    /// as it is; an unknown id fails the whole call ([`OutboxError::UnknownFiring`]).
    /// The drainer, which knows each firing's `firing_seq`, calls
    /// [`Store::mark_delivered_seqs`] and skips reading the records.
    pub fn mark_delivered(&self, firing_ids: &[String], at_ms: i64) -> Result<(), OutboxError> {
        if firing_ids.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write_lazy::<OutboxError>()?;
        {
            let firings = crate::capture::write::<OutboxError, _, _>(&txn, tables::FIRINGS)?;
            let mut outbox = crate::capture::write::<OutboxError, _, _>(&txn, tables::OUTBOX)?;
            let mut delivered =
                crate::capture::write::<OutboxError, _, _>(&txn, tables::DELIVERED)?;
            for fid in firing_ids {
                let record = read_record::<OutboxError, RecordHead>(&*firings, fid)?
                    .ok_or_else(|| OutboxError::UnknownFiring(fid.clone()))?;
                deliver(&mut outbox, &mut delivered, record.firing_seq, fid, at_ms)?;
            }
        }
        txn.commit::<OutboxError>()
    }

    /// Marks the firings `(firing_seq, firing_id)` delivered at `at_ms`: removes
    /// each outbox row and writes its `delivered` row, in one lazy
    /// transaction, without reading or rewriting the firing records. A firing
    /// no longer in the outbox (delivered or dead-lettered before) is left as
    /// it is; an outbox row that names another firing is
    /// [`OutboxError::Corrupt`] and fails the whole call.
    pub fn mark_delivered_seqs(
        &self,
        firings: &[(u64, String)],
        at_ms: i64,
    ) -> Result<(), OutboxError> {
        if firings.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write_lazy::<OutboxError>()?;
        {
            let mut outbox = crate::capture::write::<OutboxError, _, _>(&txn, tables::OUTBOX)?;
            let mut delivered =
                crate::capture::write::<OutboxError, _, _>(&txn, tables::DELIVERED)?;
            // In seq order: one `retain_in` pass over the outbox rows, then
            // the `delivered` rows through one cursor (a pass's firings are
            // usually consecutive seqs at the head of the outbox).
            let mut order: Vec<&(u64, String)> = firings.iter().collect();
            order.sort_unstable_by_key(|(seq, _)| *seq);
            order.dedup_by_key(|(seq, _)| *seq);
            let seqs: Vec<u64> = order.iter().map(|(seq, _)| *seq).collect();
            let mut gone = vec![false; seqs.len()];
            let mut other = String::new();
            if let Some(index) = outbox
                .remove_ascending(&seqs, |i, named| {
                    gone[i] = true;
                    if named == order[i].1 {
                        return true;
                    }
                    other = named.to_string();
                    false
                })
                .at::<OutboxError>(names::OUTBOX)?
            {
                let (seq, fid) = order[index];
                return Err(names_another(*seq, &other, fid));
            }
            // Only firings that were still in the outbox become delivered.
            delivered
                .insert_ascending(
                    seqs.iter()
                        .zip(&gone)
                        .filter(|(_, gone)| **gone)
                        .map(|(seq, _)| (*seq, at_ms)),
                )
                .at::<OutboxError>(names::DELIVERED)?;
        }
        txn.commit::<OutboxError>()
    }

    /// Counts one failed delivery attempt for each of these pending firings
    /// (delivered ones are left as they are). They stay in the outbox.
    pub fn record_failed_attempts(&self, firing_ids: &[String]) -> Result<(), OutboxError> {
        self.update_firings(firing_ids, Commit::Lazy, |record| {
            if record.state != FiringState::Pending {
                return false;
            }
            record.attempts = record.attempts.saturating_add(1);
            true
        })
    }

    /// Counts one failed delivery attempt of a pending firing and keeps its
    /// error; returns the record as it now stands (`None`: not pending).
    pub fn record_failure(
        &self,
        firing_id: &str,
        error: &str,
    ) -> Result<Option<FiringRecord>, OutboxError> {
        let mut after = None;
        self.update_firings(&[firing_id.to_string()], Commit::Lazy, |record| {
            if record.state != FiringState::Pending {
                return false;
            }
            record.attempts = record.attempts.saturating_add(1);
            record.last_error = Some(error.to_string());
            after = Some(record.to_record(firing_id));
            true
        })?;
        after.transpose()
    }

    /// Moves pending firings out of the outbox as dead-lettered at `at_ms`.
    pub fn mark_dead_lettered(&self, firing_ids: &[String], at_ms: i64) -> Result<(), OutboxError> {
        self.update_firings(firing_ids, Commit::Durable, |record| {
            if record.state != FiringState::Pending {
                return false;
            }
            record.state = FiringState::DeadLettered { at_ms };
            true
        })
    }

    /// Applies `change` to each firing's record, its firing left raw
    /// ([`RecordHead`]); `change` returns whether it changed anything. Keeps
    /// the outbox in step with the state.
    fn update_firings(
        &self,
        firing_ids: &[String],
        commit: Commit,
        mut change: impl FnMut(&mut RecordHead) -> bool,
    ) -> Result<(), OutboxError> {
        if firing_ids.is_empty() {
            return Ok(());
        }
        let txn = match commit {
            Commit::Lazy => self.begin_write_lazy::<OutboxError>()?,
            Commit::Durable => self.begin_write::<OutboxError>()?,
        };
        {
            let mut firings = crate::capture::write::<OutboxError, _, _>(&txn, tables::FIRINGS)?;
            let mut outbox = crate::capture::write::<OutboxError, _, _>(&txn, tables::OUTBOX)?;
            let delivered = crate::capture::write::<OutboxError, _, _>(&txn, tables::DELIVERED)?;
            for fid in firing_ids {
                let mut record = read_record::<OutboxError, RecordHead>(&*firings, fid)?
                    .ok_or_else(|| OutboxError::UnknownFiring(fid.clone()))?;
                (record.state, record.attempts) = resolve::<OutboxError>(
                    record.state,
                    record.attempts,
                    record.firing_seq,
                    fid,
                    &*outbox,
                    &*delivered,
                )?;
                if !change(&mut record) {
                    continue;
                }
                if record.state != FiringState::Pending {
                    outbox
                        .remove(record.firing_seq)
                        .at::<OutboxError>(names::OUTBOX)?;
                }
                let bytes = codec::encode(&record).map_err(|source| OutboxError::Encode {
                    firing_id: fid.clone(),
                    source,
                })?;
                firings
                    .insert(fid.as_str(), bytes.as_slice())
                    .at::<OutboxError>(names::FIRINGS)?;
            }
        }
        txn.commit::<OutboxError>()
    }

    /// The last `limit` firings of a subscription, newest first (all versions).
    pub fn firings_for(
        &self,
        subscription: &str,
        limit: usize,
    ) -> Result<Vec<FiringRecord>, ReadError> {
        let txn = self.begin_read()?;
        let index = tables::read(&txn, tables::SUBSCRIPTION_FIRINGS)?;
        let records = Records::open(&txn)?;
        let mut out = Vec::new();
        let rows = index
            .range((subscription, 0)..=(subscription, u64::MAX))
            .at::<ReadError>(names::SUBSCRIPTION_FIRINGS)?;
        for row in rows.rev().take(limit) {
            let (k, v) = row.at::<ReadError>(names::SUBSCRIPTION_FIRINGS)?;
            let record = records.get(v.value())?.ok_or_else(|| Corrupt {
                table: names::SUBSCRIPTION_FIRINGS,
                key: format!("{:?}", k.value()),
                reason: format!("names firing {} which does not exist", v.value()),
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// The firings that signal instance `(name, seq)` fed (lineage), by firing
    /// id; one that history retention already deleted is left out.
    pub fn firings_of_signal(&self, name: &str, seq: u64) -> Result<Vec<FiringRecord>, ReadError> {
        firings_of_signal_in(&self.begin_read()?, name, seq)
    }
}

/// [`Store::firings_of_signal`] in an open read transaction.
pub(crate) fn firings_of_signal_in(
    txn: &redb::ReadTransaction,
    name: &str,
    seq: u64,
) -> Result<Vec<FiringRecord>, ReadError> {
    let records = Records::open(txn)?;
    let mut out = Vec::new();
    let links = tables::read(txn, tables::SIGNAL_FIRINGS)?;
    for fid in tables::linked_firings::<ReadError>(&links, name, seq)? {
        // A firing history retention deleted before its signal (by its own
        // creation time) leaves its link until the signal goes: skipped.
        if let Some(record) = records.get(&fid)? {
            out.push(record);
        }
    }
    Ok(out)
}

impl RecordHead {
    /// The full record, its firing parsed (for the rare caller that needs it).
    fn to_record(&self, firing_id: &str) -> Result<FiringRecord, OutboxError> {
        let firing = serde_json::from_str(self.firing.get()).map_err(|e| Corrupt {
            table: names::FIRINGS,
            key: firing_id.to_string(),
            reason: format!("bad JSON: {e}"),
        })?;
        Ok(FiringRecord {
            firing,
            state: self.state,
            attempts: self.attempts,
            firing_seq: self.firing_seq,
            last_error: self.last_error.clone(),
        })
    }
}

/// Moves firing `(seq, fid)` from the outbox to `delivered` at `at_ms`; a
/// firing no longer in the outbox is left as it is.
fn deliver(
    outbox: &mut WriteTable<'_, u64, &'static str>,
    delivered: &mut WriteTable<'_, u64, i64>,
    seq: u64,
    fid: &str,
    at_ms: i64,
) -> Result<(), OutboxError> {
    let Some(named) = outbox
        .remove(seq)
        .at::<OutboxError>(names::OUTBOX)?
        .map(|g| g.value().to_string())
    else {
        return Ok(());
    };
    if named != fid {
        return Err(names_another(seq, &named, fid));
    }
    delivered
        .insert(seq, at_ms)
        .at::<OutboxError>(names::DELIVERED)?;
    Ok(())
}

/// The error for outbox row `seq` naming firing `named` where `fid` was
/// expected.
fn names_another(seq: u64, named: &str, fid: &str) -> OutboxError {
    Corrupt {
        table: names::OUTBOX,
        key: seq.to_string(),
        reason: format!("names firing {named}, not {fid}"),
    }
    .into()
}

/// The tables a firing's record and state are read from, in one read
/// transaction.
pub(crate) struct Records {
    firings: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    outbox: redb::ReadOnlyTable<u64, &'static str>,
    delivered: redb::ReadOnlyTable<u64, i64>,
}

impl Records {
    /// Opens the three tables in `txn`.
    pub(crate) fn open(txn: &redb::ReadTransaction) -> Result<Self, ReadError> {
        Ok(Records {
            firings: tables::read(txn, tables::FIRINGS)?,
            outbox: tables::read(txn, tables::OUTBOX)?,
            delivered: tables::read(txn, tables::DELIVERED)?,
        })
    }

    /// The record of `firing_id` with its state resolved ([`resolve`]).
    pub(crate) fn get(&self, firing_id: &str) -> Result<Option<FiringRecord>, ReadError> {
        let Some(mut record) = read_record::<ReadError, FiringRecord>(&self.firings, firing_id)?
        else {
            return Ok(None);
        };
        (record.state, record.attempts) = resolve::<ReadError>(
            record.state,
            record.attempts,
            record.firing_seq,
            firing_id,
            &self.outbox,
            &self.delivered,
        )?;
        Ok(Some(record))
    }
}

/// The delivery state and attempt count of a record stored with `state` and
/// `attempts`: as stored, unless it is stored `Pending` and its outbox row is
/// gone, which is a delivery recorded in `delivered` (the successful attempt
/// is counted there, not in the row). A stored `Pending` firing with neither
/// row is [`Corrupt`].
pub(crate) fn resolve<E: TableFailure + From<Corrupt>>(
    state: FiringState,
    attempts: u32,
    firing_seq: u64,
    firing_id: &str,
    outbox: &impl ReadableTable<u64, &'static str>,
    delivered: &impl ReadableTable<u64, i64>,
) -> Result<(FiringState, u32), E> {
    if state != FiringState::Pending
        || outbox
            .get(firing_seq)
            .at::<E>(names::OUTBOX)?
            .is_some_and(|g| g.value() == firing_id)
    {
        return Ok((state, attempts));
    }
    match delivered.get(firing_seq).at::<E>(names::DELIVERED)? {
        Some(at) => Ok((
            FiringState::Delivered { at_ms: at.value() },
            attempts.saturating_add(1),
        )),
        None => Err(Corrupt {
            table: names::FIRINGS,
            key: firing_id.to_string(),
            reason: format!(
                "pending, but neither its outbox row nor a delivered row (firing_seq {firing_seq}) exists"
            ),
        }
        .into()),
    }
}

/// Reads and decodes one firing record from an open `firings` table.
fn read_record<E: TableFailure + From<Corrupt>, R: serde::de::DeserializeOwned>(
    firings: &impl ReadableTable<&'static str, &'static [u8]>,
    firing_id: &str,
) -> Result<Option<R>, E> {
    let Some(guard) = firings.get(firing_id).at::<E>(names::FIRINGS)? else {
        return Ok(None);
    };
    let record = codec::decode(names::FIRINGS, guard.value(), || firing_id.to_string())?;
    Ok(Some(record))
}

/// Whether a bookkeeping write may skip the fsync (`store.rs`: lazy commits).
#[derive(Debug, Clone, Copy)]
enum Commit {
    /// Delivery bookkeeping: losing it republishes a firing, which is harmless.
    Lazy,
    /// Everything else.
    Durable,
}

#[cfg(test)]
mod tests {
    //! The three views of a stored record encode alike, so that bookkeeping
    //! through [`RecordHead`] changes only the delivery fields.

    use super::*;
    use signalbox_model::{ActionKind, SignalRef};

    fn record() -> FiringRecord {
        let mut params = signalbox_model::Map::new();
        params.insert(
            "n".into(),
            signalbox_model::Value::String("7 \"quoted\" é".into()),
        );
        params.insert("f".into(), signalbox_model::Value::Float(2.5));
        FiringRecord {
            firing: Firing {
                firing_id: "f-1".into(),
                subscription: "s".into(),
                version: 2,
                action: ActionKind::Trigger,
                subject: "runs.s".into(),
                params: params.clone(),
                signals: vec![SignalRef {
                    alias: "t".into(),
                    name: "table".into(),
                    id: "x".into(),
                    seq: 4,
                    params: Some(params.clone()),
                    payload: Some(serde_json::json!({"b": [1, 2.5, null], "a": true})),
                }],
                created_at_ms: 1_700_000_000_000,
                traceparent: Some("00-abc-def-01".into()),
            },
            state: FiringState::Pending,
            attempts: 0,
            firing_seq: 9,
            last_error: None,
        }
    }

    #[test]
    fn a_new_record_encodes_as_the_full_record() {
        let full = record();
        let new = NewRecord {
            firing: &full.firing,
            state: full.state,
            attempts: full.attempts,
            firing_seq: full.firing_seq,
        };
        assert_eq!(
            codec::encode(&new).expect("encode"),
            codec::encode(&full).expect("encode")
        );
    }

    #[test]
    fn a_new_record_written_directly_is_what_serde_writes() {
        let full = record();
        for state in [
            FiringState::Pending,
            FiringState::Delivered { at_ms: 5 },
            FiringState::DeadLettered { at_ms: -7 },
        ] {
            let new = NewRecord {
                firing: &full.firing,
                state,
                attempts: 4_000_000_000,
                firing_seq: u64::MAX,
            };
            let mut firing = 0..0;
            let direct = codec::encode_with(0, |out| firing = new.write_json(out));
            assert_eq!(
                direct.get(firing),
                Some(full.firing.message_bytes().as_slice())
            );
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&codec::encode(&new).expect("encode"))
            );
        }
    }

    #[test]
    fn the_head_keeps_the_firing_and_changes_only_delivery_fields() {
        let full = record();
        let bytes = codec::encode(&full).expect("encode");
        let mut head: RecordHead = codec::decode("firings", &bytes, || "f-1".into()).expect("head");
        assert_eq!(
            codec::encode(&head).expect("encode"),
            bytes,
            "unchanged head"
        );
        head.state = FiringState::Delivered { at_ms: 5 };
        head.attempts = 3;
        head.last_error = Some("timed out".into());
        let back: FiringRecord =
            codec::decode("firings", &codec::encode(&head).expect("encode"), || {
                "f-1".into()
            })
            .expect("full");
        let mut expected = full;
        expected.state = FiringState::Delivered { at_ms: 5 };
        expected.attempts = 3;
        expected.last_error = Some("timed out".into());
        assert_eq!(back, expected);
    }
}
