//! citylots benchmark: a fresh engine per operator type holding 5 rules of that
//! type, matched against seeded citylots-shaped records; side by side with the
//! `quamina` crate and the naive evaluator, on the same events and rules, in
//! the same run. `signalbox` matches pre-parsed params; `signalbox+parse` also
//! parses each record's JSON bytes into params (quamina always parses);
//! `signalbox+raw` matches the record's bytes as a signal's params
//! (`Engine::matches_params_json`: every byte checked with the model's limits,
//! only the fields the rules name decoded), and `signalbox+signal` the same
//! record wrapped in a signal body (`Engine::matches_signal_json`).
//!
//! For counting instructions (e.g. under `valgrind --tool=callgrind`, whose
//! counts do not depend on what else the machine runs), set
//! `CITYLOTS_COUNT=<row>:<passes>`: instead of criterion, each operator
//! type's engine runs that row (`signalbox`, `signalbox+parse`,
//! `signalbox+raw`, `signalbox+signal`, `quamina`, `naive`) over the 2,000 events
//! `passes` times; the difference between two pass counts, divided by the
//! events, is the row's cost per event. `CITYLOTS_ONLY=<type>` keeps one
//! operator type.

#![allow(missing_docs, clippy::unwrap_used)]

mod matcher_support;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use matcher_support::{Rng, citylot, on_cpu, parse_params, pass};
use serde_json::Value as Json;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, naive};
use signalbox_model::Limits;

const EVENTS: usize = 2000;

fn rules(events: &[Json]) -> Vec<(&'static str, Vec<String>)> {
    let lot = |i: usize| {
        events[i * 97]["properties"]["MAPBLKLOT"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let coord = |i: usize| events[i * 131]["geometry"]["firstCoordinates"]["x"].clone();
    let ring_lon = |i: usize| {
        let g = &events[i * 53]["geometry"];
        let ring = if g["type"] == "Polygon" {
            &g["coordinates"][0]
        } else {
            &g["coordinates"][0][0]
        };
        ring[1][0].clone()
    };
    let street = |s: &str| format!(r#"{{"properties": {{"STREET": [{s}]}}}}"#);
    vec![
        ("exact", (0..5).map(|i| format!(r#"{{"properties": {{"MAPBLKLOT": ["{}"]}}}}"#, lot(i))).collect()),
        ("prefix", ["AC", "BE", "FI", "JE", "OC"].iter().map(|p| street(&format!(r#"{{"prefix": "{p}"}}"#))).collect()),
        ("suffix", ["ICH", "TON", "IA", "AY", "ERO"].iter().map(|p| street(&format!(r#"{{"suffix": "{p}"}}"#))).collect()),
        (
            "equals-ignore-case",
            ["greenwich", "Fulton", "mission", "BeAcH", "polk"].iter().map(|p| street(&format!(r#"{{"equals-ignore-case": "{p}"}}"#))).collect(),
        ),
        (
            "wildcard",
            ["G*ICH", "*TON", "M*N", "J*S*N", "*ER*"].iter().map(|p| street(&format!(r#"{{"wildcard": "{p}"}}"#))).collect(),
        ),
        (
            "anything-but",
            ["FULTON", "MISSION", "CLAY", "EDDY", "POLK"].iter().map(|p| street(&format!(r#"{{"anything-but": ["{p}"]}}"#))).collect(),
        ),
        (
            "numeric",
            vec![
                format!(r#"{{"geometry": {{"type": ["Polygon"], "firstCoordinates": {{"x": [{{"numeric": ["=", {}]}}]}}}}}}"#, coord(1)),
                r#"{"geometry": {"type": ["MultiPolygon"], "firstCoordinates": {"z": [{"numeric": ["=", 0]}]}}}"#.to_string(),
                r#"{"geometry": {"firstCoordinates": {"x": [{"numeric": ["<", -122.51]}]}}}"#.to_string(),
                r#"{"geometry": {"firstCoordinates": {"x": [{"numeric": [">", -122.37]}]}}}"#.to_string(),
                r#"{"geometry": {"firstCoordinates": {"x": [{"numeric": [">", -122.46, "<", -122.45]}]}}}"#.to_string(),
            ],
        ),
        ("arrays", (0..5).map(|i| format!(r#"{{"geometry": {{"coordinates": [{}]}}}}"#, ring_lon(i + 1))).collect()),
    ]
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng::new(0xC171_7075);
    let events: Vec<Json> = (0..EVENTS).map(|_| citylot(&mut rng)).collect();
    let bytes: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect();
    let params: Vec<_> = bytes.iter().map(|b| parse_params(b)).collect();
    let bodies: Vec<Vec<u8>> = bytes
        .iter()
        .map(|b| {
            let mut body = br#"{"name":"citylot","params":"#.to_vec();
            body.extend_from_slice(b);
            body.push(b'}');
            body
        })
        .collect();
    let limits = Limits::default();
    let ops = OperatorRegistry::default();
    let count: Option<(String, usize)> = std::env::var("CITYLOTS_COUNT").ok().and_then(|v| {
        let (row, passes) = v.split_once(':')?;
        Some((row.to_string(), passes.parse().ok()?))
    });
    let only = std::env::var("CITYLOTS_ONLY").ok();
    for (kind, rule_texts) in rules(&events) {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let patterns: Vec<Pattern> = rule_texts
            .iter()
            .map(|r| Pattern::parse(&serde_json::from_str(r).unwrap(), &ops).unwrap())
            .collect();
        let engine = Engine::new();
        for (i, p) in patterns.iter().enumerate() {
            engine.add(&format!("r{i}"), p.clone());
        }
        let mut q = quamina::Quamina::<usize>::new();
        let mut quamina_ok = true;
        for (i, r) in rule_texts.iter().enumerate() {
            if let Err(e) = q.add_pattern(i, r) {
                eprintln!("citylots/{kind}: quamina rejects rule {r}: {e}");
                quamina_ok = false;
            }
        }
        let ours: usize = params.iter().map(|p| engine.matches(p).len()).sum();
        let raw: usize = bytes
            .iter()
            .map(|b| engine.matches_params_json(b, &limits).unwrap().len())
            .sum();
        let signal: usize = bodies
            .iter()
            .map(|b| engine.matches_signal_json(b, &limits).unwrap().len())
            .sum();
        let naive_count: usize = params
            .iter()
            .map(|p| patterns.iter().filter(|r| naive::matches(r, p)).count())
            .sum();
        let theirs: usize = if quamina_ok {
            bytes
                .iter()
                .map(|b| q.matches_for_event(b).unwrap().len())
                .sum()
        } else {
            0
        };
        println!(
            "citylots/{kind}: matches over {EVENTS} events: signalbox {ours}, raw {raw}, signal {signal}, naive {naive_count}, quamina {theirs}"
        );
        if quamina_ok && ours != theirs {
            for (i, (p, b)) in params.iter().zip(&bytes).enumerate() {
                let (a, q2) = (engine.matches(p), q.matches_for_event(b).unwrap());
                if a.len() != q2.len() {
                    println!(
                        "  event {i} differs: signalbox {a:?}, quamina {q2:?}; rules {rule_texts:?}; event {}",
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }

        // One pass of each row over the events: what criterion times, and
        // what `CITYLOTS_COUNT` repeats.
        let signalbox = || pass(&params, |p| engine.matches_shared(p).len());
        let with_parse = || pass(&bytes, |by| engine.matches_shared(&parse_params(by)).len());
        let raw = || {
            pass(&bytes, |by| {
                engine
                    .matches_params_json(by, &limits)
                    .map_or(0, |ids| ids.len())
            })
        };
        let signal = || {
            pass(&bodies, |by| {
                engine
                    .matches_signal_json(by, &limits)
                    .map_or(0, |ids| ids.len())
            })
        };
        let quamina = || {
            pass(&bytes, |by| {
                q.matches_for_event(by).map_or(0, |ids| ids.len())
            })
        };
        let by_naive = || {
            pass(&params, |p| {
                patterns.iter().filter(|r| naive::matches(r, p)).count()
            })
        };
        let mut rows: Vec<(&str, &dyn Fn() -> usize)> = vec![
            ("signalbox", &signalbox),
            ("signalbox+parse", &with_parse),
            ("signalbox+raw", &raw),
            ("signalbox+signal", &signal),
        ];
        if quamina_ok {
            rows.push(("quamina", &quamina));
        }
        rows.push(("naive", &by_naive));

        if let Some((row, passes)) = &count {
            let (_, run) = rows
                .iter()
                .find(|(name, _)| name == row)
                .unwrap_or_else(|| panic!("CITYLOTS_COUNT: no row {row}"));
            let total: usize = (0..*passes).map(|_| run()).sum();
            println!("citylots/{kind}/{row}: {passes} passes, {total} matches");
            continue;
        }
        let mut g = c.benchmark_group(format!("citylots/{kind}"));
        g.throughput(Throughput::Elements(EVENTS as u64));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, run) in &rows {
            g.bench_function(*name, |b| b.iter_custom(|iters| on_cpu(iters, run)));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
