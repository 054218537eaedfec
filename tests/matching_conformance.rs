//! Runs the conformance data in `../shared/conformance/event-ruler/` (copied
//! from aws/event-ruler): array consistency rules and events, the big event,
//! the `$or` rule files, correctness-cases (engine and naive must agree), and
//! the large-array perf scenarios (match counts, and work counted — not timed —
//! must grow linearly with the array size).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::{Value as Json, json};
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, naive};
use signalbox_model::{Map, Value};

fn data(name: &str) -> Json {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/event-ruler")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn to_map(j: &Json) -> Map {
    match Value::from_json(j, "params").unwrap() {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn parse(j: &Json) -> Pattern {
    Pattern::parse(j, &OperatorRegistry::default()).unwrap_or_else(|e| panic!("{j}: {e}"))
}

/// The non-array-consistent reading, for contrast: every leaf path of an
/// exact-value rule is checked independently against all values at that path.
fn flattened_match(rule: &Json, event: &Json) -> bool {
    fn values<'a>(v: &'a Json, path: &[&str], out: &mut Vec<&'a Json>) {
        match v {
            Json::Array(items) => items.iter().for_each(|it| values(it, path, out)),
            Json::Object(m) => {
                if let Some((first, rest)) = path.split_first()
                    && let Some(child) = m.get(*first)
                {
                    values(child, rest, out);
                }
            }
            scalar if path.is_empty() => out.push(scalar),
            _ => {}
        }
    }
    fn walk(rule: &Json, path: &mut Vec<String>, event: &Json) -> bool {
        match rule {
            Json::Object(m) => m.iter().all(|(k, v)| {
                path.push(k.clone());
                let ok = walk(v, path, event);
                path.pop();
                ok
            }),
            Json::Array(allowed) => {
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                let mut found = Vec::new();
                values(event, &p, &mut found);
                found.iter().any(|v| allowed.contains(v))
            }
            _ => false,
        }
    }
    walk(rule, &mut Vec::new(), event)
}

#[test]
fn array_rules_are_array_consistent() {
    let rules: Vec<Json> = (1..=4)
        .map(|i| data(&format!("arrayRule{i}.json")))
        .collect();
    let events: Vec<Json> = (1..=4)
        .map(|i| data(&format!("arrayEvent{i}.json")))
        .collect();
    // expected[rule][event], worked out from the semantics (see docs/MATCHING.md).
    let consistent = [
        [true, false, false, false],
        [true, false, false, false],
        [false, false, false, true],
        [false, false, true, true],
    ];
    let flattened = [
        [true, false, false, false],
        [true, false, false, false],
        [false, false, true, true],
        [false, false, true, true],
    ];
    let engine = Engine::new();
    for (r, rule) in rules.iter().enumerate() {
        engine.add(&format!("rule{}", r + 1), parse(rule));
    }
    for (e, event) in events.iter().enumerate() {
        let params = to_map(event);
        let got = engine.matches(&params);
        for (r, rule) in rules.iter().enumerate() {
            let id = format!("rule{}", r + 1);
            assert_eq!(
                got.contains(&id),
                consistent[r][e],
                "{id} vs arrayEvent{}",
                e + 1
            );
            assert_eq!(naive::matches(&parse(rule), &params), consistent[r][e]);
            assert_eq!(
                flattened_match(rule, event),
                flattened[r][e],
                "flattened reading of {id} vs arrayEvent{}",
                e + 1
            );
        }
    }
}

#[test]
fn big_event_matches_its_rule() {
    let event = data("bigEvent.json");
    let params = to_map(&event);
    let rule = parse(&data("bigEventRule.json"));
    let engine = Engine::new();
    engine.add("big", rule.clone());
    engine.add("other", parse(&json!({"detail": {"eventName": ["Nope"]}})));
    assert_eq!(engine.matches(&params), vec!["big"]);
    assert!(naive::matches(&rule, &params));
    let ex = engine.explain("big", &params).unwrap();
    assert!(ex.matched);
    assert!(ex.conditions.len() >= 6);
}

#[test]
fn or_relationship_rules_parse_and_match() {
    let rules = data("orRelationshipRules.json");
    let rules: Vec<Pattern> = rules.as_array().unwrap().iter().map(parse).collect();
    assert_eq!(rules.len(), 5);
    let engine = Engine::new();
    for (i, r) in rules.iter().enumerate() {
        engine.add(&format!("or{i}"), r.clone());
        assert!(r.to_json().get("$or").is_some_and(Json::is_array));
    }
    let cases = [
        (json!({"metricName": "CPUUtilization"}), vec!["or0"]),
        (json!({"namespace": "AWS/ES"}), vec!["or0"]),
        (
            json!({"metricName": "ReadLatency", "detail": {"source": "aws.cloudwatch"}}),
            vec!["or0", "or1"],
        ),
        (
            json!({"source": "aws.cloudwatch", "scope": "Service"}),
            vec!["or2", "or3"],
        ),
        (
            json!({"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2"}),
            vec!["or0", "or2"],
        ),
        (
            json!({"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1000}),
            vec!["or0", "or2", "or3"],
        ),
        (
            json!({"source": "aws.cloudwatch", "detail": {"state": {"value": "ALARM"}}, "withoutConfiguration": {"metric": {"name": "AWS/Default"}}}),
            vec!["or4"],
        ),
        (
            json!({"source": "aws.cloudwatch", "detail": {"state": {"value": "OK"}}, "withoutConfiguration": {"metric": {"name": "AWS/Default"}}}),
            vec![],
        ),
    ];
    for (event, want) in cases {
        let params = to_map(&event);
        assert_eq!(engine.matches(&params), want, "{event}");
        for (i, r) in rules.iter().enumerate() {
            assert_eq!(
                naive::matches(r, &params),
                want.contains(&format!("or{i}").as_str()),
                "naive or{i} on {event}"
            );
        }
    }
}

#[test]
fn or_wording_as_field_name() {
    let rules = data("normalRulesWithOrWording.json");
    let rules: Vec<Pattern> = rules.as_array().unwrap().iter().map(parse).collect();
    assert_eq!(rules.len(), 4);
    assert!(rules[0].to_json()["$or"].is_array());
    assert!(
        rules[1].to_json()["$or"].is_object(),
        "an object under $or is a nested field"
    );
    assert!(naive::matches(
        &rules[0],
        &to_map(&json!({"$or": "10.0.0.7"}))
    ));
    assert!(!naive::matches(
        &rules[0],
        &to_map(&json!({"$or": "10.0.1.7"}))
    ));
    assert!(naive::matches(
        &rules[1],
        &to_map(
            &json!({"source": "aws.cloudwatch", "$or": {"metricType": "MetricType", "namespace": "AWS/ES"}})
        )
    ));
    assert!(naive::matches(
        &rules[2],
        &to_map(&json!({"time": "2017-10-02T00:00:00Z", "detail": {"$or": 3}}))
    ));
    assert!(naive::matches(
        &rules[2],
        &to_map(&json!({"time": "2017-10-02T00:00:00Z", "detail": {"$or": "10.9.9.9"}}))
    ));
    assert!(!naive::matches(
        &rules[3],
        &to_map(&json!({"detail": {"$or": 7}}))
    ));
    assert!(naive::matches(
        &rules[3],
        &to_map(&json!({"detail": {"$or": 11}}))
    ));
}

#[test]
fn wrong_or_rules_are_rejected_with_a_path() {
    let rules = data("wrongOrRelationshipRules.json");
    let errors: Vec<String> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            Pattern::parse(r, &OperatorRegistry::default())
                .expect_err("must be rejected")
                .to_string()
        })
        .collect();
    assert!(
        errors[0].starts_with("$or: $or must be an array of at least two sub-patterns"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("detail.$or[2]: expected an object"),
        "{}",
        errors[1]
    );
}

#[test]
fn correctness_cases_engine_agrees_with_naive() {
    let cases = data("correctness-cases.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 51);
    let engine = Engine::new();
    let rules: Vec<Pattern> = cases.iter().map(|c| parse(&c["rule"])).collect();
    for (i, r) in rules.iter().enumerate() {
        engine.add(&format!("{i:02}"), r.clone());
    }
    let mut matched = 0;
    for (i, c) in cases.iter().enumerate() {
        let params = to_map(&c["event"]);
        let got = engine.matches(&params);
        for (j, r) in rules.iter().enumerate() {
            assert_eq!(
                got.contains(&format!("{j:02}")),
                naive::matches(r, &params),
                "rule of {:?} on event of {:?}",
                cases[j]["name"],
                c["name"]
            );
        }
        if got.contains(&format!("{i:02}")) {
            matched += 1;
        }
    }
    // A few whose answer follows directly from array consistency and exists semantics.
    let expect = |name: &str, want: bool| {
        let (i, c) = cases
            .iter()
            .enumerate()
            .find(|(_, c)| c["name"] == name)
            .unwrap();
        assert_eq!(
            naive::matches(&rules[i], &to_map(&c["event"])),
            want,
            "{name}"
        );
    };
    expect("objarray: same element", true);
    expect("objarray: split", false);
    expect("objarray: 3 elem, last valid", true);
    expect("nested: inner split", false);
    expect("exists-false: absent", true);
    expect("exists-false: present", false);
    expect("empty array", false);
    expect("primarray: empty prim array", false);
    expect(
        "N emails, only last element has name \u{2014} dedup loses the only valid match",
        true,
    );
    assert!(
        matched > 20 && matched < 51,
        "{matched} of 51 matched their own event"
    );
}

fn strs(prefix: &str, n: usize) -> Json {
    Json::Array((0..n).map(|i| json!(format!("{prefix}{i}"))).collect())
}

/// Builds the event for a perf scenario's generator name at a size.
fn generate(generator: &str, n: usize) -> Json {
    match generator {
        "primArrayPlusScalar" => json!({"d": {"tags": strs("t", n), "type": "GROUP"}}),
        "primArrayOnly" => json!({"d": {"tags": strs("t", n)}}),
        "objArrayBothFields" => {
            json!({"d": (0..n).map(|i| json!({"a": i, "b": i})).collect::<Vec<_>>()})
        }
        "objArrayLastValid" => {
            let mut d: Vec<Json> = (0..n - 1).map(|i| json!({"a": i})).collect();
            d.push(json!({"a": n, "b": n}));
            json!({ "d": d })
        }
        "objArrayAllPartial" => {
            json!({"d": (0..n).map(|i| if i % 2 == 0 { json!({"a": i}) } else { json!({"b": i}) }).collect::<Vec<_>>()})
        }
        "customerLike" => json!({"detail": {
            "data": (0..n).map(|i| json!({"name": format!("n{i}"), "type": "USER", "domains": [{"email": format!("e{i}@x")}]})).collect::<Vec<_>>(),
            "context": {"companyId": "c1", "userId": "u1", "email": "u1@x"}}}),
        "primInsideObjArray" => {
            json!({"detail": {"data": (0..3).map(|k| json!({"name": strs(&format!("n{k}-"), n / 3), "type": "T"})).collect::<Vec<_>>()}})
        }
        "noObjArrayLargePrim" => json!({"detail": {"data": {"name": strs("n", n), "type": "T"}}}),
        "nested2Level" => json!({"a": (0..n).map(|i| json!({"b": (0..10).map(|j| {
            if i == n - 1 && j == 9 { json!({"x": j, "y": j}) } else if j % 2 == 0 { json!({"x": j}) } else { json!({"y": j}) }
        }).collect::<Vec<_>>()})).collect::<Vec<_>>()}),
        "deepNestedPrim" => {
            json!({"a": (0..3).map(|_| json!({"b": {"tags": strs("t", n), "type": "T"}})).collect::<Vec<_>>()})
        }
        "wideRulePrimArray" => json!({"d": {"a": strs("a", n), "b": "x", "c": "y"}}),
        "twoPrimArrays" => json!({"tags": strs("t", n), "cats": strs("c", n), "v": "1"}),
        "controlScalar" => json!({"a": 1, "b": 2}),
        other => panic!("unknown generator {other}"),
    }
}

#[test]
fn perf_scenarios_match_and_stay_linear() {
    let scenarios = data("perf-scenarios.json");
    for s in scenarios.as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let engine = Engine::new();
        let rule = parse(&s["rule"]);
        engine.add("r", rule.clone());
        let expected = s["expectedMatches"].as_u64().unwrap() as usize;
        let mut per_element: Vec<(usize, f64)> = Vec::new();
        for size in s["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
        {
            let event = generate(s["generator"].as_str().unwrap(), size);
            let params = to_map(&event);
            let (ids, stats) = engine.matches_with_stats(&params);
            assert_eq!(ids.len(), expected, "{name} at size {size}");
            assert_eq!(
                naive::matches(&rule, &params),
                expected == 1,
                "naive: {name} at size {size}"
            );
            let work = stats.index_probes + stats.candidates + stats.eval_steps;
            per_element.push((size, work as f64 / size as f64));
        }
        if per_element.len() > 1 {
            let lo = per_element
                .iter()
                .map(|p| p.1)
                .fold(f64::INFINITY, f64::min);
            let hi = per_element.iter().map(|p| p.1).fold(0.0, f64::max);
            assert!(
                hi <= 2.0 * lo + 1.0,
                "{name}: work per array element grows with size: {per_element:?}"
            );
        }
    }
}
