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

use crate::nats::reply::respond;
use crate::pipeline::waits;
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

/// Handles one registration request.
async fn handle_register(shared: &Arc<Shared>, msg: Message) {
    let body = String::from_utf8_lossy(&msg.payload).to_string();
    let result = match Wait::from_yaml(&body) {
        Ok(wait) => register(shared, wait).await,
        Err(e) => Err(ErrorReply::invalid(&e)),
    };
    if let Some(reply) = msg.reply {
        match result {
            Ok(record) => respond(&shared.client, reply, &json!({ "wait": record })).await,
            Err(e) => respond(&shared.client, reply, &e).await,
        }
    }
}

/// Registers a wait (idempotent by id), runs its lookback, and wakes the
/// outbox when that answered it.
async fn register(
    shared: &Arc<Shared>,
    wait: Wait,
) -> Result<signalbox_model::WaitRecord, ErrorReply> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || {
        let now = crate::clock::now_ms();
        let done = waits::register(&s.store, &s.catalog, wait, now)?;
        if done.answered_now
            && let Some(home) = s.home()
        {
            home.outbox_wake.notify_one();
        }
        Ok(done.record)
    })
    .await
    .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

/// Settles a wait and wakes the outbox when an answer was written.
fn settle(
    shared: &Shared,
    id: &str,
    state: WaitState,
    now: i64,
) -> Result<Option<signalbox_model::WaitRecord>, String> {
    let settled = waits::settle(&shared.store, &shared.catalog, id, state, now)?;
    if settled.is_some()
        && let Some(home) = shared.home()
    {
        home.outbox_wake.notify_one();
    }
    Ok(settled)
}

/// Cancels a wait (admin `wait.cancel`).
pub(crate) async fn cancel(
    shared: &Arc<Shared>,
    id: String,
) -> Result<serde_json::Value, ErrorReply> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let now = crate::clock::now_ms();
        match settle(&shared, &id, WaitState::Cancelled { at_ms: now }, now) {
            Ok(Some(record)) => Ok(json!({ "wait": record })),
            Ok(None) => match shared.store.wait(&id) {
                Ok(Some(record)) => Ok(json!({ "wait": record, "note": "already answered" })),
                Ok(None) => {
                    let mut e =
                        ErrorReply::invalid(&FieldError::new("id", format!("no wait {id:?}")));
                    e.error.code = "not_found".into();
                    Err(e)
                }
                Err(e) => Err(ErrorReply::unavailable(e.to_string())),
            },
            Err(e) => Err(ErrorReply::unavailable(e)),
        }
    })
    .await
    .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

/// Times out due waits until shutdown.
pub(crate) async fn run_timeouts(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = crate::clock::now_ms();
        for id in shared.catalog.waits_due(now) {
            let s = shared.clone();
            let id2 = id.clone();
            match tokio::task::spawn_blocking(move || {
                settle(&s, &id2, WaitState::TimedOut { at_ms: now }, now)
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
