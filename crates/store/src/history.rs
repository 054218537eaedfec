//! History retention: signal instances, firings, waits and their lineage older
//! than the history retention are deleted, so the file does not grow without
//! bound (docs/DESIGN.md section 5: "lineage never grows without limit").
//!
//! Invariants kept: `signal_seq` is never reduced (a seq is never reused); a
//! firing still `pending` in the outbox is never deleted, nor a wait still
//! waiting; a join offer whose instance is deleted is deleted with it (an offer
//! never points at a missing instance). Deletion walks each name's instances and
//! each subscription's firings from the oldest, stopping at the first one inside
//! the retention, so the work is proportional to what is removed, plus one scan
//! of `join_offers` and `waits`.
//!
//! Dedup retention lives here too: a signal's dedup entry is its `signal_ids`
//! row, which expires by its time alone (ingest compares it with the dedup
//! retention) and is deleted with its instance. So history is kept at least as
//! long as the dedup retention: a shorter history retention is raised to it,
//! or an instance's deletion would forget a dedup entry that is still live.

use redb::ReadableTable;
use signalbox_model::{SignalInstance, WaitRecord};

use crate::codec;
use crate::error::{AtTable, CompactError};
use crate::outbox::{FiringRecord, FiringState};
use crate::store::Store;
use crate::tables::{self, names};

/// What one history compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryCompaction {
    /// Signal instances deleted.
    pub signals: usize,
    /// Firings deleted (delivered or dead-lettered ones only).
    pub firings: usize,
    /// Answered waits deleted.
    pub waits: usize,
    /// Join offers deleted with their instances.
    pub offers: usize,
}

impl Store {
    /// Deletes history received (signals), created (firings) or registered
    /// (waits) before `now_ms - retention`, where the retention is
    /// `retention_ms` or the dedup retention, whichever is longer.
    pub fn compact_history(
        &self,
        now_ms: i64,
        retention_ms: i64,
    ) -> Result<HistoryCompaction, CompactError> {
        let floor = now_ms.saturating_sub(retention_ms.max(self.options.retention_ms()));
        let mut out = HistoryCompaction::default();
        let txn = self.begin_write::<CompactError>()?;
        {
            let seqs = crate::capture::write::<CompactError, _, _>(&txn, tables::SIGNAL_SEQ)?;
            let mut signals = crate::capture::write::<CompactError, _, _>(&txn, tables::SIGNALS)?;
            let mut ids = crate::capture::write::<CompactError, _, _>(&txn, tables::SIGNAL_IDS)?;
            let mut signal_firings =
                crate::capture::write::<CompactError, _, _>(&txn, tables::SIGNAL_FIRINGS)?;
            let mut signal_waits =
                crate::capture::write_multimap::<CompactError, _, _>(&txn, tables::SIGNAL_WAITS)?;
            let mut signal_matches =
                crate::capture::write_multimap::<CompactError, _, _>(&txn, tables::SIGNAL_MATCHES)?;
            let name_list: Vec<String> = seqs
                .iter()
                .at::<CompactError>(names::SIGNAL_SEQ)?
                .filter_map(Result::ok)
                .map(|(k, _)| k.value().to_string())
                .collect();
            for name in &name_list {
                let mut old: Vec<(u64, String)> = Vec::new();
                for row in signals
                    .range((name.as_str(), 0)..=(name.as_str(), u64::MAX))
                    .at::<CompactError>(names::SIGNALS)?
                {
                    let (k, v) = row.at::<CompactError>(names::SIGNALS)?;
                    let seq = k.value().1;
                    let inst: SignalInstance =
                        codec::decode(names::SIGNALS, v.value(), || format!("{name}#{seq}"))
                            .map_err(CompactError::Corrupt)?;
                    if inst.received_at_ms >= floor {
                        break;
                    }
                    old.push((seq, inst.id));
                }
                for (seq, id) in old {
                    signals
                        .remove((name.as_str(), seq))
                        .at::<CompactError>(names::SIGNALS)?;
                    let points_here = ids
                        .get((name.as_str(), id.as_str()))
                        .at::<CompactError>(names::SIGNAL_IDS)?
                        .is_some_and(|g| g.value().0 == seq);
                    if points_here {
                        ids.remove((name.as_str(), id.as_str()))
                            .at::<CompactError>(names::SIGNAL_IDS)?;
                    }
                    let links = tables::linked_firings::<CompactError>(
                        &*signal_firings,
                        name.as_str(),
                        seq,
                    )?;
                    for fid in links {
                        signal_firings
                            .remove((name.as_str(), seq, fid.as_str()))
                            .at::<CompactError>(names::SIGNAL_FIRINGS)?;
                    }
                    signal_waits
                        .remove_all((name.as_str(), seq))
                        .at::<CompactError>(names::SIGNAL_WAITS)?;
                    signal_matches
                        .remove_all((name.as_str(), seq))
                        .at::<CompactError>(names::SIGNAL_MATCHES)?;
                    out.signals += 1;
                }
            }

            // Join offers whose instance is older than the floor.
            let mut offers =
                crate::capture::write::<CompactError, _, _>(&txn, tables::JOIN_OFFERS)?;
            let mut doomed = Vec::new();
            for row in offers.iter().at::<CompactError>(names::JOIN_OFFERS)? {
                let (k, v) = row.at::<CompactError>(names::JOIN_OFFERS)?;
                let (sub, version, key, alias, seq) = k.value();
                #[derive(serde::Deserialize)]
                struct Offer {
                    received_at_ms: i64,
                }
                let offer: Offer = codec::decode(names::JOIN_OFFERS, v.value(), || {
                    format!("{sub}/{version}/{key}/{alias}/{seq}")
                })
                .map_err(CompactError::Corrupt)?;
                if offer.received_at_ms < floor {
                    doomed.push((
                        sub.to_string(),
                        version,
                        key.to_string(),
                        alias.to_string(),
                        seq,
                    ));
                }
            }
            for (sub, version, key, alias, seq) in doomed {
                offers
                    .remove((sub.as_str(), version, key.as_str(), alias.as_str(), seq))
                    .at::<CompactError>(names::JOIN_OFFERS)?;
                out.offers += 1;
            }

            // Firings that are no longer pending, oldest first per subscription.
            let mut firings = crate::capture::write::<CompactError, _, _>(&txn, tables::FIRINGS)?;
            let mut by_sub =
                crate::capture::write::<CompactError, _, _>(&txn, tables::SUBSCRIPTION_FIRINGS)?;
            let outbox = crate::capture::write::<CompactError, _, _>(&txn, tables::OUTBOX)?;
            let mut delivered =
                crate::capture::write::<CompactError, _, _>(&txn, tables::DELIVERED)?;
            let mut old: Vec<(String, u64, String)> = Vec::new();
            let mut current: Option<String> = None;
            let mut stop_sub = false;
            for row in by_sub
                .iter()
                .at::<CompactError>(names::SUBSCRIPTION_FIRINGS)?
            {
                let (k, v) = row.at::<CompactError>(names::SUBSCRIPTION_FIRINGS)?;
                let (sub, fseq) = k.value();
                if current.as_deref() != Some(sub) {
                    current = Some(sub.to_string());
                    stop_sub = false;
                }
                if stop_sub {
                    continue;
                }
                let fid = v.value().to_string();
                let Some(g) = firings
                    .get(fid.as_str())
                    .at::<CompactError>(names::FIRINGS)?
                else {
                    old.push((sub.to_string(), fseq, fid));
                    continue;
                };
                let record: FiringRecord = codec::decode(names::FIRINGS, g.value(), || fid.clone())
                    .map_err(CompactError::Corrupt)?;
                if record.firing.created_at_ms >= floor {
                    stop_sub = true;
                    continue;
                }
                // Pending iff its outbox row exists (`outbox` module docs).
                if record.state != FiringState::Pending
                    || outbox
                        .get(record.firing_seq)
                        .at::<CompactError>(names::OUTBOX)?
                        .is_none()
                {
                    old.push((sub.to_string(), fseq, fid));
                }
            }
            for (sub, fseq, fid) in old {
                by_sub
                    .remove((sub.as_str(), fseq))
                    .at::<CompactError>(names::SUBSCRIPTION_FIRINGS)?;
                delivered
                    .remove(fseq)
                    .at::<CompactError>(names::DELIVERED)?;
                if firings
                    .remove(fid.as_str())
                    .at::<CompactError>(names::FIRINGS)?
                    .is_some()
                {
                    out.firings += 1;
                }
            }

            // Answered waits registered before the floor.
            let mut waits = crate::capture::write::<CompactError, _, _>(&txn, tables::WAITS)?;
            let mut gone = Vec::new();
            for row in waits.iter().at::<CompactError>(names::WAITS)? {
                let (k, v) = row.at::<CompactError>(names::WAITS)?;
                let id = k.value().to_string();
                let record: WaitRecord = codec::decode(names::WAITS, v.value(), || id.clone())
                    .map_err(CompactError::Corrupt)?;
                if !record.is_waiting() && record.registered_at_ms < floor {
                    gone.push(id);
                }
            }
            for id in gone {
                waits.remove(id.as_str()).at::<CompactError>(names::WAITS)?;
                out.waits += 1;
            }
        }
        txn.commit::<CompactError>()?;
        Ok(out)
    }
}
