//! Replay (backfill): run stored signals through one subscription, with the same
//! exactly-once rules as live ingest.
//!
//! A replay walks each of the subscription's signal names in seq order, in
//! pages; each page is one store transaction ([`signalbox_store::Store::run_plan`],
//! serialized with ingest). An instance that matches fires (one-signal
//! subscription) or offers its join side in a join scope of its own,
//! `replay/<subscription>` (so a replay never consumes live partial joins). Firing
//! ids are the live ones — hash of subscription, version and inputs, or of the
//! dedup value — so an instance that already fired live, or in an earlier
//! replay, is skipped by the store: replaying twice fires nothing twice. The
//! caller drives the pages with the returned cursor (the CLI draws a progress bar
//! from `position` / `total`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signalbox_model::FieldError;
use signalbox_store::JoinOffer;

use crate::shared::Shared;

/// Where a replay stands: which signal of the subscription, after which seq.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Index into the subscription's `signals`.
    pub signal: usize,
    /// Last seq processed of that signal's name.
    pub after: u64,
}

/// One replay request (a page).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Subscription id.
    pub sub: String,
    /// Only signals received at or after this RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
    /// Only signals received before this RFC 3339 time.
    #[serde(default)]
    pub until: Option<String>,
    /// Where to continue (absent: from the start).
    #[serde(default)]
    pub cursor: Option<Cursor>,
    /// Most instances to read in this page (default 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Why a replay page could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The request is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No such subscription.
    #[error("no subscription {0:?}")]
    NotFound(String),
    /// The store failed.
    #[error("replay failed: {0}")]
    Store(String),
}

/// Runs one page of a replay.
pub(crate) fn page(shared: &Shared, req: &ReplayRequest) -> Result<Value, ReplayError> {
    let compiled = shared
        .catalog
        .get(&req.sub)
        .ok_or_else(|| ReplayError::NotFound(req.sub.clone()))?;
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ReplayError> {
        v.as_deref()
            .map(signalbox_model::signal::parse_rfc3339)
            .transpose()
            .map_err(|rule| ReplayError::Invalid(FieldError::new(field, rule)))
    };
    let since = time("since", &req.since)?.unwrap_or(i64::MIN);
    let until = time("until", &req.until)?.unwrap_or(i64::MAX);
    let limit = req.limit.unwrap_or(1000).clamp(1, 10_000);
    let mut cursor = req.cursor.unwrap_or_default();
    let sub = &compiled.subscription;
    let names = shared
        .store
        .signal_names()
        .map_err(|e| ReplayError::Store(e.to_string()))?;
    let last_seq = |name: &str| names.iter().find(|(n, _)| n == name).map_or(0, |(_, s)| *s);
    let total: u64 = sub.signals.iter().map(|s| last_seq(&s.name)).sum();
    let scope = format!("replay/{}", sub.id);
    let now = crate::clock::now_ms();
    let mut processed = 0usize;
    let mut matched = 0usize;
    let mut done = cursor.signal >= sub.signals.len();
    let mut next = cursor;
    let written = if done {
        Vec::new()
    } else {
        shared
            .store
            .run_plan(&mut |ctx| {
                let mut firings = Vec::new();
                let spec = &sub.signals[cursor.signal];
                let pattern = &compiled.patterns[cursor.signal];
                let page = ctx.stored(&spec.name, cursor.after, limit);
                for inst in &page {
                    processed += 1;
                    next.after = inst.seq;
                    if inst.received_at_ms < since || inst.received_at_ms >= until {
                        continue;
                    }
                    if !signalbox_matcher::naive::matches(pattern, &inst.signal.params) {
                        continue;
                    }
                    matched += 1;
                    match &sub.join {
                        None => firings.push(compiled.firing(&[(spec.alias.as_str(), inst)], now)),
                        Some(join) => {
                            let Some(key) = join.key_for(&spec.alias, &inst.signal.params) else {
                                continue;
                            };
                            let aliases: Vec<String> =
                                sub.signals.iter().map(|s| s.alias.clone()).collect();
                            let offer = JoinOffer {
                                subscription: &scope,
                                version: sub.version,
                                key: &key,
                                alias: &spec.alias,
                                aliases: &aliases,
                                within_ms: join.within_ms,
                            };
                            if let Some(complete) = ctx.offer(offer, inst) {
                                let bindings: Vec<(&str, &signalbox_model::SignalInstance)> =
                                    complete.iter().map(|(a, i)| (a.as_str(), i)).collect();
                                firings.push(compiled.firing(&bindings, now));
                            }
                        }
                    }
                }
                if page.len() < limit {
                    next = Cursor {
                        signal: cursor.signal + 1,
                        after: 0,
                    };
                }
                firings
            })
            .map_err(|e| ReplayError::Store(e.to_string()))?
    };
    cursor = next;
    done = done || cursor.signal >= sub.signals.len();
    if !written.is_empty()
        && let Some(home) = shared.home()
    {
        home.outbox_wake.notify_one();
    }
    let position: u64 = sub
        .signals
        .iter()
        .enumerate()
        .map(|(i, s)| match i.cmp(&cursor.signal) {
            std::cmp::Ordering::Less => last_seq(&s.name),
            std::cmp::Ordering::Equal => cursor.after,
            std::cmp::Ordering::Greater => 0,
        })
        .sum();
    Ok(json!({
        "processed": processed,
        "matched": matched,
        "fired": written.len(),
        "firings": written.iter().map(|f| f.firing_id.clone()).collect::<Vec<_>>(),
        "cursor": if done { Value::Null } else { json!(cursor) },
        "position": if done { total } else { position },
        "total": total,
    }))
}
