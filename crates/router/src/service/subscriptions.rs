//! Group mode: the catalog follows the group's subscriptions bucket. Every
//! change any router writes (`sub.add`, `sub.rm`) reaches every router here
//! and is applied to its catalog, so all of them match against the same set
//! (each within moments of the write).

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::watch;

use crate::group::Group;
use crate::group::subs::{self, Change};
use crate::shared::Shared;

/// Applies the bucket's changes to the catalog until shutdown.
pub(crate) async fn watch(
    shared: Arc<Shared>,
    group: Arc<Group>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let changes = match subs::watch(&group.joined.subs).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the group's subscriptions; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        let mut changes = Box::pin(changes);
        loop {
            let change = tokio::select! {
                c = changes.next() => c,
                _ = shutdown.changed() => return,
            };
            match change {
                Some(Change::Put(sub)) => {
                    let current = shared.catalog.get(&sub.id).map(|c| c.subscription.version);
                    if current == Some(sub.version) {
                        continue;
                    }
                    match shared.catalog.compile(&sub) {
                        Ok(c) => {
                            shared.catalog.insert(c);
                            tracing::info!(subscription = %sub.id, version = sub.version, "group subscription applied");
                        }
                        Err(e) => {
                            tracing::error!(subscription = %sub.id, error = %e, "group subscription does not compile here")
                        }
                    }
                }
                Some(Change::Removed(id)) => {
                    if shared.catalog.remove(&id) {
                        tracing::info!(subscription = %id, "group subscription removed");
                    }
                }
                None => break,
            }
        }
    }
}
