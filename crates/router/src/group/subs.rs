//! A group's subscriptions live in NATS, not in any router: KV
//! `SBX_<GROUP>_SUBS`, one key per subscription (its id, escaped for KV),
//! the value the subscription with its version. Any router writes them
//! (`sub.add`, `sub.rm`, subscription files at start), with a compare-and-set
//! on the key's revision so that two writers cannot both make version 3; every
//! router watches the bucket and applies each change to its catalog, so they
//! all converge on the same set.
//!
//! Versions follow the single-router rule: a new id is version 1, a changed
//! subscription the next version, the same content again is unchanged.

use async_nats::jetstream::kv;
use futures::StreamExt;
use signalbox_model::Subscription;

/// What a put did, with the version now current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new subscription.
    Created(u64),
    /// A new version of an existing one.
    Updated(u64),
    /// The same content was there already.
    Unchanged(u64),
}

/// The KV key of a subscription id (KV keys allow `[-/_=.a-zA-Z0-9]`; ids
/// also allow `:`): `:` becomes `=3A`, `=` itself `=3D`.
pub fn key_of(id: &str) -> String {
    id.replace('=', "=3D").replace(':', "=3A")
}

/// The id of a KV key.
pub fn id_of(key: &str) -> String {
    key.replace("=3A", ":").replace("=3D", "=")
}

/// A removed subscription's key keeps its last version, so that adding the
/// id again continues after it (firing ids include the version).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Tombstone {
    removed: bool,
    id: String,
    version: u64,
}

/// What a key holds.
enum Stored {
    Live(Subscription),
    Removed(u64),
}

fn decode(bytes: &[u8]) -> Option<Stored> {
    if let Ok(t) = serde_json::from_slice::<Tombstone>(bytes)
        && t.removed
    {
        return Some(Stored::Removed(t.version));
    }
    serde_json::from_slice::<Subscription>(bytes)
        .ok()
        .map(Stored::Live)
}

/// Stores `sub` as its next version (compare-and-set on the key's revision;
/// retried when another router wrote in between).
pub async fn put(
    bucket: &kv::Store,
    sub: &Subscription,
) -> Result<(PutOutcome, Subscription), String> {
    let key = key_of(&sub.id);
    for _ in 0..10 {
        let current = bucket.entry(&key).await.map_err(|e| e.to_string())?;
        let stored = current
            .as_ref()
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| decode(&e.value));
        let (outcome, next) = match &stored {
            Some(Stored::Live(old)) if old.same_content(sub) => {
                return Ok((PutOutcome::Unchanged(old.version), old.clone()));
            }
            Some(Stored::Live(old)) => {
                let mut next = sub.clone();
                next.version = old.version + 1;
                (PutOutcome::Updated(next.version), next)
            }
            Some(Stored::Removed(last)) => {
                let mut next = sub.clone();
                next.version = last + 1;
                (PutOutcome::Created(next.version), next)
            }
            None => {
                let mut next = sub.clone();
                next.version = 1;
                (PutOutcome::Created(1), next)
            }
        };
        let body = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
        let written = match &current {
            Some(e) => bucket
                .update(&key, body.into(), e.revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => bucket
                .create(&key, body.into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(()) => return Ok((outcome, next)),
            Err(e) => {
                tracing::debug!(subscription = %sub.id, error = %e, "subscription write raced; again")
            }
        }
    }
    Err(format!(
        "subscription {:?}: other routers kept changing it; try again",
        sub.id
    ))
}

/// Removes subscription `id` (a tombstone keeps its last version); false
/// when there was none.
pub async fn remove(bucket: &kv::Store, id: &str) -> Result<bool, String> {
    let key = key_of(id);
    for _ in 0..10 {
        let Some(entry) = bucket.entry(&key).await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        let Some(Stored::Live(old)) = decode(&entry.value) else {
            return Ok(false);
        };
        let tomb = serde_json::to_vec(&Tombstone {
            removed: true,
            id: id.to_string(),
            version: old.version,
        })
        .map_err(|e| e.to_string())?;
        if bucket
            .update(&key, tomb.into(), entry.revision)
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Err(format!(
        "subscription {id:?}: other routers kept changing it; try again"
    ))
}

/// Subscription `id`, if stored.
pub async fn get(bucket: &kv::Store, id: &str) -> Result<Option<Subscription>, String> {
    match bucket.get(key_of(id)).await.map_err(|e| e.to_string())? {
        Some(bytes) => match decode(&bytes) {
            Some(Stored::Live(sub)) => Ok(Some(sub)),
            Some(Stored::Removed(_)) => Ok(None),
            None => Err(format!("subscription {id:?} in the group is unreadable")),
        },
        None => Ok(None),
    }
}

/// Every stored subscription, by id.
pub async fn list(bucket: &kv::Store) -> Result<Vec<Subscription>, String> {
    let mut keys = bucket.keys().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        if let Some(sub) = get(bucket, &id_of(&key)).await? {
            out.push(sub);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A change seen by [`watch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A subscription (new, or a new version).
    Put(Subscription),
    /// A subscription was removed.
    Removed(String),
}

/// Every subscription now, then each change as it happens.
pub async fn watch(
    bucket: &kv::Store,
) -> Result<impl futures::Stream<Item = Change> + Send + use<>, String> {
    let watch = bucket
        .watch_with_history(">")
        .await
        .map_err(|e| e.to_string())?;
    Ok(watch.filter_map(|entry| async move {
        let entry = entry.ok()?;
        match entry.operation {
            kv::Operation::Put => match decode(&entry.value)? {
                Stored::Live(sub) => Some(Change::Put(sub)),
                Stored::Removed(_) => Some(Change::Removed(id_of(&entry.key))),
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                Some(Change::Removed(id_of(&entry.key)))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    //! Ids round-trip through KV keys.

    use super::*;

    #[test]
    fn ids_round_trip_through_keys() {
        for id in ["big-tables", "team:data/daily", "a=b:c", "x.y_z"] {
            let key = key_of(id);
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c)),
                "{key}"
            );
            assert_eq!(id_of(&key), id);
        }
    }
}
