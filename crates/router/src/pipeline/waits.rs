//! Waits in the store and the catalog: registering one (idempotent by id)
//! with its lookback over stored signals, making stored waiting waits live at
//! start, and settling one as timed out or cancelled. The live half — arriving
//! signals satisfying a waiting wait — runs in the ingest transaction
//! ([`crate::pipeline::catalog::Catalog::plan`]); the NATS endpoint and the
//! timeout task are in `crate::api::waits`.
//!
//! Registering: the wait is stored (or, for a known id, the stored one is
//! returned as it stands: idempotency), made live in the catalog, and then its
//! lookback runs in a store transaction of its own, which ingest cannot
//! interleave with: the earliest stored instances that satisfy it (inside the
//! lookback) answer it at once; for joins, stored candidates become join offers
//! so a later arrival completes the join. Every answer (satisfied, timed out,
//! cancelled) is written once, with an answer firing in the outbox, and
//! published to `<wait_prefix>.<wait id>` with `Nats-Msg-Id` = its firing id.
//! Functions here block (store transactions): call them off the async threads.

use signalbox_model::{ErrorReply, Firing, Wait, WaitRecord, WaitState};
use signalbox_store::{PlanContext, Registered, Store};

use crate::pipeline::catalog::remote::{self, RemoteOffer};
use crate::pipeline::catalog::{Catalog, CompiledWait};

/// Where the end of a watch is published (nothing listens: a watch is not a
/// wait of its own; its wait's answer comes from the wait's partition).
const WATCH_NOTICES: &str = "_signalbox.watch";

/// How many stored instances one lookback page reads.
const LOOKBACK_PAGE: usize = 512;

/// A wait as registration left it.
pub(crate) struct Registration {
    /// The stored wait, as it stands now (answered already, or waiting).
    pub record: WaitRecord,
    /// Whether an answer firing was written (the outbox must be woken).
    pub answered_now: bool,
}

/// Registers a wait (idempotent by id) and runs its lookback.
pub(crate) fn register(
    store: &Store,
    catalog: &Catalog,
    wait: Wait,
    now: i64,
) -> Result<Registration, ErrorReply> {
    let deadline_ms = wait
        .timeout_ms
        .map(|t| now.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)));
    let record = WaitRecord {
        wait,
        registered_at_ms: now,
        deadline_ms,
        state: WaitState::Waiting,
    };
    let compiled = catalog
        .compile_wait(&record)
        .map_err(|e| ErrorReply::invalid(&e))?;
    let record = match store.register_wait(record) {
        Ok(Registered::Existing(existing)) => {
            return Ok(Registration {
                record: existing,
                answered_now: false,
            });
        }
        Ok(Registered::Created(r)) => r,
        Err(e) => return Err(ErrorReply::unavailable(format!("wait not stored: {e}"))),
    };
    let id = record.wait.id.clone();
    tracing::info!(wait = %id, consumer = ?record.wait.consumer, "wait registered");
    catalog.insert_wait(compiled);
    let mut wrote = false;
    if let Some(live) = catalog.get_wait(&id) {
        let written = store
            .run_plan(&mut |ctx| {
                let mut firings = lookback(catalog, &live, ctx, now);
                // Group mode: the sides living elsewhere are watched there.
                if let Some(route) = catalog.group_route()
                    && firings.is_empty()
                {
                    let w = route.wait_partition(&live.record.wait);
                    for (pn, aliases) in route.watchers(&live.record.wait) {
                        firings.push(remote::watch_firing(
                            &route,
                            &live.record,
                            w,
                            pn,
                            &aliases,
                            now,
                        ));
                    }
                }
                firings
            })
            .map_err(|e| ErrorReply::unavailable(format!("wait lookback failed: {e}")))?;
        wrote = !written.is_empty();
    }
    let current = store
        .wait(&id)
        .map_err(|e| ErrorReply::unavailable(e.to_string()))?;
    let record =
        current.ok_or_else(|| ErrorReply::unavailable("wait vanished after registration"))?;
    if !record.is_waiting() {
        catalog.remove_wait(&id);
    }
    Ok(Registration {
        record,
        answered_now: wrote,
    })
}

/// Group mode, in a wait's partition: takes the wait offers `offers` (matches
/// of sides watched in other partitions, in input order) and returns the
/// answers they complete, each with the end of its wait's watches, and the
/// ids of the waits answered. `w` is this partition. An offer for a wait that no longer waits
/// (answered, timed out, cancelled) ends the watch that sent it.
pub(crate) fn take_wait_offers(
    catalog: &Catalog,
    w: u32,
    offers: &[RemoteOffer],
    ctx: &mut PlanContext<'_, '_>,
    now: i64,
) -> (Vec<Firing>, Vec<String>) {
    let mut firings = Vec::new();
    let mut settled: Vec<String> = Vec::new();
    let Some(route) = catalog.group_route() else {
        return (firings, settled);
    };
    for o in offers {
        // `key` holds the wait id.
        let live = catalog
            .get_wait(&o.key)
            .filter(|_| !settled.contains(&o.key));
        let Some(wait) = live else {
            let pn = route.partition_of(&o.instance.signal.name);
            firings.push(remote::unwatch_firing(&route, &o.key, w, pn, now));
            continue;
        };
        if let Some(answer) = catalog.offer_to_wait(&wait, &o.alias, &o.instance, ctx, true, now) {
            firings.push(answer);
            firings.extend(route.unwatches(&wait.record.wait, now));
            settled.push(o.key.clone());
        }
    }
    (firings, settled)
}

/// Scans the stored signals of each side, oldest first, inside the lookback, and
/// offers every match to the wait until it is answered. A watch (group mode)
/// sends every match to its wait's partition instead (its wait joins: only
/// the wait's partition can compare the keys).
fn lookback(
    catalog: &Catalog,
    wait: &CompiledWait,
    ctx: &mut PlanContext<'_, '_>,
    now: i64,
) -> Vec<Firing> {
    let Some(floor) = wait.record.lookback_floor_ms() else {
        return Vec::new();
    };
    let watch = remote::parse_watch_id(&wait.record.wait.id);
    let route = catalog.group_route();
    let mut offers = Vec::new();
    for (spec, pattern) in wait.record.wait.signals.iter().zip(&wait.patterns) {
        if !wait.local(&spec.alias) {
            continue;
        }
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
                if let (Some((w, id)), Some(route)) = (watch, route.as_ref()) {
                    offers.push(remote::wait_offer_firing(
                        route,
                        id,
                        w,
                        &spec.alias,
                        instance,
                        now,
                    ));
                    // Its wait joins (a wait spans partitions only with
                    // several signals, so with a join): every match goes.
                    continue;
                }
                if let Some(answer) =
                    catalog.offer_to_wait(wait, &spec.alias, instance, ctx, false, now)
                {
                    return vec![answer];
                }
            }
        }
    }
    offers
}

/// Makes the stored waiting waits live again (at start); how many there were.
pub(crate) fn load_waiting(store: &Store, catalog: &Catalog) -> Result<usize, String> {
    let waiting = store.waits(true).map_err(|e| e.to_string())?;
    let n = waiting.len();
    for record in waiting {
        match catalog.compile_wait(&record) {
            Ok(c) => catalog.insert_wait(c),
            Err(e) => {
                tracing::error!(wait = %record.wait.id, error = %e, "stored wait does not compile; skipped")
            }
        }
    }
    Ok(n)
}

/// Settles a live wait as timed out or cancelled, writing its answer firing;
/// `None` if it was not waiting. The caller wakes the outbox on `Some`.
pub(crate) fn settle(
    store: &Store,
    catalog: &Catalog,
    id: &str,
    state: WaitState,
    now: i64,
) -> Result<Option<WaitRecord>, String> {
    // A watch's end is no answer: its notice goes where nobody listens.
    let watch = catalog.group_route().is_some() && remote::parse_watch_id(id).is_some();
    let prefix = match watch {
        true => WATCH_NOTICES.to_string(),
        false => catalog.wait_prefix().to_string(),
    };
    let settled = store
        .settle_wait(id, state, |record| record.answer(&prefix, &[], now))
        .map_err(|e| e.to_string())?;
    catalog.remove_wait(id);
    Ok(settled)
}
