//! API-level tests of the matcher crate: parsing and its errors, custom
//! operators, explain, and the engine's add/remove/match contract.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use signalbox_matcher::{
    CustomOperator, Engine, OperatorRegistry, Pattern, PatternError, PreparedOperator, Verdict,
    naive,
};
use signalbox_model::{Map, Value};

fn params(j: serde_json::Value) -> Map {
    match Value::from_json(&j, "params").unwrap() {
        Value::Object(m) => m,
        other => panic!("params must be an object, got {other}"),
    }
}

fn parse(j: serde_json::Value) -> Pattern {
    Pattern::parse(&j, &OperatorRegistry::default()).unwrap()
}

fn err(j: serde_json::Value) -> PatternError {
    Pattern::parse(&j, &OperatorRegistry::default()).unwrap_err()
}

#[test]
fn numeric_operator_error_names_path_and_choices() {
    let e = err(json!({"partition": [{"numeric": ["=>", 1]}]}));
    assert_eq!(
        e.to_string(),
        r#"partition[0].numeric: expected an operator ("<", "<=", "=", ">", ">=") at position 0, found "=>""#
    );
}

#[test]
fn errors_name_path_and_problem() {
    let cases = vec![
        (
            json!({"a": "x"}),
            "a",
            "expected an array of values or an object of fields",
        ),
        (json!({"a": []}), "a", "empty array"),
        (
            json!({"a": [{"prefix": 5}]}),
            "a[0].prefix",
            "expected a string",
        ),
        (
            json!({"a": [{"numeric": [">", 5, ">", 6]}]}),
            "a[0].numeric",
            "unbalanced range",
        ),
        (
            json!({"a": [{"numeric": [">", 10, "<", 5]}]}),
            "a[0].numeric",
            "empty range",
        ),
        (
            json!({"a": [{"numeric": ["=", 5, "<", 6]}]}),
            "a[0].numeric",
            "cannot be combined",
        ),
        (
            json!({"a": [{"cidr": "10.0.0.0/33"}]}),
            "a[0].cidr",
            "prefix length",
        ),
        (
            json!({"a": [{"cidr": "nope"}]}),
            "a[0].cidr",
            "not an IP address",
        ),
        (
            json!({"a": [{"wildcard": "a**b"}]}),
            "a[0].wildcard",
            "consecutive",
        ),
        (
            json!({"a": [{"exists": "yes"}]}),
            "a[0].exists",
            "expected true or false",
        ),
        (
            json!({"a": [{"exists": true, "prefix": "x"}]}),
            "a[0]",
            "cannot be combined",
        ),
        (
            json!({"b": {"c": [{"regex": "x"}]}}),
            "b.c[0].regex",
            "unknown operator \"regex\"",
        ),
        (json!({"$or": [{"a": ["x"]}]}), "$or", "at least two"),
        (
            json!({"$or": [{"a": ["x"]}, [{"b": ["y"]}]]}),
            "$or[1]",
            "expected an object",
        ),
        (json!([1]), "(pattern)", "must be a JSON object"),
        (json!({"a": [["x"]]}), "a[0]", "nested arrays"),
        (
            json!({"a": [{"anything-but": {"prefix": ""}}]}),
            "a[0].anything-but.prefix",
            "must not be empty",
        ),
    ];
    for (pattern, path, problem) in cases {
        let e = err(pattern.clone());
        assert_eq!(e.path, path, "pattern {pattern}: {e}");
        assert!(e.problem.contains(problem), "pattern {pattern}: {e}");
    }
}

#[test]
fn too_deep_and_too_many_fields_are_rejected() {
    let mut deep = json!({"leaf": ["x"]});
    for i in 0..20 {
        deep = json!({ format!("l{i}"): deep });
    }
    assert!(err(deep).problem.contains("deeper"));
    let wide: serde_json::Map<String, serde_json::Value> =
        (0..300).map(|i| (format!("f{i}"), json!(["x"]))).collect();
    assert!(
        err(serde_json::Value::Object(wide))
            .problem
            .contains("more than 256 fields")
    );
}

#[test]
fn unknown_operator_lists_builtin_and_custom_operators() {
    let mut ops = OperatorRegistry::default();
    ops.register(Arc::new(Semver::default())).unwrap();
    let e = Pattern::parse(&json!({"v": [{"semvar": "1"}]}), &ops).unwrap_err();
    for name in ["anything-but", "cidr", "numeric", "wildcard", "semver"] {
        assert!(e.problem.contains(&format!("\"{name}\"")), "{e}");
    }
}

#[test]
fn custom_operators_lists_the_operators_in_nested_fields_and_or_branches() {
    let mut ops = OperatorRegistry::default();
    ops.register(Arc::new(Semver::default())).unwrap();
    let p = Pattern::parse(
        &json!({"a": ["x"], "$or": [{"b": {"c": [{"semver": ">=1.0.0"}]}}, {"d": [1]}]}),
        &ops,
    )
    .unwrap();
    assert_eq!(
        p.custom_operators().into_iter().collect::<Vec<_>>(),
        ["semver"]
    );
    assert!(
        parse(json!({"a": [{"prefix": "x"}]}))
            .custom_operators()
            .is_empty()
    );
}

#[test]
fn to_json_round_trips_and_expands_dotted_keys() {
    let p = parse(json!({
        "owner.team": [{"prefix": "data-"}],
        "owner": {"name": ["x"]},
        "n": [1, 2.5, null, true, {"numeric": [">", 0, "<=", 5]}, {"anything-but": ["a", "b"]}],
        "$or": [{"a": [{"suffix": {"equals-ignore-case": "X"}}]}, {"b": [{"wildcard": "a\\*b*"}]}]
    }));
    let j = p.to_json();
    assert_eq!(j["owner"]["team"], json!([{"prefix": "data-"}]));
    assert_eq!(j["owner"]["name"], json!(["x"]));
    let again = Pattern::parse(&j, &OperatorRegistry::default()).unwrap();
    assert_eq!(again.to_json(), j);
    assert_eq!(again, p);
}

#[test]
fn maestro_form_translates() {
    let p = Pattern::from_match_params(&json!({
        "watermark": {"value": 12345, "operator": ">="},
        "env": {"value": "prod", "operator": "="},
        "region": {"value": "eu", "operator": "!="},
        "limit": {"value": "10", "operator": "<"}
    }))
    .unwrap();
    assert!(naive::matches(
        &p,
        &params(json!({"watermark": 12345, "env": "prod", "region": "us", "limit": 9.5}))
    ));
    assert!(!naive::matches(
        &p,
        &params(json!({"watermark": 12344, "env": "prod", "region": "us", "limit": 9}))
    ));
    assert!(!naive::matches(
        &p,
        &params(json!({"watermark": 20000, "env": "prod", "region": "eu", "limit": 9}))
    ));
    let e = Pattern::from_match_params(&json!({"w": {"value": 1, "operator": "=>"}})).unwrap_err();
    assert_eq!(e.path, "w.operator");
    let e =
        Pattern::from_match_params(&json!({"w": {"value": "abc", "operator": ">"}})).unwrap_err();
    assert_eq!(e.path, "w.value");
}

/// A native custom operator: `{"semver": ">=1.2.3"}` over "x.y.z" strings,
/// counting how often it is tested.
#[derive(Default)]
struct Semver {
    calls: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct SemverAtLeast {
    min: (u64, u64, u64),
    calls: Arc<AtomicUsize>,
}

fn version(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

impl CustomOperator for Semver {
    fn name(&self) -> &str {
        "semver"
    }
    fn prepare(&self, arg: &serde_json::Value) -> Result<Box<dyn PreparedOperator>, String> {
        let s = arg.as_str().ok_or("expected a string like \">=1.2.3\"")?;
        let v = s
            .strip_prefix(">=")
            .and_then(version)
            .ok_or(format!("cannot parse \"{s}\""))?;
        Ok(Box::new(SemverAtLeast {
            min: v,
            calls: self.calls.clone(),
        }))
    }
}

impl PreparedOperator for SemverAtLeast {
    fn test(&self, value: &Value) -> Result<bool, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let s = value.as_str().ok_or("not a string")?;
        Ok(version(s).ok_or(format!("bad version \"{s}\""))? >= self.min)
    }
}

#[test]
fn custom_operators_run_only_after_indexed_conditions_pass() {
    let op = Semver::default();
    let calls = op.calls.clone();
    let mut ops = OperatorRegistry::default();
    ops.register(Arc::new(op)).unwrap();
    let p = Pattern::parse(
        &json!({"version": [{"semver": ">=2.1.0"}], "model": ["ranker"]}),
        &ops,
    )
    .unwrap();
    let engine = Engine::new();
    engine.add("m", p.clone());

    assert!(
        engine
            .matches(&params(json!({"model": "other", "version": "3.0.0"})))
            .is_empty()
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "custom operator must not run when the indexed condition fails"
    );

    assert_eq!(
        engine.matches(&params(json!({"model": "ranker", "version": "3.0.0"}))),
        vec!["m"]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        engine
            .matches(&params(json!({"model": "ranker", "version": "2.0.9"})))
            .is_empty()
    );

    let ex = engine
        .explain("m", &params(json!({"model": "ranker", "version": "v2"})))
        .unwrap();
    assert!(!ex.matched);
    let v = ex.conditions.iter().find(|c| c.path == "version").unwrap();
    assert_eq!(v.verdict, Verdict::Failed);
    assert!(v.error.as_deref().unwrap_or("").contains("bad version"));

    let bad = Pattern::parse(&json!({"version": [{"semver": "~1"}]}), &ops).unwrap_err();
    assert_eq!(bad.path, "version[0].semver");
    assert!(bad.problem.contains("cannot parse"));
    assert!(ops.register(Arc::new(Semver::default())).is_ok());
    assert_eq!(ops.names().iter().filter(|n| *n == "semver").count(), 1);
}

#[test]
fn explain_reports_passed_failed_not_reached_and_seen() {
    let p = parse(
        json!({"table": ["prod.events"], "partition": [{"numeric": [">=", 20261101]}], "owner": {"team": [{"prefix": "data-"}]}}),
    );
    let ex = signalbox_matcher::explain(
        &p,
        &params(
            json!({"table": "dev.events", "partition": 20261126, "owner": {"team": "data-eng"}}),
        ),
    );
    assert!(!ex.matched);
    let by_path = |p: &str| ex.conditions.iter().find(|c| c.path == p).unwrap().clone();
    assert_eq!(by_path("table").verdict, Verdict::Failed);
    assert_eq!(by_path("table").seen, Some(json!("dev.events")));
    assert_eq!(by_path("partition").verdict, Verdict::NotReached);
    assert_eq!(by_path("owner.team").verdict, Verdict::NotReached);
    let ok = signalbox_matcher::explain(
        &p,
        &params(
            json!({"table": "prod.events", "partition": 20261126, "owner": {"team": "data-eng"}}),
        ),
    );
    assert!(ok.matched);
    assert!(ok.conditions.iter().all(|c| c.verdict == Verdict::Passed));
    let missing = signalbox_matcher::explain(&p, &params(json!({"table": "prod.events"})));
    assert_eq!(
        missing
            .conditions
            .iter()
            .find(|c| c.path == "partition")
            .unwrap()
            .seen,
        None
    );
    let as_json = serde_json::to_value(&ok).unwrap();
    assert_eq!(as_json["conditions"][0]["verdict"], json!("passed"));
}

#[test]
fn engine_add_replace_remove() {
    let e = Engine::new();
    assert!(e.is_empty());
    e.add("a", parse(json!({"x": ["1"]})));
    e.add("b", parse(json!({"x": [{"prefix": "1"}]})));
    e.add("c", parse(json!({"y": [{"exists": false}]})));
    let m = params(json!({"x": "1"}));
    assert_eq!(e.matches(&m), vec!["a", "b", "c"]);
    e.add("a", parse(json!({"x": ["2"]})));
    assert_eq!(e.len(), 3);
    assert_eq!(e.matches(&m), vec!["b", "c"]);
    assert!(e.remove("b"));
    assert!(!e.remove("b"));
    assert_eq!(e.matches(&m), vec!["c"]);
    assert!(e.remove("a") && e.remove("c"));
    assert!(e.is_empty());
    assert!(e.matches(&m).is_empty());
    assert!(e.explain("a", &m).is_none());
}

#[test]
fn readers_run_while_writers_churn() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    let e = Arc::new(Engine::new());
    e.add("stable", parse(json!({"k": ["v"]})));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (e, stop, reads) = (e.clone(), stop.clone(), reads.clone());
        std::thread::spawn(move || {
            let m = params(json!({"k": "v"}));
            while !stop.load(Ordering::Acquire) {
                let ids = e.matches(&m);
                assert!(
                    ids.iter().any(|i| i == "stable"),
                    "stable pattern vanished: {ids:?}"
                );
                reads.fetch_add(1, Ordering::Release);
            }
        })
    };
    // The churn starts once the reader is reading, and goes on until the
    // reader has read during it, so the two really overlap.
    while reads.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    let before = reads.load(Ordering::Acquire);
    let mut i = 0;
    while i < 2000 || reads.load(Ordering::Acquire) < before + 100 {
        e.add(&format!("p{i}"), parse(json!({"k": ["v"]})));
        if i % 2 == 0 {
            e.remove(&format!("p{i}"));
        }
        i += 1;
    }
    stop.store(true, Ordering::Release);
    reader.join().unwrap();
    assert_eq!(e.len(), 1 + i / 2);
}

/// Single-leaf patterns, decided by their index entry alone or verified
/// against the value in hand during the index walk, must still agree with
/// the naive evaluator on every kind of value, including the ones their index
/// key does not describe (numbers, null, arrays mixing kinds, objects in
/// arrays).
#[test]
fn patterns_decided_by_the_index_agree_with_naive() {
    let patterns = [
        json!({"s": [{"anything-but": ["FULTON", "CLAY", "FULTON"]}]}),
        json!({"s": [{"anything-but": "FULTON"}]}),
        json!({"a": {"s": [{"anything-but": ["x"]}]}}),
        json!({"s": [{"wildcard": "*TON"}]}),
        json!({"s": [{"wildcard": "FUL*"}]}),
        json!({"s": [{"wildcard": "F*N"}]}),
        json!({"s": [{"prefix": "FU"}]}),
        json!({"s": [{"suffix": {"equals-ignore-case": "ton"}}]}),
        json!({"s": [{"equals-ignore-case": "fulton"}]}),
        json!({"s": [null]}),
        json!({"s": [false]}),
        json!({"a": {"s": ["x"]}}),
        json!({"s": [{"numeric": [">", 3]}, "CLAY"]}),
        json!({"s": [{"exists": true}]}),
        json!({"a": {"s": [{"wildcard": "*"}]}}),
        json!({"s": [{"anything-but": {"prefix": "F"}}]}),
        json!({"s": [{"prefix": "F", "suffix": "N"}]}),
    ];
    let signals = [
        json!({"s": "FULTON"}),
        json!({"s": "CLAY"}),
        json!({"s": "fulton"}),
        json!({"s": "FULTONX"}),
        json!({"s": ""}),
        json!({"s": 5}),
        json!({"s": null}),
        json!({"s": false}),
        json!({"s": ["FULTON", "CLAY"]}),
        json!({"s": ["FULTON", 7]}),
        json!({"s": [["CLAY"], ["OAK"]]}),
        json!({"s": []}),
        json!({"s": {"t": "x"}}),
        json!({"t": "FULTON"}),
        json!({"a": {"s": "x"}}),
        json!({"a": {"s": "y"}}),
        json!({"a": [{"s": "x"}, {"s": "y"}]}),
        json!({"a": [{"s": "x"}]}),
        json!({"a": ["x"]}),
    ];
    let engine = Engine::new();
    let parsed: Vec<Pattern> = patterns.iter().map(|p| parse(p.clone())).collect();
    for (i, p) in parsed.iter().enumerate() {
        engine.add(&format!("{i:02}"), p.clone());
    }
    for s in &signals {
        let m = params(s.clone());
        let want: Vec<String> = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| naive::matches(p, &m))
            .map(|(i, _)| format!("{i:02}"))
            .collect();
        assert_eq!(engine.matches(&m), want, "signal {s}");
    }
    // Removing every pattern leaves no entry behind that still matches.
    for i in 0..parsed.len() {
        assert!(engine.remove(&format!("{i:02}")));
    }
    for s in &signals {
        assert!(engine.matches(&params(s.clone())).is_empty(), "signal {s}");
    }
}
