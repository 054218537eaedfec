//! Property tests: the indexed engine must agree with the naive evaluator
//! (pattern by pattern) on random patterns and random params, including after
//! random sequences of adds, replacements and removals. Patterns and params are
//! drawn from small vocabularies so that matches are frequent and every
//! operator, arrays of objects, dotted paths and `$or` all occur.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, naive};
use signalbox_model::{Map, Value};

fn alternative() -> impl Strategy<Value = Json> {
    prop_oneof![
        prop::sample::select(vec!["", "a", "ab", "abc", "AB", "ß", "x", "10.1.2.3"]).prop_map(|s| json!(s)),
        prop::sample::select(vec![0.0, 1.0, 1.5, -1.0, 35.0, 2.0]).prop_map(|n| json!(n)),
        prop::sample::select(vec![0i64, 1, 2, 35, 10]).prop_map(|n| json!(n)),
        Just(json!(null)),
        Just(json!(true)),
        prop::sample::select(vec!["", "a", "ab", "x"]).prop_map(|s| json!({"prefix": s})),
        prop::sample::select(vec!["c", "bc", "b"]).prop_map(|s| json!({"suffix": s})),
        Just(json!({"prefix": {"equals-ignore-case": "A"}})),
        Just(json!({"suffix": {"equals-ignore-case": "C"}})),
        prop::sample::select(vec!["ab", "ss", "SS", "x"]).prop_map(|s| json!({"equals-ignore-case": s})),
        prop::sample::select(vec!["a*", "*c", "a*c", "*", "*b*", "abc"]).prop_map(|s| json!({"wildcard": s})),
        prop_oneof![
            Just(json!({"anything-but": "a"})),
            Just(json!({"anything-but": ["a", "abc"]})),
            Just(json!({"anything-but": [1, 35]})),
            Just(json!({"anything-but": {"prefix": "a"}})),
            Just(json!({"anything-but": {"suffix": "c"}})),
            Just(json!({"anything-but": {"equals-ignore-case": ["AB"]}})),
            Just(json!({"anything-but": {"wildcard": "a*"}})),
        ],
        (-2i64..40, 0i64..20, any::<bool>(), any::<bool>()).prop_map(|(lo, w, li, hi)| {
            json!({"numeric": [if li { ">=" } else { ">" }, lo, if hi { "<=" } else { "<" }, lo + w + 1]})
        }),
        (-2i64..40, prop::sample::select(vec![">", ">=", "<", "<=", "="])).prop_map(|(x, op)| json!({"numeric": [op, x]})),
        Just(json!({"numeric": [">", 0], "anything-but": [1]})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
        prop::sample::select(vec!["10.0.0.0/8", "10.1.0.0/16", "::1/128"]).prop_map(|c| json!({"cidr": c})),
    ]
}

fn leaf() -> impl Strategy<Value = Json> {
    prop::collection::vec(alternative(), 1..3).prop_map(Json::Array)
}

fn fields(depth: u32) -> BoxedStrategy<Json> {
    let keys = prop::sample::select(vec!["a", "b", "n", "o.x", "tags"]);
    let flat = prop::collection::btree_map(keys, leaf(), 1..3)
        .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    let nested = (
        flat,
        prop::option::of(prop::collection::btree_map(
            prop::sample::select(vec!["k", "v"]),
            leaf(),
            1..3,
        )),
    )
        .prop_map(|(mut base, arr)| {
            if let Some(arr) = arr {
                base["arr"] =
                    Json::Object(arr.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            }
            base
        });
    if depth == 0 {
        return nested.boxed();
    }
    (
        nested,
        prop::option::of(prop::collection::vec(fields(depth - 1), 2..4)),
    )
        .prop_map(|(mut base, or)| {
            if let Some(branches) = or {
                base["$or"] = Json::Array(branches);
            }
            base
        })
        .boxed()
}

fn pattern() -> impl Strategy<Value = Pattern> {
    fields(1).prop_map(|j| {
        Pattern::parse(&j, &OperatorRegistry::default())
            .unwrap_or_else(|e| panic!("generated an invalid pattern {j}: {e}"))
    })
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        prop::sample::select(vec![
            "", "a", "ab", "abc", "AB", "Abc", "ß", "SS", "ss", "x", "10.1.2.3", "10.2.0.1", "::1"
        ])
        .prop_map(|s| json!(s)),
        prop::sample::select(vec![0.0, 1.0, 1.5, -1.0, 35.0, 2.0, -0.0, 10.5])
            .prop_map(|n| json!(n)),
        (-3i64..45).prop_map(|n| json!(n)),
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn value() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(Json::Array),
        1 => prop::collection::vec(prop::collection::vec(scalar(), 0..3).prop_map(Json::Array), 0..3).prop_map(Json::Array),
    ]
}

fn object_of(keys: Vec<&'static str>) -> impl Strategy<Value = Json> {
    prop::collection::btree_map(prop::sample::select(keys), value(), 0..3)
        .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn params() -> impl Strategy<Value = Map> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "n", "tags", "z"]),
            value(),
            0..5,
        ),
        prop::option::of(prop_oneof![
            object_of(vec!["x", "y"]),
            prop::collection::vec(object_of(vec!["x", "y"]), 0..3).prop_map(Json::Array),
            scalar()
        ]),
        prop::option::of(prop::collection::vec(object_of(vec!["k", "v"]), 0..4)),
    )
        .prop_map(|(flat, o, arr)| {
            let mut m: serde_json::Map<String, Json> =
                flat.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if let Some(o) = o {
                m.insert("o".into(), o);
            }
            if let Some(arr) = arr {
                m.insert("arr".into(), Json::Array(arr));
            }
            match Value::from_json(&Json::Object(m), "params").unwrap() {
                Value::Object(m) => m,
                _ => unreachable!("built an object"),
            }
        })
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, Pattern),
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![3 => (0u8..24, pattern()).prop_map(|(i, p)| Op::Add(i, p)), 1 => (0u8..24).prop_map(Op::Remove)]
}

fn expected(model: &BTreeMap<String, Pattern>, params: &Map) -> Vec<String> {
    model
        .iter()
        .filter(|(_, p)| naive::matches(p, params))
        .map(|(id, _)| id.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_naive(patterns in prop::collection::vec(pattern(), 1..30), events in prop::collection::vec(params(), 1..8)) {
        let engine = Engine::new();
        let mut model = BTreeMap::new();
        for (i, p) in patterns.into_iter().enumerate() {
            let id = format!("p{i:02}");
            engine.add(&id, p.clone());
            model.insert(id, p);
        }
        for ev in &events {
            prop_assert_eq!(engine.matches(ev), expected(&model, ev), "params {:?}", ev);
            for (id, p) in &model {
                prop_assert_eq!(engine.explain(id, ev).map(|e| e.matched), Some(naive::matches(p, ev)));
            }
        }
    }

    #[test]
    fn engine_agrees_after_random_add_remove(ops in prop::collection::vec(op(), 1..60), events in prop::collection::vec(params(), 1..5)) {
        let engine = Engine::new();
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
            if step % 5 == 0 {
                for ev in &events {
                    prop_assert_eq!(engine.matches(ev), expected(&model, ev));
                }
            }
        }
        for ev in &events {
            prop_assert_eq!(engine.matches(ev), expected(&model, ev));
        }
        // Remove everything: nothing may be left behind (no ghosts).
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
