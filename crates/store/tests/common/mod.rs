//! Shared fixtures for the store's integration tests: real redb files in temp
//! dirs, signals, subscriptions and firings built from the model types.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use signalbox_model::{
    ActionKind, Firing, Origin, Signal, SignalInstance, SignalRef, Subscription,
};
use signalbox_store::{Incoming, IngestOutcome, PlanContext, Store, StoreOptions};

/// A day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A fixed receive time.
pub const T0: i64 = 1_800_000_000_000;

pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("node.redb")
}

pub fn open(path: &Path) -> Store {
    Store::open(path, StoreOptions::default()).unwrap()
}

pub fn open_with_retention(path: &Path, retention: Duration) -> Store {
    Store::open(
        path,
        StoreOptions {
            dedup_retention: retention,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

pub fn incoming(name: &str, id: &str, at_ms: i64) -> Incoming {
    let mut params = signalbox_model::Map::new();
    params.insert("k".into(), signalbox_model::Value::String(id.into()));
    Incoming {
        signal: Signal {
            name: name.into(),
            id: Some(id.into()),
            params,
            payload: None,
            source: None,
            producer: None,
            occurred_at: None,
        },
        origin: Origin {
            transport: "nats".into(),
            address: Some(format!("signals.{name}")),
            ..Origin::default()
        },
        received_at_ms: at_ms,
    }
}

/// A firing of `subscription` (version 1) consuming `inst`, with the model's id.
pub fn firing(subscription: &str, inst: &SignalInstance) -> Firing {
    let signals = vec![SignalRef {
        alias: inst.signal.name.clone(),
        name: inst.signal.name.clone(),
        id: inst.id.clone(),
        seq: inst.seq,
        params: None,
        payload: None,
    }];
    Firing {
        firing_id: signalbox_model::firing_id(subscription, 1, &signals, inst.received_at_ms),
        subscription: subscription.into(),
        version: 1,
        action: ActionKind::Publish,
        subject: format!("out.{subscription}"),
        params: signalbox_model::Map::new(),
        signals,
        created_at_ms: inst.received_at_ms,
        traceparent: None,
    }
}

pub fn no_plan() -> impl FnMut(&SignalInstance, &mut PlanContext<'_, '_>) -> Vec<Firing> {
    |_, _| Vec::new()
}

/// Ingest with a plan that fires `subscription` once per instance.
pub fn ingest_firing(
    store: &Store,
    batch: Vec<Incoming>,
    subscription: &str,
) -> Vec<IngestOutcome> {
    store
        .ingest(batch, &mut |inst, _| vec![firing(subscription, inst)])
        .unwrap()
}

pub fn seq_of(outcome: &IngestOutcome) -> (bool, u64) {
    match outcome {
        IngestOutcome::Stored { instance, .. } => (false, instance.seq),
        IngestOutcome::Duplicate { seq, .. } => (true, *seq),
    }
}

pub fn subscription(id: &str, subject: &str) -> Subscription {
    Subscription::from_yaml(&format!(
        "id: {id}\nsignal: table_updated\nwhere: {{table: [\"prod.events\"]}}\naction: {{publish: {{subject: {subject}}}}}\n"
    ))
    .unwrap()
}

/// `(firing_seq, firing id)` of every firing the outcomes stored, in order.
pub fn fired(outcomes: Vec<IngestOutcome>) -> Vec<(u64, String)> {
    outcomes
        .into_iter()
        .flat_map(|o| match o {
            IngestOutcome::Stored { firings, .. } => firings,
            IngestOutcome::Duplicate { .. } => Vec::new(),
        })
        .map(|f| (f.seq, f.firing.firing_id))
        .collect()
}
