//! Subscriptions and their versions.
//!
//! `subscriptions[id]` holds the current version; `subscription_versions[(id, v)]`
//! holds every version ever stored, the current one included, so a firing's
//! `(subscription, version)` can always be resolved to the rule that made it.
//!
//! Versioning (assigned here, whatever version the caller passes): a put whose
//! content equals the current one (`Subscription::same_content`) changes nothing
//! and keeps the version; a changed content gets the current version + 1; a new
//! id gets 1 — or, if the id existed before and was deleted, the last version it
//! ever had + 1, so a re-created subscription never reuses a version and hence
//! never reuses a firing id of its predecessor. Delete removes the current row
//! and keeps the history.

use redb::ReadableTable;
use signalbox_model::Subscription;

use crate::codec;
use crate::error::{AtTable, ReadError, SubscriptionError};
use crate::store::Store;
use crate::tables::{self, names};

/// What [`Store::put_subscription`] did; each carries the version now current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new subscription (version 1, or the next after a deleted one).
    Created(u64),
    /// The content changed: a new version.
    Updated(u64),
    /// Same content as the current version: nothing written.
    Unchanged(u64),
}

impl PutOutcome {
    /// The version now current.
    pub fn version(self) -> u64 {
        match self {
            PutOutcome::Created(v) | PutOutcome::Updated(v) | PutOutcome::Unchanged(v) => v,
        }
    }
}

impl Store {
    /// Creates or updates a subscription, assigning its version (module docs).
    pub fn put_subscription(&self, mut sub: Subscription) -> Result<PutOutcome, SubscriptionError> {
        if sub.id.is_empty() {
            return Err(SubscriptionError::EmptyId);
        }
        let txn = self.begin_write::<SubscriptionError>()?;
        let outcome = {
            let mut current =
                crate::capture::write::<SubscriptionError, _, _>(&txn, tables::SUBSCRIPTIONS)?;
            let mut versions = crate::capture::write::<SubscriptionError, _, _>(
                &txn,
                tables::SUBSCRIPTION_VERSIONS,
            )?;
            let existing: Option<Subscription> = match current
                .get(sub.id.as_str())
                .at::<SubscriptionError>(
                names::SUBSCRIPTIONS,
            )? {
                Some(g) => Some(codec::decode(names::SUBSCRIPTIONS, g.value(), || {
                    sub.id.clone()
                })?),
                None => None,
            };
            let overflow = || SubscriptionError::VersionOverflow { id: sub.id.clone() };
            let outcome = match existing {
                Some(cur) if cur.same_content(&sub) => PutOutcome::Unchanged(cur.version),
                Some(cur) => PutOutcome::Updated(cur.version.checked_add(1).ok_or_else(overflow)?),
                None => {
                    let last = versions
                        .range((sub.id.as_str(), 0)..=(sub.id.as_str(), u64::MAX))
                        .at::<SubscriptionError>(names::SUBSCRIPTION_VERSIONS)?
                        .next_back()
                        .transpose()
                        .at::<SubscriptionError>(names::SUBSCRIPTION_VERSIONS)?
                        .map_or(0, |(k, _)| k.value().1);
                    PutOutcome::Created(last.checked_add(1).ok_or_else(overflow)?)
                }
            };
            if let PutOutcome::Created(v) | PutOutcome::Updated(v) = outcome {
                sub.version = v;
                let bytes = codec::encode(&sub).map_err(|source| SubscriptionError::Encode {
                    id: sub.id.clone(),
                    source,
                })?;
                current
                    .insert(sub.id.as_str(), bytes.as_slice())
                    .at::<SubscriptionError>(names::SUBSCRIPTIONS)?;
                versions
                    .insert((sub.id.as_str(), v), bytes.as_slice())
                    .at::<SubscriptionError>(names::SUBSCRIPTION_VERSIONS)?;
            }
            outcome
        };
        if let PutOutcome::Updated(v) = outcome {
            // Partial joins of the old version are dropped, never mixed into the new one.
            let dropped = crate::joins::drop_offers::<SubscriptionError>(&txn, &sub.id, Some(v))?;
            if !dropped.is_empty() {
                tracing::info!(subscription = %sub.id, version = v, dropped = dropped.len(), "partial joins of the previous version dropped");
                let bytes =
                    codec::encode(&dropped).map_err(|source| SubscriptionError::Encode {
                        id: sub.id.clone(),
                        source,
                    })?;
                let mut drops =
                    crate::capture::write::<SubscriptionError, _, _>(&txn, tables::JOIN_DROPS)?;
                drops
                    .insert((sub.id.as_str(), v), bytes.as_slice())
                    .at::<SubscriptionError>(names::JOIN_DROPS)?;
            }
        }
        if let PutOutcome::Unchanged(_) = outcome {
            // Nothing was written: roll back instead of paying for a commit.
            txn.abort::<SubscriptionError>(names::SUBSCRIPTIONS)?;
        } else {
            txn.commit::<SubscriptionError>()?;
        }
        Ok(outcome)
    }

    /// The partial joins dropped by version changes: `(new version, dropped)`.
    pub fn dropped_joins(
        &self,
        id: &str,
    ) -> Result<Vec<(u64, Vec<crate::joins::DroppedOffer>)>, ReadError> {
        let txn = self.begin_read()?;
        let drops = tables::read(&txn, tables::JOIN_DROPS)?;
        let mut out = Vec::new();
        for row in drops
            .range((id, 0)..=(id, u64::MAX))
            .at::<ReadError>(names::JOIN_DROPS)?
        {
            let (k, v) = row.at::<ReadError>(names::JOIN_DROPS)?;
            let version = k.value().1;
            out.push((
                version,
                codec::decode(names::JOIN_DROPS, v.value(), || format!("{id}/{version}"))?,
            ));
        }
        Ok(out)
    }

    /// The current version of a subscription.
    pub fn subscription(&self, id: &str) -> Result<Option<Subscription>, ReadError> {
        let txn = self.begin_read()?;
        let current = tables::read(&txn, tables::SUBSCRIPTIONS)?;
        let Some(g) = current.get(id).at::<ReadError>(names::SUBSCRIPTIONS)? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(
            names::SUBSCRIPTIONS,
            g.value(),
            || id.to_string(),
        )?))
    }

    /// Every current subscription, ordered by id.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, ReadError> {
        let txn = self.begin_read()?;
        let current = tables::read(&txn, tables::SUBSCRIPTIONS)?;
        let mut out = Vec::new();
        for row in current.iter().at::<ReadError>(names::SUBSCRIPTIONS)? {
            let (k, v) = row.at::<ReadError>(names::SUBSCRIPTIONS)?;
            out.push(codec::decode(names::SUBSCRIPTIONS, v.value(), || {
                k.value().to_string()
            })?);
        }
        Ok(out)
    }

    /// One stored version of a subscription (current or past, deleted or not).
    pub fn subscription_version(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Option<Subscription>, ReadError> {
        let txn = self.begin_read()?;
        let versions = tables::read(&txn, tables::SUBSCRIPTION_VERSIONS)?;
        let Some(g) = versions
            .get((id, version))
            .at::<ReadError>(names::SUBSCRIPTION_VERSIONS)?
        else {
            return Ok(None);
        };
        Ok(Some(codec::decode(
            names::SUBSCRIPTION_VERSIONS,
            g.value(),
            || format!("({id:?}, {version})"),
        )?))
    }

    /// Every stored version of a subscription, oldest first.
    pub fn subscription_history(&self, id: &str) -> Result<Vec<Subscription>, ReadError> {
        let txn = self.begin_read()?;
        let versions = tables::read(&txn, tables::SUBSCRIPTION_VERSIONS)?;
        let mut out = Vec::new();
        for row in versions
            .range((id, 0)..=(id, u64::MAX))
            .at::<ReadError>(names::SUBSCRIPTION_VERSIONS)?
        {
            let (k, v) = row.at::<ReadError>(names::SUBSCRIPTION_VERSIONS)?;
            let version = k.value().1;
            out.push(codec::decode(
                names::SUBSCRIPTION_VERSIONS,
                v.value(),
                || format!("({id:?}, {version})"),
            )?);
        }
        Ok(out)
    }

    /// Deletes the current version; returns whether there was one. The version
    /// history is kept.
    pub fn delete_subscription(&self, id: &str) -> Result<bool, SubscriptionError> {
        let txn = self.begin_write::<SubscriptionError>()?;
        let existed = {
            let mut current =
                crate::capture::write::<SubscriptionError, _, _>(&txn, tables::SUBSCRIPTIONS)?;
            current
                .remove(id)
                .at::<SubscriptionError>(names::SUBSCRIPTIONS)?
                .is_some()
        };
        crate::joins::drop_offers::<SubscriptionError>(&txn, id, None)?;
        txn.commit::<SubscriptionError>()?;
        Ok(existed)
    }
}
