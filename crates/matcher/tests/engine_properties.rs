//! Property tests of the indexed engine against the naive evaluator, run
//! with the matcher crate's own tests: random patterns (numbers beyond 2^53
//! included, whose ordered keys are rounded) and random params, and random
//! sequences of adds, replacements and removals, after which removing
//! everything must leave nothing behind; and patterns written back as JSON
//! parse to the same pattern.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value as Json;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, naive};
use signalbox_model::Map;
use support::cases::to_map;
use support::{engine_of, expected, params, pattern};

#[derive(Debug, Clone)]
enum Op {
    Add(u8, Pattern),
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..24, pattern()).prop_map(|(i, p)| Op::Add(i, p)),
        1 => (0u8..24).prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_naive(
        patterns in prop::collection::vec(pattern(), 1..30),
        events in prop::collection::vec(params(), 1..8),
    ) {
        let (engine, model) = engine_of(patterns);
        for ev in &events {
            let ev = to_map(ev);
            prop_assert_eq!(engine.matches(&ev), expected(&model, &ev), "params {:?}", ev);
            for (id, p) in &model {
                prop_assert_eq!(engine.explain(id, &ev).map(|e| e.matched), Some(naive::matches(p, &ev)));
                prop_assert_eq!(engine.get(id).map(|g| g.to_json()), Some(p.to_json()));
            }
        }
    }

    #[test]
    fn engine_agrees_after_random_add_remove(
        ops in prop::collection::vec(op(), 1..60),
        events in prop::collection::vec(params(), 1..5),
    ) {
        let engine = Engine::new();
        let events: Vec<Map> = events.iter().map(to_map).collect();
        let mut model: BTreeMap<String, Pattern> = BTreeMap::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Add(i, p) => {
                    engine.add(&format!("s{i}"), p.clone());
                    model.insert(format!("s{i}"), p);
                }
                Op::Remove(i) => {
                    let id = format!("s{i}");
                    prop_assert_eq!(engine.remove(&id), model.remove(&id).is_some());
                }
            }
            prop_assert_eq!(engine.len(), model.len());
            prop_assert_eq!(engine.ids(), model.keys().cloned().collect::<Vec<_>>());
            if step % 5 == 0 {
                for ev in &events {
                    prop_assert_eq!(engine.matches(ev), expected(&model, ev));
                }
            }
        }
        for ev in &events {
            prop_assert_eq!(engine.matches(ev), expected(&model, ev));
        }
        for id in model.keys() {
            prop_assert!(engine.remove(id));
        }
        prop_assert!(engine.is_empty());
        prop_assert_eq!(engine.condition_count(), 0);
        for ev in &events {
            prop_assert!(engine.matches(ev).is_empty());
        }
    }

    #[test]
    fn to_json_round_trips(p in pattern()) {
        let j = p.to_json();
        let again = Pattern::parse(&j, &OperatorRegistry::default()).unwrap();
        prop_assert_eq!(again.to_json(), j);
    }
}

/// Numbers at and around range bounds, beyond 2^53 too, as integers and
/// floats: drawn from one small set so that values meet bounds often.
fn number() -> impl Strategy<Value = Json> {
    let ints = prop::sample::select(vec![
        -1i64,
        0,
        1,
        5,
        9_007_199_254_740_992,
        9_007_199_254_740_993,
        1_152_921_504_606_846_975,
        1_152_921_504_606_846_976,
        1_152_921_504_606_846_977,
        i64::MAX,
    ]);
    let floats = prop::sample::select(vec![
        -1.0,
        0.0,
        0.5,
        5.0,
        9_007_199_254_740_992.0,
        1_152_921_504_606_846_976.0,
        9.3e18,
    ]);
    prop_oneof![
        ints.prop_map(|i| serde_json::json!(i)),
        floats.prop_map(|f| serde_json::json!(f))
    ]
}

fn numeric_condition() -> impl Strategy<Value = Json> {
    let op = prop::sample::select(vec![">", ">=", "<", "<=", "="]);
    prop_oneof![
        (op.clone(), number()).prop_map(|(o, n)| serde_json::json!({"numeric": [o, n]})),
        (number(), number(), any::<bool>(), any::<bool>()).prop_filter_map(
            "an empty range",
            |(a, b, li, hi)| {
                let (lo, up) = (a.as_f64()?, b.as_f64()?);
                (lo < up).then(|| {
                    serde_json::json!({"numeric": [
                        if li { ">=" } else { ">" }, a, if hi { "<=" } else { "<" }, b
                    ]})
                })
            }
        ),
        number(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Single numeric conditions (decided by the index alone when their
    /// bounds are exact) against values at their bounds.
    #[test]
    fn numeric_conditions_agree_with_naive(
        conds in prop::collection::vec(numeric_condition(), 1..12),
        values in prop::collection::vec(prop_oneof![number(), prop::collection::vec(number(), 0..3).prop_map(Json::Array)], 1..10),
    ) {
        let ops = OperatorRegistry::default();
        let engine = Engine::new();
        let mut model = BTreeMap::new();
        for (i, c) in conds.iter().enumerate() {
            let p = Pattern::parse(&serde_json::json!({"n": [c]}), &ops).unwrap();
            engine.add(&format!("c{i:02}"), p.clone());
            model.insert(format!("c{i:02}"), p);
        }
        for v in &values {
            let ev = to_map(&serde_json::json!({"n": v}));
            prop_assert_eq!(engine.matches(&ev), expected(&model, &ev), "n = {}", v);
        }
    }
}

#[test]
fn patterns_round_trip_through_the_engine() {
    let ops = OperatorRegistry::default();
    let engine = Engine::new();
    let p = Pattern::parse(
        &serde_json::json!({"a": [{"equals-ignore-case": "MiXeD"}], "n": [{"numeric": [">", 1, "<=", 5]}]}),
        &ops,
    )
    .unwrap();
    engine.add("x", p.clone());
    assert_eq!(engine.get("x").map(|g| g.to_json()), Some(p.to_json()));
}
