//! What change capture costs on the ingest path: 100,000 signals ingested in
//! batches of 100, each firing one subscription, into a store with
//! `CommitDurability::None` (CPU, not fsync), once without a sink and once
//! with a sink that only counts the bytes of each change set.
//!
//! `cargo bench -p signalbox-store --bench changelog_capture` runs both and
//! prints time and bytes per signal; `-- none` or `-- sink` runs one mode only
//! (for instruction counts under `valgrind --tool=callgrind`), `-- --signals N`
//! sets the count, and `-- --mark-delivered` also marks each batch's firings
//! delivered after its ingest (the store's whole share of a signal on the
//! router's path). Timings on a shared machine are noisy; the bytes are exact.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use signalbox_model::{ActionKind, Firing, Origin, Signal, SignalInstance, SignalRef};
use signalbox_store::{
    ChangeSet, ChangeSink, ChangelogError, CommitDurability, Incoming, IngestOutcome, Store,
    StoreOptions,
};

const BATCH: usize = 100;

/// Counts entries and bytes; positions are the entry count.
#[derive(Default)]
struct Counting {
    entries: AtomicU64,
    bytes: AtomicU64,
    changes: AtomicU64,
}

impl ChangeSink for Counting {
    fn commit(&self, changes: &ChangeSet) -> Result<u64, ChangelogError> {
        self.bytes
            .fetch_add(changes.encoded().len() as u64, Ordering::Relaxed);
        self.changes
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        Ok(self.entries.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

fn incoming(i: usize) -> Incoming {
    let mut params = signalbox_model::Map::new();
    params.insert(
        "table".into(),
        signalbox_model::Value::String("prod.events".into()),
    );
    params.insert("n".into(), signalbox_model::Value::Int(i as i64));
    Incoming {
        signal: Signal {
            name: format!("table_updated_{}", i % 4),
            id: Some(format!("id-{i}")),
            params,
            payload: None,
            source: None,
            producer: None,
            occurred_at: None,
        },
        origin: Origin {
            transport: "nats".into(),
            address: Some("signals.table_updated".into()),
            ..Origin::default()
        },
        received_at_ms: 1_800_000_000_000 + i as i64,
    }
}

fn firing(inst: &SignalInstance) -> Firing {
    let signals = vec![SignalRef {
        alias: "t".into(),
        name: inst.signal.name.clone(),
        id: inst.id.clone(),
        seq: inst.seq,
        params: None,
        payload: None,
    }];
    Firing {
        firing_id: signalbox_model::firing_id("s", 1, &signals, inst.received_at_ms),
        subscription: "s".into(),
        version: 1,
        action: ActionKind::Publish,
        subject: "out.s".into(),
        params: inst.signal.params.clone(),
        signals,
        created_at_ms: inst.received_at_ms,
        traceparent: None,
    }
}

/// Ingests `signals` signals (and marks their firings delivered, batch by
/// batch, with `mark`); returns the seconds it took.
fn run(store: &Store, signals: usize, mark: bool) -> f64 {
    let batches: Vec<Vec<Incoming>> = (0..signals / BATCH)
        .map(|b| (b * BATCH..(b + 1) * BATCH).map(incoming).collect())
        .collect();
    let started = Instant::now();
    for batch in batches {
        let outcomes = store
            .ingest(batch, &mut |inst, ctx| {
                ctx.record_match(inst, "s");
                vec![firing(inst)]
            })
            .unwrap();
        if mark {
            let ids: Vec<(u64, String)> = outcomes
                .into_iter()
                .flat_map(|o| match o {
                    IngestOutcome::Stored { firings, .. } => firings,
                    IngestOutcome::Duplicate { .. } => Vec::new(),
                })
                .map(|f| (f.seq, f.firing.firing_id))
                .collect();
            store.mark_delivered_seqs(&ids, 1_800_000_000_000).unwrap();
        }
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let signals = args
        .iter()
        .position(|a| a == "--signals")
        .and_then(|i| args.get(i + 1))
        .map_or(100_000, |n| n.parse().unwrap());
    let mark = args.iter().any(|a| a == "--mark-delivered");
    let modes: Vec<&str> = ["none", "sink"]
        .into_iter()
        .filter(|m| !args.iter().any(|a| a == "none" || a == "sink") || args.iter().any(|a| a == m))
        .collect();
    for mode in modes {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("bench.redb"),
            StoreOptions {
                durability: CommitDurability::None,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let sink = Arc::new(Counting::default());
        if mode == "sink" {
            store.set_changelog(Some(sink.clone()));
        }
        let secs = run(&store, signals, mark);
        let per_signal_us = secs * 1e6 / signals as f64;
        print!("{mode:>4}: {signals} signals in {secs:.3} s, {per_signal_us:.2} µs per signal");
        if mode == "sink" {
            let bytes = sink.bytes.load(Ordering::Relaxed);
            let changes = sink.changes.load(Ordering::Relaxed);
            let entries = sink.entries.load(Ordering::Relaxed);
            print!(
                "; {entries} entries, {changes} changes, {bytes} bytes = {:.0} bytes and {:.1} changes per signal",
                bytes as f64 / signals as f64,
                changes as f64 / signals as f64,
            );
        }
        println!();
    }
}
