//! Waits over NATS: registration requests on `<wait_subject>` (request/reply;
//! the CLI's `signalbox wait`), the `wait.cancel` admin verb, and the task that
//! times out due waits. The store and catalog work is in
//! `crate::pipeline::waits`; every answer goes out through the outbox.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Message;
use futures::StreamExt;
use serde_json::json;
use signalbox_model::{ErrorReply, FieldError, Wait, WaitState};
use tokio::sync::watch;

use super::wait_ops::{cancel_on, register_on, settle};
use crate::group::Group;
use crate::nats::reply::respond;
use crate::pipeline::catalog::remote::WATCH_PREFIX;
use crate::pipeline::partition::Partition;
use crate::shared::Shared;

/// Answers registration requests on `sub` one at a time until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut sub: async_nats::Subscriber,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => None,
        };
        let Some(msg) = msg else {
            break;
        };
        handle_register(&shared, msg).await;
    }
    let _ = sub.unsubscribe().await;
}

/// Handles one registration request: alone, registered here; in a group,
/// put on the input of the wait's partition (its first signal's), whose
/// owner registers it and answers the request.
async fn handle_register(shared: &Arc<Shared>, msg: Message) {
    let body = String::from_utf8_lossy(&msg.payload).to_string();
    let wait = match Wait::from_yaml(&body) {
        Ok(w) => w,
        Err(e) => {
            if let Some(reply) = msg.reply {
                respond(&shared.client, reply, &ErrorReply::invalid(&e)).await;
            }
            return;
        }
    };
    let result = match &shared.group {
        None => register(shared, wait).await.map(Some),
        Some(group) => to_group(group, &wait, msg.reply.as_deref())
            .await
            .map(|()| None),
    };
    if let Some(reply) = msg.reply {
        match result {
            Ok(Some(record)) => respond(&shared.client, reply, &json!({ "wait": record })).await,
            Ok(None) => {}
            Err(e) => respond(&shared.client, reply, &e).await,
        }
    }
}

/// The partition a wait lives in, in a group: its first signal's name's.
/// Sides whose signals live in other partitions are watched there
/// (`pipeline/catalog/remote.rs`).
pub(crate) fn wait_partition(group: &Group, wait: &Wait) -> Result<u32, ErrorReply> {
    if wait.id.starts_with(WATCH_PREFIX) {
        return Err(ErrorReply::invalid(&FieldError::new(
            "id",
            format!(
                "in group mode wait ids starting with {WATCH_PREFIX:?} are the group's own (its watches of other partitions)"
            ),
        )));
    }
    match wait.signals.first() {
        Some(first) => Ok(group.front.partition_of(&first.name)),
        None => Err(ErrorReply::invalid(&FieldError::new(
            "signals",
            "a wait needs a signal",
        ))),
    }
}

/// Puts a registration on its partition's input; the owner answers `reply`.
async fn to_group(group: &Group, wait: &Wait, reply: Option<&str>) -> Result<(), ErrorReply> {
    let p = wait_partition(group, wait)?;
    let body = serde_json::to_vec(wait).map_err(|e| ErrorReply::unavailable(e.to_string()))?;
    group
        .front
        .put_raw(
            p,
            crate::group::names::KIND_WAIT,
            body,
            reply,
            &format!("wait/{}", wait.id),
        )
        .await
        .map_err(ErrorReply::unavailable)
}

/// Registers a wait here (alone), runs its lookback, and wakes the outbox
/// when that answered it.
async fn register(
    shared: &Arc<Shared>,
    wait: Wait,
) -> Result<signalbox_model::WaitRecord, ErrorReply> {
    let Some(home) = shared.home() else {
        return Err(ErrorReply::unavailable("the router is not ready"));
    };
    let catalog = shared.catalog.clone();
    tokio::task::spawn_blocking(move || register_on(&home, &catalog, wait))
        .await
        .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

/// Cancels a wait (admin `wait.cancel`): here alone, in its partition in a group.
pub(crate) async fn cancel(
    shared: &Arc<Shared>,
    id: String,
) -> Result<serde_json::Value, ErrorReply> {
    if let Some(group) = &shared.group {
        return super::group_query::ask(shared, group, "wait.cancel", &id).await;
    }
    let Some(home) = shared.home() else {
        return Err(ErrorReply::unavailable("the router is not ready"));
    };
    let catalog = shared.catalog.clone();
    tokio::task::spawn_blocking(move || cancel_on(&home, &catalog, &id))
        .await
        .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

/// The partition holding live wait `id`: the one partition alone; in a
/// group, its first signal's partition when it is worked here.
fn partition_of_live(shared: &Shared, id: &str) -> Option<Arc<Partition>> {
    match &shared.group {
        None => shared.home(),
        Some(group) => {
            let wait = shared.catalog.get_wait(id)?;
            // A watch's partition is its signals' (`remote.rs`).
            let first = wait.record.wait.signals.first()?;
            let p = group.front.partition_of(&first.name);
            shared.partitions.get(p)
        }
    }
}

/// Times out due waits until shutdown.
pub(crate) async fn run_timeouts(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = crate::clock::now_ms();
        for id in shared.catalog.waits_due(now) {
            let Some(partition) = partition_of_live(&shared, &id) else {
                continue;
            };
            let catalog = shared.catalog.clone();
            let id2 = id.clone();
            match tokio::task::spawn_blocking(move || {
                settle(
                    &partition,
                    &catalog,
                    &id2,
                    WaitState::TimedOut { at_ms: now },
                    now,
                )
            })
            .await
            {
                Ok(Ok(Some(_))) => tracing::info!(wait = %id, "wait timed out"),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(wait = %id, error = %e, "cannot time out wait"),
                Err(e) => tracing::warn!(wait = %id, error = %e, "wait timeout task failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
