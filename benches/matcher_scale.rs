//! Scale benchmark: 1 k, 10 k, 100 k and 1 M subscriptions of four kinds
//! (equality, numeric ranges, prefixes, a realistic mix). Measures events/s with
//! criterion; prints bytes per condition (the engine's own estimate and the
//! process's resident-set growth) and add / remove latency (mean and p99 over
//! 2,000 operations at that size). `SCALE_MAX` (env) caps the largest size;
//! `SCALE_SIZES` (env, e.g. `1000,1000000`) picks the sizes and `SCALE_KINDS`
//! (e.g. `equality,ranges`) the kinds, for short runs.

#![allow(missing_docs, clippy::unwrap_used)]

mod matcher_support;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use matcher_support::{Rng, on_cpu, pass, rss_bytes, to_params};
use serde_json::{Value as Json, json};
use signalbox_matcher::{Engine, OperatorRegistry, Pattern};
use signalbox_model::Map;

const EVENTS: usize = 1000;

fn pattern(kind: &str, i: u64) -> Json {
    match kind {
        "equality" => json!({"id": [format!("v{i}")]}),
        "ranges" => json!({"x": [{"numeric": [">=", i * 10, "<", i * 10 + 5]}]}),
        "prefixes" => json!({"path": [{"prefix": format!("/p{i}/")}]}),
        _ => match i % 10 {
            0..=3 => json!({"id": [format!("v{i}")]}),
            4 | 5 => json!({"x": [{"numeric": [">=", i * 10, "<", i * 10 + 5]}]}),
            6 | 7 => json!({"path": [{"prefix": format!("/p{i}/")}]}),
            8 => json!({"id": [format!("v{i}")], "region": [format!("r{}", i % 50)]}),
            _ => {
                json!({"id": [format!("v{i}")], "region": [{"anything-but": "r0"}], "n": [{"numeric": [">", 0]}]})
            }
        },
    }
}

fn event(rng: &mut Rng, n: u64) -> Map {
    let i = rng.below(n);
    to_params(&json!({
        "id": format!("v{i}"), "x": (i * 10) as f64 + rng.unit() * 10.0, "path": format!("/p{i}/file.txt"),
        "region": format!("r{}", i % 50), "n": 1 + rng.below(5), "owner": {"team": "data-eng"}, "comment": "unindexed"
    }))
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn bench(c: &mut Criterion) {
    let max: u64 = std::env::var("SCALE_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let list = |var: &str| -> Option<Vec<String>> {
        std::env::var(var)
            .ok()
            .map(|s| s.split(',').map(|w| w.trim().to_string()).collect())
    };
    let sizes: Vec<u64> = list("SCALE_SIZES").map_or_else(
        || vec![1_000, 10_000, 100_000, 1_000_000],
        |v| v.iter().filter_map(|w| w.parse().ok()).collect(),
    );
    let kinds = list("SCALE_KINDS");
    let ops = OperatorRegistry::default();
    for kind in ["equality", "ranges", "prefixes", "mix"]
        .into_iter()
        .filter(|k| kinds.as_ref().is_none_or(|v| v.iter().any(|w| w == k)))
    {
        let mut g = c.benchmark_group(format!("scale/{kind}"));
        g.throughput(Throughput::Elements(EVENTS as u64));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        for n in sizes.iter().copied().filter(|n| *n <= max) {
            let rss0 = rss_bytes();
            let engine = Engine::new();
            let t = Instant::now();
            for i in 0..n {
                engine.add(
                    &format!("s{i}"),
                    Pattern::parse(&pattern(kind, i), &ops).unwrap(),
                );
            }
            let build = t.elapsed();
            let rss = rss_bytes().saturating_sub(rss0);
            let conds = engine.condition_count().max(1);
            // add / remove latency at this size (new ids, then removed again).
            let extra: Vec<Pattern> = (n..n + 2000)
                .map(|i| Pattern::parse(&pattern(kind, i), &ops).unwrap())
                .collect();
            let mut adds = Vec::with_capacity(extra.len());
            for (k, p) in extra.into_iter().enumerate() {
                let id = format!("s{}", n + k as u64);
                let t = Instant::now();
                engine.add(&id, p);
                adds.push(t.elapsed());
            }
            let mut removes = Vec::with_capacity(adds.len());
            for k in 0..adds.len() as u64 {
                let id = format!("s{}", n + k);
                let t = Instant::now();
                assert!(engine.remove(&id));
                removes.push(t.elapsed());
            }
            let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
            let mut rng = Rng::new(n ^ 0x5ca1e);
            let events: Vec<Map> = (0..EVENTS).map(|_| event(&mut rng, n)).collect();
            let hits: usize = events.iter().map(|e| engine.matches(e).len()).sum();
            println!(
                "scale/{kind}/{n}: build {build:?}; {conds} conditions; memory estimate {} B/condition, RSS growth {} B/condition; \
                 add mean {:?} p99 {:?}; remove mean {:?} p99 {:?}; {hits} matches over {EVENTS} events",
                engine.memory_bytes() / conds,
                rss / conds,
                mean(&adds),
                percentile(adds.clone(), 0.99),
                mean(&removes),
                percentile(removes.clone(), 0.99),
            );
            g.bench_with_input(BenchmarkId::from_parameter(n), &events, |b, events| {
                b.iter_custom(|iters| {
                    on_cpu(iters, || pass(events, |e| engine.matches_shared(e).len()))
                })
            });
            drop(engine);
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
