//! Wildcard benchmark: the 12,959 five-letter words of quamina's `wwords.txt`,
//! one pattern per word with one character replaced by `*` (seeded position),
//! matched against every word; side by side with the `quamina` crate. Build
//! times (adding all patterns) are printed; match throughput is measured.

#![allow(missing_docs, clippy::unwrap_used)]

mod matcher_support;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use matcher_support::{Rng, to_params};
use serde_json::json;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern};

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

    let t = Instant::now();
    let engine = Engine::new();
    for (i, p) in patterns.iter().enumerate() {
        engine.add(
            &i.to_string(),
            Pattern::parse(&json!({"word": [{"wildcard": p}]}), &ops).unwrap(),
        );
    }
    let ours_build = t.elapsed();

    let t = Instant::now();
    let mut q = quamina::Quamina::<usize>::new();
    for (i, p) in patterns.iter().enumerate() {
        q.add_pattern(i, &format!(r#"{{"word": [{{"wildcard": "{p}"}}]}}"#))
            .unwrap();
    }
    let theirs_build = t.elapsed();

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
        "wildcards: {} patterns; build signalbox {:?}, quamina {:?}; matches over {} words: signalbox {ours}, quamina {theirs}; signalbox memory {} bytes",
        patterns.len(),
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
        b.iter(|| {
            params
                .iter()
                .map(|p| engine.matches(black_box(p)).len())
                .sum::<usize>()
        })
    });
    g.bench_function("quamina", |b| {
        b.iter(|| {
            bytes
                .iter()
                .map(|by| q.matches_for_event(black_box(by)).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
