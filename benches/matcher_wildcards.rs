//! Wildcard benchmark: the 12,959 five-letter words of quamina's `wwords.txt`,
//! one pattern per word with one character replaced by `*` (seeded position),
//! matched against every word; side by side with the `quamina` crate. Build
//! times (adding all patterns) are printed; match throughput is measured.

#![allow(missing_docs, clippy::unwrap_used)]

mod matcher_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use matcher_support::{Rng, on_cpu, pass, to_params};
use serde_json::json;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern};

/// How long quamina may spend adding patterns (override with
/// `QUAMINA_BUILD_LIMIT_SECS`); its automaton build grows faster than linearly
/// with one-`*` wildcards.
const QUAMINA_BUILD_LIMIT: Duration = Duration::from_secs(300);

fn bench(c: &mut Criterion) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/quamina/wwords.txt");
    let words: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .filter(|w| !w.is_empty())
        .collect();
    let mut rng = Rng::new(12959);
    let patterns: Vec<String> = words
        .iter()
        .map(|w| {
            let mut chars: Vec<char> = w.chars().collect();
            let at = rng.below(chars.len() as u64) as usize;
            chars[at] = '*';
            chars.into_iter().collect()
        })
        .collect();
    let ops = OperatorRegistry::default();

    // quamina first: its default 10 MB automaton budget refuses this set, so
    // the budget is raised to 4 GB; a pattern it still refuses is counted and
    // left out of both engines, so both always hold the same patterns. Its
    // build is bounded by QUAMINA_BUILD_LIMIT: the patterns added before the
    // limit are the set both engines are measured on, and the count is printed.
    let limit = std::env::var("QUAMINA_BUILD_LIMIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(QUAMINA_BUILD_LIMIT, Duration::from_secs);
    let t = Instant::now();
    let mut q = quamina::QuaminaBuilder::<usize>::new()
        .with_arena_byte_budget(4 << 30)
        .build()
        .unwrap();
    let mut held = Vec::new();
    let mut refused = 0usize;
    for (i, p) in patterns.iter().enumerate() {
        if t.elapsed() > limit {
            break;
        }
        match q.add_pattern(i, &format!(r#"{{"word": [{{"wildcard": "{p}"}}]}}"#)) {
            Ok(()) => held.push(i),
            Err(_) => refused += 1,
        }
    }
    let theirs_build = t.elapsed();
    let tried = held.len() + refused;

    let t = Instant::now();
    let engine = Engine::new();
    for &i in &held {
        engine.add(
            &i.to_string(),
            Pattern::parse(&json!({"word": [{"wildcard": patterns[i]}]}), &ops).unwrap(),
        );
    }
    let ours_build = t.elapsed();

    let params: Vec<_> = words
        .iter()
        .map(|w| to_params(&json!({"word": w})))
        .collect();
    let bytes: Vec<Vec<u8>> = words
        .iter()
        .map(|w| serde_json::to_vec(&json!({"word": w})).unwrap())
        .collect();
    let ours: usize = params.iter().map(|p| engine.matches(p).len()).sum();
    let theirs: usize = bytes
        .iter()
        .map(|b| q.matches_for_event(b).unwrap().len())
        .sum();
    println!(
        "wildcards: {} of {} patterns tried within the {limit:?} quamina build limit, {refused} refused by quamina, {} held by both; build signalbox {:?}, quamina {:?}; matches over {} words: signalbox {ours}, quamina {theirs}; signalbox memory {} bytes",
        tried,
        patterns.len(),
        held.len(),
        ours_build,
        theirs_build,
        words.len(),
        engine.memory_bytes()
    );

    let mut g = c.benchmark_group("wildcards");
    g.throughput(Throughput::Elements(words.len() as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("signalbox", |b| {
        b.iter_custom(|iters| on_cpu(iters, || pass(&params, |p| engine.matches_shared(p).len())))
    });
    g.bench_function("quamina", |b| {
        b.iter_custom(|iters| {
            on_cpu(iters, || {
                pass(&bytes, |by| q.matches_for_event(by).unwrap().len())
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
