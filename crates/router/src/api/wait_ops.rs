//! What happens to a wait inside one partition (blocking store work, off the
//! async threads): registering it, settling it (timed out, cancelled), and
//! the `wait.cancel` verb on the partition that holds it. Each wakes the
//! partition's outbox when it wrote an answer. Used by the wait endpoint and
//! timeouts (`waits.rs`) and by the group's queries (`group_query.rs`).

use serde_json::json;
use signalbox_model::{ErrorReply, FieldError, Wait, WaitState};

use crate::pipeline::catalog::Catalog;
use crate::pipeline::partition::Partition;
use crate::pipeline::waits;

/// Registers a wait in `partition` (blocking), waking its outbox when the
/// lookback answered it.
pub(crate) fn register_on(
    partition: &Partition,
    catalog: &Catalog,
    wait: Wait,
) -> Result<signalbox_model::WaitRecord, ErrorReply> {
    let now = crate::clock::now_ms();
    let done = waits::register(&partition.store, catalog, wait, now)?;
    if done.answered_now {
        partition.outbox_wake.notify_one();
    }
    Ok(done.record)
}

/// Settles a wait of `partition` and wakes its outbox when an answer was written.
pub(crate) fn settle(
    partition: &Partition,
    catalog: &Catalog,
    id: &str,
    state: WaitState,
    now: i64,
) -> Result<Option<signalbox_model::WaitRecord>, String> {
    let settled = waits::settle(&partition.store, catalog, id, state, now)?;
    if settled.is_some() {
        partition.outbox_wake.notify_one();
    }
    Ok(settled)
}

/// Cancels wait `id` of `partition` (blocking); `not_found` when it has none.
pub(crate) fn cancel_on(
    partition: &Partition,
    catalog: &Catalog,
    id: &str,
) -> Result<serde_json::Value, ErrorReply> {
    let now = crate::clock::now_ms();
    match settle(
        partition,
        catalog,
        id,
        WaitState::Cancelled { at_ms: now },
        now,
    ) {
        Ok(Some(record)) => Ok(json!({ "wait": record })),
        Ok(None) => match partition.store.wait(id) {
            Ok(Some(record)) => Ok(json!({ "wait": record, "note": "already answered" })),
            Ok(None) => {
                let mut e = ErrorReply::invalid(&FieldError::new("id", format!("no wait {id:?}")));
                e.error.code = "not_found".into();
                Err(e)
            }
            Err(e) => Err(ErrorReply::unavailable(e.to_string())),
        },
        Err(e) => Err(ErrorReply::unavailable(e)),
    }
}
