//! Generators shared by the matcher's property tests: random patterns over a
//! small vocabulary (so that matches are frequent and every operator, nested
//! fields, arrays of objects and `$or` occur), random params, and a JSON
//! writer that spells the same document many ways (whitespace, escapes,
//! number forms, repeated keys) and can damage it; the naive evaluator's
//! answer for a set of patterns, and the case files ([`cases`]).

#![allow(dead_code, clippy::unwrap_used)]

pub mod cases;
mod rng;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, naive};
use signalbox_model::Map;

pub use rng::Rng;

/// An engine holding `patterns` as `p00`, `p01`, …, and the same patterns by
/// id for [`expected`].
pub fn engine_of(patterns: Vec<Pattern>) -> (Engine, BTreeMap<String, Pattern>) {
    let engine = Engine::new();
    let mut model = BTreeMap::new();
    for (i, p) in patterns.into_iter().enumerate() {
        let id = format!("p{i:02}");
        engine.add(&id, p.clone());
        model.insert(id, p);
    }
    (engine, model)
}

/// The ids whose patterns match `params` by the naive evaluator, in order.
pub fn expected(model: &BTreeMap<String, Pattern>, params: &Map) -> Vec<String> {
    model
        .iter()
        .filter(|(_, p)| naive::matches(p, params))
        .map(|(id, _)| id.clone())
        .collect()
}

/// One alternative of a leaf condition list.
pub fn alternative() -> impl Strategy<Value = Json> {
    prop_oneof![
        prop::sample::select(vec!["", "a", "ab", "abc", "AB", "ß", "x", "10.1.2.3", "é\"q"])
            .prop_map(|s| json!(s)),
        prop::sample::select(vec![0.0, 1.0, 1.5, -1.0, 35.0, 2.0, 1e300]).prop_map(|n| json!(n)),
        prop::sample::select(vec![0i64, 1, 2, 35, 10, i64::MAX, i64::MIN]).prop_map(|n| json!(n)),
        Just(json!(null)),
        Just(json!(true)),
        prop::sample::select(vec!["", "a", "ab", "x"]).prop_map(|s| json!({"prefix": s})),
        prop::sample::select(vec!["c", "bc", "b"]).prop_map(|s| json!({"suffix": s})),
        Just(json!({"prefix": {"equals-ignore-case": "A"}})),
        Just(json!({"suffix": {"equals-ignore-case": "C"}})),
        prop::sample::select(vec!["ab", "ss", "SS", "x"])
            .prop_map(|s| json!({"equals-ignore-case": s})),
        prop::sample::select(vec!["a*", "*c", "a*c", "*", "*b*", "abc"])
            .prop_map(|s| json!({"wildcard": s})),
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
        (-2i64..40, prop::sample::select(vec![">", ">=", "<", "<=", "="]))
            .prop_map(|(x, op)| json!({"numeric": [op, x]})),
        Just(json!({"numeric": [">", 0], "anything-but": [1]})),
        // Bounds and literals beyond 2^53: some are exactly f64s, some not.
        prop::sample::select(vec![
            json!({"numeric": [">", 1_152_921_504_606_846_976_i64]}),
            json!({"numeric": [">=", 9_007_199_254_740_993_i64]}),
            json!({"numeric": ["<", 9_007_199_254_740_993_i64]}),
            json!({"numeric": [">", 1.5, "<=", 1_152_921_504_606_846_976_i64]}),
            json!({"numeric": ["=", 9_007_199_254_740_993_i64]}),
            json!(9_007_199_254_740_992_i64),
            json!(1_152_921_504_606_846_977_i64),
        ]),
        any::<bool>().prop_map(|b| json!({"exists": b})),
        prop::sample::select(vec!["10.0.0.0/8", "10.1.0.0/16", "::1/128"])
            .prop_map(|c| json!({"cidr": c})),
    ]
}

fn leaf() -> impl Strategy<Value = Json> {
    prop::collection::vec(alternative(), 1..3).prop_map(Json::Array)
}

/// The keys patterns and params use (`ké` is written escaped at times).
pub const KEYS: [&str; 6] = ["a", "b", "n", "o.x", "tags", "ké"];

fn fields(depth: u32) -> BoxedStrategy<Json> {
    let keys = prop::sample::select(KEYS.to_vec());
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

/// A random valid pattern.
pub fn pattern() -> impl Strategy<Value = Pattern> {
    fields(1).prop_map(|j| {
        Pattern::parse(&j, &OperatorRegistry::default())
            .unwrap_or_else(|e| panic!("generated an invalid pattern {j}: {e}"))
    })
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "a",
            "ab",
            "abc",
            "AB",
            "Abc",
            "ß",
            "SS",
            "ss",
            "x",
            "10.1.2.3",
            "10.2.0.1",
            "::1",
            "é\"q",
            "tab\there",
            "😀",
            "a/b\\c"
        ])
        .prop_map(|s| json!(s)),
        prop::sample::select(vec![
            0.0, 1.0, 1.5, -1.0, 35.0, 2.0, -0.0, 10.5, 1e300, 5e-324
        ])
        .prop_map(|n| json!(n)),
        (-3i64..45).prop_map(|n| json!(n)),
        prop::sample::select(vec![
            i64::MAX,
            i64::MIN,
            9_007_199_254_740_992,
            9_007_199_254_740_993,
            1_152_921_504_606_846_976,
            1_152_921_504_606_846_977,
            1_152_921_504_606_846_975,
        ])
        .prop_map(|n| json!(n)),
        prop::sample::select(vec![9_007_199_254_740_992.0, 1_152_921_504_606_846_976.0])
            .prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
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

/// Random params as JSON (always an object).
pub fn params() -> impl Strategy<Value = Json> {
    (
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "n", "tags", "z", "ké"]),
            value(),
            0..5,
        ),
        prop::option::of(prop_oneof![
            object_of(vec!["x", "y"]),
            prop::collection::vec(object_of(vec!["x", "y"]), 0..3).prop_map(Json::Array),
            scalar()
        ]),
        prop::option::of(prop::collection::vec(object_of(vec!["k", "v"]), 0..4)),
        prop::option::of(value()),
    )
        .prop_map(|(flat, o, arr, unread)| {
            let mut m: serde_json::Map<String, Json> =
                flat.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if let Some(o) = o {
                m.insert("o".into(), o);
            }
            if let Some(arr) = arr {
                m.insert("arr".into(), Json::Array(arr));
            }
            if let Some(u) = unread {
                m.insert(
                    "unread".into(),
                    json!({"deep": [u, {"more": [1, "two", null]}]}),
                );
            }
            Json::Object(m)
        })
}

/// Writes JSON text for `v`, choosing whitespace, escapes, number spellings
/// and (with `dups`) repeated keys at random; the text always means `v`.
pub struct Writer<'r> {
    pub rng: &'r mut Rng,
    pub out: String,
    /// Whether objects may carry a repeated key (earlier value overridden).
    pub dups: bool,
}

impl Writer<'_> {
    fn ws(&mut self) {
        if self.rng.one_in(6) {
            let pick = [" ", "\n", "\t", "\r\n", "  "];
            self.out
                .push_str(pick[self.rng.below(pick.len() as u64) as usize]);
        }
    }

    pub fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => self.out.push_str(&format!("\\u{:04x}", c as u32)),
                '/' if self.rng.one_in(2) => self.out.push_str("\\/"),
                c if self.rng.one_in(12) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        self.out.push_str(&format!("\\u{:04X}", u));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn number(&mut self, n: &serde_json::Number) {
        let text = n.to_string();
        if let Some(i) = n.as_i64()
            && n.is_i64()
            && self.rng.one_in(5)
        {
            // The same value as a float: a Float in the params either way.
            self.out.push_str(&format!("{i}.0"));
            return;
        }
        if !text.contains(['.', 'e', 'E']) || !self.rng.one_in(4) {
            self.out.push_str(&text);
            return;
        }
        match n.as_f64() {
            Some(f) if f.is_finite() => self.out.push_str(&format!("{f:e}")),
            _ => self.out.push_str(&text),
        }
    }

    pub fn value(&mut self, v: &Json) {
        self.ws();
        match v {
            Json::Null => self.out.push_str("null"),
            Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => self.number(n),
            Json::String(s) => self.string(s),
            Json::Array(items) => {
                self.out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.value(it);
                }
                self.ws();
                self.out.push(']');
            }
            Json::Object(m) => {
                self.out.push('{');
                let mut first = true;
                for (k, val) in m {
                    if self.dups && self.rng.one_in(5) {
                        // A repeated key: this earlier value must lose.
                        if !first {
                            self.out.push(',');
                        }
                        first = false;
                        self.ws();
                        self.string(k);
                        self.out.push(':');
                        let decoy = match self.rng.below(4) {
                            0 => json!("decoy"),
                            1 => json!({"x": "a", "k": 1, "v": "abc"}),
                            2 => json!([1, "a", {"x": 2}]),
                            _ => json!(null),
                        };
                        self.value(&decoy);
                    }
                    if !first {
                        self.out.push(',');
                    }
                    first = false;
                    self.ws();
                    self.string(k);
                    self.ws();
                    self.out.push(':');
                    self.value(val);
                }
                self.ws();
                self.out.push('}');
            }
        }
        self.ws();
    }
}

/// Writes `v` as JSON text with random choices from `seed`.
pub fn write(v: &Json, seed: u64, dups: bool) -> String {
    let mut rng = Rng::new(seed);
    let mut w = Writer {
        rng: &mut rng,
        out: String::new(),
        dups,
    };
    w.value(v);
    w.out
}

/// Damages `text` with a few random edits (bytes deleted, inserted or
/// replaced, or the end cut off); the result may or may not be valid.
pub fn damage(text: &str, seed: u64) -> Vec<u8> {
    const BYTES: &[u8] = b"\"\\{}[],: x0-.eE1nt\x01\x7f\xff\xc3\xa9";
    let mut rng = Rng::new(seed);
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        if b.is_empty() {
            break;
        }
        let at = rng.below(b.len() as u64) as usize;
        let byte = BYTES[rng.below(BYTES.len() as u64) as usize];
        match rng.below(4) {
            0 => {
                b.remove(at);
            }
            1 => b.insert(at, byte),
            2 => b[at] = byte,
            _ => b.truncate(at),
        }
    }
    b
}
