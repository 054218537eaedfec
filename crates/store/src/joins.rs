//! Partial-join state: signal instances that matched one side of a join and wait
//! for the other sides, and the consumption of a complete join.
//!
//! A row of `join_offers` is `(subscription, version, join key, alias, seq)`: the
//! instance `seq` of the alias's signal matched its side and carries `join key`
//! (the canonical rendering of its `join.on` values). Invariants:
//! - [`PlanContext::offer`] runs inside the ingest transaction, so an offer and
//!   the firing of the join it completes commit together or not at all;
//! - among the live offers of each alias with the same key, the one with the
//!   lowest seq is consumed first (deterministic); a consumed offer is deleted,
//!   so each instance joins at most once per subscription version;
//! - an offer older than `within` (relative to the arriving instance's receive
//!   time) is expired: it is deleted when met and never joins;
//! - offers exist only for a subscription's current version: a new version or a
//!   delete removes the old ones ([`drop_offers`]).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use signalbox_model::{SignalInstance, SignalRef, WaitState};

use crate::capture::{WriteMultimap, WriteTable, WriteTxn};
use crate::codec;
use crate::error::{AtTable, IngestError, ReadError, TableFailure};
use crate::signal_rows::SignalRows;
use crate::store::Store;
use crate::tables::{self, names};

/// The stored value of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OfferValue {
    name: String,
    received_at_ms: i64,
    /// The instance itself, when it is stored in another partition (group
    /// mode: a join's state lives in the join's partition, each side's
    /// instance in its name's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<SignalInstance>,
}

/// One side of a join, offered by an arriving instance.
#[derive(Debug, Clone, Copy)]
pub struct JoinOffer<'a> {
    /// Subscription id.
    pub subscription: &'a str,
    /// Subscription version.
    pub version: u64,
    /// Canonical join key of the instance.
    pub key: &'a str,
    /// The alias whose pattern the instance matched.
    pub alias: &'a str,
    /// Every alias of the subscription, in its signal order.
    pub aliases: &'a [String],
    /// How long a partial join waits, if bounded.
    pub within_ms: Option<u64>,
}

/// A partial join as [`Store::pending_joins`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffer {
    /// The join key.
    pub key: String,
    /// The alias of the waiting instance.
    pub alias: String,
    /// Its signal name.
    pub name: String,
    /// Its seq.
    pub seq: u64,
    /// When it was received.
    pub received_at_ms: i64,
}

/// What the plan may do in the open ingest transaction besides returning
/// firings: offer join sides and answer waits.
pub struct PlanContext<'a, 't> {
    pub(crate) offers:
        &'a mut WriteTable<'t, (&'static str, u64, &'static str, &'static str, u64), &'static [u8]>,
    pub(crate) signals: &'a mut SignalRows<'t>,
    pub(crate) waits: &'a mut WriteTable<'t, &'static str, &'static [u8]>,
    pub(crate) signal_waits: &'a mut WriteMultimap<'t, (&'static str, u64), &'static str>,
    pub(crate) signal_matches: &'a mut WriteMultimap<'t, (&'static str, u64), &'static str>,
    /// Matches recorded by [`PlanContext::record_match`], written by the
    /// transaction once it knows the firings ([`write_matches`]).
    pub(crate) matched: Vec<Matched>,
    pub(crate) error: Option<IngestError>,
}

/// One recorded match: instance `(name, seq)` matched `subscription`.
pub(crate) struct Matched {
    name: String,
    seq: u64,
    subscription: String,
}

/// Writes the `signal_matches` rows of `matched`, except those a firing
/// written in the same transaction already records: a firing of the same
/// subscription that has a `signal_firing_links` row for the instance (it is the
/// firing's trigger or one of its inputs). Lineage reads both tables
/// ([`Store::matches_of_signal`]), so the match is listed either way; the
/// common case, a subscription that fires on the signal, then costs one
/// lineage row instead of two.
pub(crate) fn write_matches<'f>(
    signal_matches: &mut WriteMultimap<'_, (&'static str, u64), &'static str>,
    matched: Vec<Matched>,
    trigger: Option<(&str, u64)>,
    written: impl Iterator<Item = &'f signalbox_model::Firing> + Clone,
) -> Result<(), IngestError> {
    for m in matched {
        let recorded = written.clone().any(|f| {
            f.subscription == m.subscription
                && (trigger == Some((m.name.as_str(), m.seq))
                    || f.signals.iter().any(|i| i.name == m.name && i.seq == m.seq))
        });
        if !recorded {
            signal_matches
                .insert((m.name.as_str(), m.seq), m.subscription.as_str())
                .at::<IngestError>(names::SIGNAL_MATCHES)?;
        }
    }
    Ok(())
}

impl PlanContext<'_, '_> {
    /// Like [`PlanContext::offer`] for an instance stored elsewhere (another
    /// partition of a group): the offer keeps the instance itself. An offer
    /// this store took before (by subscription, alias, name and seq) is not
    /// taken again — a redelivered offer never joins twice — which is
    /// recorded in `signal_matches` as `<subscription>#<alias>`.
    pub fn offer_carried(
        &mut self,
        offer: JoinOffer<'_>,
        instance: &SignalInstance,
    ) -> Option<Vec<(String, SignalInstance)>> {
        if self.error.is_some() {
            return None;
        }
        let marker = format!("{}#{}", offer.subscription, offer.alias);
        let key = (instance.signal.name.as_str(), instance.seq);
        match self
            .signal_matches
            .insert(key, marker.as_str())
            .at::<IngestError>(names::SIGNAL_MATCHES)
        {
            // Taken before: a redelivered offer.
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        }
        match self.try_offer_with(offer, instance, true) {
            Ok(done) => done,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Records `instance` as an offer for its alias and, if every alias now has
    /// a live offer with the same key, consumes the earliest of each and returns
    /// them in `aliases` order. `None` while the join is still partial (or after
    /// a storage error, which fails the whole ingest transaction).
    pub fn offer(
        &mut self,
        offer: JoinOffer<'_>,
        instance: &SignalInstance,
    ) -> Option<Vec<(String, SignalInstance)>> {
        if self.error.is_some() {
            return None;
        }
        match self.try_offer(offer, instance) {
            Ok(done) => done,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn try_offer(
        &mut self,
        o: JoinOffer<'_>,
        instance: &SignalInstance,
    ) -> Result<Option<Vec<(String, SignalInstance)>>, IngestError> {
        self.try_offer_with(o, instance, false)
    }

    fn try_offer_with(
        &mut self,
        o: JoinOffer<'_>,
        instance: &SignalInstance,
        carried: bool,
    ) -> Result<Option<Vec<(String, SignalInstance)>>, IngestError> {
        let value = codec::encode(&OfferValue {
            name: instance.signal.name.clone(),
            received_at_ms: instance.received_at_ms,
            instance: carried.then(|| instance.clone()),
        })
        .map_err(|source| IngestError::Encode {
            what: "join offer",
            source,
        })?;
        self.offers
            .insert(
                (o.subscription, o.version, o.key, o.alias, instance.seq),
                value.as_slice(),
            )
            .at::<IngestError>(names::JOIN_OFFERS)?;
        let horizon = o.within_ms.map(|w| {
            instance
                .received_at_ms
                .saturating_sub(i64::try_from(w).unwrap_or(i64::MAX))
        });
        let mut chosen = Vec::with_capacity(o.aliases.len());
        for alias in o.aliases {
            match self.earliest(o, alias, horizon)? {
                Some(found) => chosen.push((alias.clone(), found)),
                None => return Ok(None),
            }
        }
        let mut complete = Vec::with_capacity(chosen.len());
        for (alias, (seq, value)) in chosen {
            self.offers
                .remove((o.subscription, o.version, o.key, alias.as_str(), seq))
                .at::<IngestError>(names::JOIN_OFFERS)?;
            let inst = match value.instance {
                Some(carried) => carried,
                None => self.load(&value.name, seq)?,
            };
            complete.push((alias, inst));
        }
        Ok(Some(complete))
    }

    /// Marks wait `id` satisfied by `signals` if it is still waiting, with
    /// lineage rows; returns whether it was (the caller then returns the wait's
    /// answer firing). A wait answered earlier — in this batch or before — is
    /// left as it is: a wait is answered exactly once.
    pub fn satisfy_wait(&mut self, id: &str, signals: &[SignalRef], at_ms: i64) -> bool {
        if self.error.is_some() {
            return false;
        }
        match crate::waits::settle_in::<IngestError>(
            self.waits,
            self.signal_waits,
            id,
            WaitState::Satisfied {
                at_ms,
                signals: signals.to_vec(),
            },
        ) {
            Ok(settled) => settled.is_some(),
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    /// Records in lineage that `instance` matched `subscription` (whether or
    /// not it fired). The row is written when the plan is done
    /// ([`write_matches`]), in the same transaction.
    pub fn record_match(&mut self, instance: &SignalInstance, subscription: &str) {
        self.matched.push(Matched {
            name: instance.signal.name.clone(),
            seq: instance.seq,
            subscription: subscription.to_string(),
        });
    }

    /// Stored instances of `name` with seq greater than `after_seq`, ascending,
    /// at most `limit` (read inside the open transaction, so nothing committed
    /// by a concurrent ingest can slip between a scan and what follows it).
    pub fn stored(&mut self, name: &str, after_seq: u64, limit: usize) -> Vec<SignalInstance> {
        if self.error.is_some() {
            return Vec::new();
        }
        match self.try_stored(name, after_seq, limit) {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(e);
                Vec::new()
            }
        }
    }

    fn try_stored(
        &mut self,
        name: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<SignalInstance>, IngestError> {
        let mut out = Vec::new();
        let start = after_seq.saturating_add(1);
        for row in self
            .signals
            .read::<IngestError>()?
            .range((name, start)..=(name, u64::MAX))
            .at::<IngestError>(names::SIGNALS)?
            .take(limit)
        {
            let (k, v) = row.at::<IngestError>(names::SIGNALS)?;
            let seq = k.value().1;
            out.push(codec::decode(names::SIGNALS, v.value(), || {
                format!("{name}#{seq}")
            })?);
        }
        Ok(out)
    }

    /// The live offer with the lowest seq for `alias`, deleting expired ones met.
    fn earliest(
        &mut self,
        o: JoinOffer<'_>,
        alias: &str,
        horizon: Option<i64>,
    ) -> Result<Option<(u64, OfferValue)>, IngestError> {
        let mut expired = Vec::new();
        let mut found = None;
        {
            let range = self
                .offers
                .range(
                    (o.subscription, o.version, o.key, alias, 0)
                        ..=(o.subscription, o.version, o.key, alias, u64::MAX),
                )
                .at::<IngestError>(names::JOIN_OFFERS)?;
            for row in range {
                let (k, v) = row.at::<IngestError>(names::JOIN_OFFERS)?;
                let seq = k.value().4;
                let value: OfferValue = codec::decode(names::JOIN_OFFERS, v.value(), || {
                    format!("{}/{}/{}/{alias}/{seq}", o.subscription, o.version, o.key)
                })?;
                if horizon.is_some_and(|h| value.received_at_ms < h) {
                    expired.push(seq);
                    continue;
                }
                found = Some((seq, value));
                break;
            }
        }
        for seq in expired {
            tracing::debug!(
                subscription = o.subscription,
                alias,
                seq,
                "join offer expired"
            );
            self.offers
                .remove((o.subscription, o.version, o.key, alias, seq))
                .at::<IngestError>(names::JOIN_OFFERS)?;
        }
        Ok(found)
    }

    fn load(&mut self, name: &str, seq: u64) -> Result<SignalInstance, IngestError> {
        let bytes = self
            .signals
            .read::<IngestError>()?
            .get((name, seq))
            .at::<IngestError>(names::SIGNALS)?
            .ok_or_else(|| crate::error::Corrupt {
                table: names::JOIN_OFFERS,
                key: format!("{name}#{seq}"),
                reason: "offers an instance that is not stored".into(),
            })?;
        Ok(codec::decode(names::SIGNALS, bytes.value(), || {
            format!("{name}#{seq}")
        })?)
    }
}

/// Deletes every offer of `subscription` with a version other than `keep`
/// (all of them when `keep` is `None`); returns how many were deleted.
pub(crate) fn drop_offers<E: TableFailure>(
    txn: &WriteTxn<'_>,
    subscription: &str,
    keep: Option<u64>,
) -> Result<Vec<DroppedOffer>, E> {
    let mut offers = crate::capture::write::<E, _, _>(txn, tables::JOIN_OFFERS)?;
    let doomed: Vec<DroppedOffer> = offers
        .range(
            (subscription, 0, "", "", 0)
                ..=(subscription, u64::MAX, "\u{10ffff}", "\u{10ffff}", u64::MAX),
        )
        .at::<E>(names::JOIN_OFFERS)?
        .filter_map(Result::ok)
        .map(|(k, v)| {
            let (_, version, key, alias, seq) = k.value();
            let name = codec::decode::<OfferValue>(names::JOIN_OFFERS, v.value(), String::new)
                .map(|o| o.name)
                .unwrap_or_default();
            DroppedOffer {
                version,
                key: key.to_string(),
                alias: alias.to_string(),
                name,
                seq,
            }
        })
        .filter(|d| Some(d.version) != keep)
        .collect();
    for d in &doomed {
        offers
            .remove((
                subscription,
                d.version,
                d.key.as_str(),
                d.alias.as_str(),
                d.seq,
            ))
            .at::<E>(names::JOIN_OFFERS)?;
    }
    Ok(doomed)
}

/// A partial join dropped because its subscription changed version (lineage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedOffer {
    /// The version the offer belonged to.
    pub version: u64,
    /// Its join key.
    pub key: String,
    /// Its alias.
    pub alias: String,
    /// The signal name of the instance.
    pub name: String,
    /// The instance's seq.
    pub seq: u64,
}

impl Store {
    /// The partial joins of a subscription version, by key then alias then seq.
    pub fn pending_joins(
        &self,
        subscription: &str,
        version: u64,
    ) -> Result<Vec<PendingOffer>, ReadError> {
        let txn = self.begin_read()?;
        let offers = tables::read(&txn, tables::JOIN_OFFERS)?;
        let mut out = Vec::new();
        for row in offers
            .range(
                (subscription, version, "", "", 0)
                    ..=(subscription, version, "\u{10ffff}", "\u{10ffff}", u64::MAX),
            )
            .at::<ReadError>(names::JOIN_OFFERS)?
        {
            let (k, v) = row.at::<ReadError>(names::JOIN_OFFERS)?;
            let (_, _, key, alias, seq) = k.value();
            let value: OfferValue = codec::decode(names::JOIN_OFFERS, v.value(), || {
                format!("{subscription}/{version}/{key}/{alias}/{seq}")
            })?;
            out.push(PendingOffer {
                key: key.to_string(),
                alias: alias.to_string(),
                name: value.name,
                seq,
                received_at_ms: value.received_at_ms,
            });
        }
        Ok(out)
    }
}
