//! Waits over NATS: registration (`<wait_subject>`, request/reply), the lookback
//! over stored signals, timeouts and cancels. The live half — arriving signals
//! satisfying a waiting wait — runs in the ingest transaction (see
//! [`crate::catalog::Catalog::plan`]).
//!
//! Registering: the wait is stored (or, for a known id, the stored one is
//! returned as it stands: idempotency), made live in the catalog, and then its
//! lookback runs in a store transaction of its own, which ingest cannot
//! interleave with: the earliest stored instances that satisfy it (inside the
//! lookback) answer it at once; for joins, stored candidates become join offers
//! so a later arrival completes the join. Every answer (satisfied, timed out,
//! cancelled) is written once, with an answer firing in the outbox, and
//! published to `<wait_prefix>.<wait id>` with `Nats-Msg-Id` = its firing id.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Message;
use serde_json::json;
use signalbox_model::{ErrorReply, FieldError, Firing, Wait, WaitRecord, WaitState};
use signalbox_store::{PlanContext, Registered};
use tokio::sync::watch;

use crate::catalog::{Catalog, CompiledWait};
use crate::ingest::respond;
use crate::shared::Shared;

/// How many stored instances one lookback page reads.
const LOOKBACK_PAGE: usize = 512;

/// Handles one registration request.
pub(crate) async fn handle_register(shared: &Arc<Shared>, msg: Message) {
    let body = String::from_utf8_lossy(&msg.payload).to_string();
    let result = match Wait::from_yaml(&body) {
        Ok(wait) => register(shared, wait).await,
        Err(e) => Err(ErrorReply::invalid(&e)),
    };
    if let Some(reply) = msg.reply {
        match result {
            Ok(record) => respond(shared, reply, &json!({ "wait": record })).await,
            Err(e) => respond(shared, reply, &e).await,
        }
    }
}

/// Registers a wait (idempotent by id) and runs its lookback.
pub(crate) async fn register(shared: &Arc<Shared>, wait: Wait) -> Result<WaitRecord, ErrorReply> {
    let now = crate::clock::now_ms();
    let deadline_ms = wait
        .timeout_ms
        .map(|t| now.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)));
    let record = WaitRecord {
        wait,
        registered_at_ms: now,
        deadline_ms,
        state: WaitState::Waiting,
    };
    let compiled = shared
        .catalog
        .compile_wait(&record)
        .map_err(|e| ErrorReply::invalid(&e))?;
    let shared2 = shared.clone();
    tokio::task::spawn_blocking(move || {
        let record = match shared2.store.register_wait(record) {
            Ok(Registered::Existing(existing)) => return Ok(existing),
            Ok(Registered::Created(r)) => r,
            Err(e) => return Err(ErrorReply::unavailable(format!("wait not stored: {e}"))),
        };
        let id = record.wait.id.clone();
        tracing::info!(wait = %id, consumer = ?record.wait.consumer, "wait registered");
        shared2.catalog.insert_wait(compiled);
        let live = shared2.catalog.get_wait(&id);
        if let Some(live) = live {
            let catalog = shared2.catalog.clone();
            let written = shared2
                .store
                .run_plan(&mut |ctx| lookback(&catalog, &live, ctx))
                .map_err(|e| ErrorReply::unavailable(format!("wait lookback failed: {e}")))?;
            if !written.is_empty() {
                shared2.catalog.remove_wait(&id);
                shared2.outbox_wake.notify_one();
            }
        }
        let current = shared2
            .store
            .wait(&id)
            .map_err(|e| ErrorReply::unavailable(e.to_string()))?;
        current.ok_or_else(|| ErrorReply::unavailable("wait vanished after registration"))
    })
    .await
    .unwrap_or_else(|e| Err(ErrorReply::unavailable(format!("internal error: {e}"))))
}

/// Scans the stored signals of each side, oldest first, inside the lookback, and
/// offers every match to the wait until it is answered.
fn lookback(catalog: &Catalog, wait: &CompiledWait, ctx: &mut PlanContext<'_, '_>) -> Vec<Firing> {
    let Some(floor) = wait.record.lookback_floor_ms() else {
        return Vec::new();
    };
    let now = crate::clock::now_ms();
    for (spec, pattern) in wait.record.wait.signals.iter().zip(&wait.patterns) {
        let mut after = 0;
        loop {
            let page = ctx.stored(&spec.name, after, LOOKBACK_PAGE);
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for instance in page.iter().filter(|i| i.received_at_ms >= floor) {
                if !signalbox_matcher::naive::matches(pattern, &instance.signal.params) {
                    continue;
                }
                if let Some(answer) = catalog.offer_to_wait(wait, &spec.alias, instance, ctx, now) {
                    return vec![answer];
                }
            }
        }
    }
    Vec::new()
}

/// Makes the stored waiting waits live again (at start).
pub(crate) fn load_waiting(shared: &Shared) -> Result<usize, String> {
    let waiting = shared.store.waits(true).map_err(|e| e.to_string())?;
    let n = waiting.len();
    for record in waiting {
        match shared.catalog.compile_wait(&record) {
            Ok(c) => shared.catalog.insert_wait(c),
            Err(e) => {
                tracing::error!(wait = %record.wait.id, error = %e, "stored wait does not compile; skipped")
            }
        }
    }
    Ok(n)
}

/// Settles a live wait as timed out or cancelled; `None` if it was not waiting.
pub(crate) fn settle(
    shared: &Shared,
    id: &str,
    state: WaitState,
) -> Result<Option<WaitRecord>, String> {
    let prefix = shared.catalog.wait_prefix().to_string();
    let now = crate::clock::now_ms();
    let settled = shared
        .store
        .settle_wait(id, state, |record| record.answer(&prefix, &[], now))
        .map_err(|e| e.to_string())?;
    shared.catalog.remove_wait(id);
    if settled.is_some() {
        shared.outbox_wake.notify_one();
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
        match settle(&shared, &id, WaitState::Cancelled { at_ms: now }) {
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
                settle(&s, &id2, WaitState::TimedOut { at_ms: now })
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
