//! Property tests of the raw-bytes entry points: for random patterns and
//! random signal bodies (valid ones spelled many ways, and damaged ones),
//! `Engine::matches_signal_json`, `Engine::matches_params_json` and
//! `match_signal_json` must give exactly what the model's parser followed by
//! the parsed-params match gives — the same ids, or the same error — and the
//! ids must be those of the naive evaluator.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use signalbox_matcher::{Engine, Pattern, match_signal_json};
use signalbox_model::signal::Signal;
use signalbox_model::{FieldError, Limits};
use support::{Rng, damage, engine_of, expected, params, pattern, write};

/// What the model's parser and the parsed-params match give for a body.
fn reference(engine: &Engine, body: &[u8], limits: &Limits) -> Result<Vec<Arc<str>>, FieldError> {
    let signal = Signal::parse(body, limits)?;
    Ok(engine.matches_shared(&signal.params))
}

/// Same, for the bytes of a params object alone.
fn reference_params(
    engine: &Engine,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<Arc<str>>, FieldError> {
    let params = Signal::parse_params(bytes, limits)?;
    Ok(engine.matches_shared(&params))
}

/// One of `good`, or (with `breakage`, one time in eight) one of `bad`.
fn pick<'a>(rng: &mut Rng, breakage: bool, bad: &[&'a str], good: &[&'a str]) -> &'a str {
    let from = if breakage && rng.one_in(8) { bad } else { good };
    from[rng.below(from.len() as u64) as usize]
}

/// The optional fields of a signal body: name, one chance in how many it is
/// there, values that break a rule of the model, valid values.
type Optional = (
    &'static str,
    u64,
    &'static [&'static str],
    &'static [&'static str],
);

const OPTIONAL: [Optional; 5] = [
    (
        "id",
        2,
        &["\"\"", "7", "\"a\\u0001b\""],
        &["\"etl-8812/part\"", "null", "\"\\u00e9t\u{e9}\""],
    ),
    (
        "payload",
        2,
        &["1e400"],
        &[
            "{\"location\":\"s3://b/x\",\"n\":[1,2.5e3,{\"z\":null}]}",
            "null",
            "[]",
            "\"text\"",
            "[[[[]]]]",
        ],
    ),
    ("source", 3, &["5"], &["\"airflow\""]),
    (
        "producer",
        3,
        &["{\"run\":[1]}", "\"me\"", "{\"run\":true}"],
        &[
            "{\"workflow\":\"etl\",\"run\":8812,\"step\":\"load\",\"extra\":\"x\"}",
            "null",
            "{}",
        ],
    ),
    (
        "occurred_at",
        3,
        &["\"yesterday\""],
        &["\"2026-11-26T04:00:00Z\""],
    ),
];

/// A signal body around `params_text`, with the other fields in a random
/// order; some of them (by the seed) break a rule of the model.
fn body(params_text: &str, seed: u64, breakage: bool) -> String {
    let rng = &mut Rng::new(seed);
    let mut fields: Vec<String> = Vec::new();
    let name = pick(
        rng,
        breakage,
        &["\"a b\"", "\"_x\"", "5", "null", "\"\""],
        &["\"sig\"", "\"s\\u0069g\"", "\"table.updated/v2\""],
    );
    if !(breakage && rng.one_in(12)) {
        fields.push(format!("\"name\":{name}"));
    }
    fields.push(format!("\"params\":{params_text}"));
    for (field, odds, bad, good) in OPTIONAL {
        if rng.one_in(odds) {
            fields.push(format!("\"{field}\":{}", pick(rng, breakage, bad, good)));
        }
    }
    if breakage && rng.one_in(8) {
        fields.push("\"parms\":{}".to_string());
    }
    if breakage && rng.one_in(8) {
        fields.push("\"name\":\"sig\"".to_string());
    }
    for i in (1..fields.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        fields.swap(i, j);
    }
    let sep = if rng.one_in(4) { ", " } else { "," };
    format!("{{{}}}", fields.join(sep))
}

/// Limits: the defaults, or small ones that the generated params break often.
fn limits(pick: u8) -> Limits {
    match pick % 4 {
        0 | 1 => Limits::default(),
        2 => Limits {
            max_message_bytes: 400,
            max_params_fields: 12,
            max_depth: 3,
        },
        _ => Limits {
            max_message_bytes: 1 << 20,
            max_params_fields: 6,
            max_depth: 2,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Valid bodies (spelled many ways, repeated keys included): the same
    /// ids as the reference, which are the naive evaluator's.
    #[test]
    fn valid_bodies_match_like_the_parsed_params(
        patterns in prop::collection::vec(pattern(), 1..20),
        events in prop::collection::vec((params(), any::<u64>(), any::<bool>()), 1..6),
    ) {
        let (engine, model) = engine_of(patterns);
        let limits = Limits::default();
        for (p, seed, dups) in &events {
            let text = write(p, *seed, *dups);
            let body = body(&text, seed.rotate_left(17), false);
            let want = reference(&engine, body.as_bytes(), &limits);
            let params = Signal::parse(body.as_bytes(), &limits).unwrap().params;
            let naive_ids = expected(&model, &params);
            let got = engine.matches_signal_json(body.as_bytes(), &limits);
            prop_assert_eq!(&got, &want, "body {}", body);
            let got_ids: Vec<String> = got.unwrap().iter().map(|s| s.to_string()).collect();
            prop_assert_eq!(got_ids, naive_ids, "body {}", body);
            prop_assert_eq!(
                engine.matches_params_json(text.as_bytes(), &limits),
                reference_params(&engine, text.as_bytes(), &limits),
                "params {}", text
            );
        }
    }

    /// Bodies with broken fields, small limits and random damage: the same
    /// ids or the same error as the reference, for all three entry points.
    #[test]
    fn any_body_gets_the_reference_verdict(
        patterns in prop::collection::vec(pattern(), 1..12),
        events in prop::collection::vec((params(), any::<u64>(), any::<u8>()), 1..8),
    ) {
        let (engine, _) = engine_of(patterns);
        for (p, seed, pick) in &events {
            let limits = limits(*pick);
            let text = write(p, *seed, pick % 3 == 0);
            let body = body(&text, seed.rotate_left(29), true);
            let bytes: Vec<u8> = if pick % 2 == 0 { damage(&body, *seed) } else { body.into_bytes() };
            prop_assert_eq!(
                engine.matches_signal_json(&bytes, &limits),
                reference(&engine, &bytes, &limits),
                "body {}", String::from_utf8_lossy(&bytes)
            );
            let by_name = match_signal_json(&bytes, &limits, |name| (name == "sig").then_some(&engine));
            let want_by_name = Signal::parse(&bytes, &limits).map(|s| {
                if s.name == "sig" { engine.matches_shared(&s.params) } else { Vec::new() }
            });
            prop_assert_eq!(by_name, want_by_name, "body {}", String::from_utf8_lossy(&bytes));
            let params_bytes = if pick % 2 == 1 { damage(&text, seed ^ 0x5eed) } else { text.into_bytes() };
            prop_assert_eq!(
                engine.matches_params_json(&params_bytes, &limits),
                reference_params(&engine, &params_bytes, &limits),
                "params {}", String::from_utf8_lossy(&params_bytes)
            );
        }
    }
}

/// Inputs at the edges of each rule, one by one: numbers near the limits of
/// `i64` and `f64`, escapes and surrogates, control characters, nesting
/// beyond `serde_json`'s limit, and every limit of the model.
#[test]
fn edge_inputs_get_the_reference_verdict() {
    let engine = Engine::new();
    for (i, p) in [
        json!({"n": [{"numeric": [">", 0]}]}),
        json!({"n": [0]}),
        json!({"n": [-1]}),
        json!({"s": [{"prefix": "a"}]}),
        json!({"s": ["é"]}),
        json!({"o": {"x": [{"exists": true}]}}),
        json!({"o": {"x": [{"exists": false}]}}),
        json!({"ké": ["v"]}),
    ]
    .iter()
    .enumerate()
    {
        engine.add(
            &format!("e{i}"),
            Pattern::parse(p, &signalbox_matcher::OperatorRegistry::default()).unwrap(),
        );
    }
    let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
    let params: Vec<String> = [
        "{\"n\": 9223372036854775807}",
        "{\"n\": 9223372036854775808}",
        "{\"n\": -9223372036854775808}",
        "{\"n\": -9223372036854775809}",
        "{\"n\": 18446744073709551616}",
        "{\"n\": 123456789012345678901234567890}",
        "{\"n\": -0}",
        "{\"n\": -0.0}",
        "{\"n\": 0e5}",
        "{\"n\": 1e308}",
        "{\"n\": 1.7976931348623157e308}",
        "{\"n\": 1.7976931348623159e308}",
        "{\"n\": 1e309}",
        "{\"n\": 1e-400}",
        "{\"n\": 0.000001e305}",
        "{\"n\": 01}",
        "{\"n\": 1.}",
        "{\"n\": .5}",
        "{\"n\": 2.5E+3}",
        "{\"n\": 1e99999}",
        "{\"s\": \"\\u00e9\"}",
        "{\"s\": \"\u{e9}\"}",
        "{\"s\": \"\\ud83d\\ude00\"}",
        "{\"s\": \"\\ud83d\"}",
        "{\"s\": \"\\ude00\"}",
        "{\"s\": \"a\\x\"}",
        "{\"s\": \"a\u{1}\"}",
        "{\"s\": \"a\u{7f}\"}",
        "{\"s\": \"abc",
        "{\"k\\u00e9\": \"v\"}",
        "{\"o\": {}}",
        "{\"o\": []}",
        "{\"o\": [1, {\"x\": null}]}",
        "{\"o\": {\"x\": {}}}",
        "{\"o\": {\"x\": 1}, \"o\": 5}",
        "{\"o\": 5, \"o\": {\"x\": 1}}",
        "{\"s\": \"a\", \"s\": \"b\"}",
        "{}",
        "null",
        "[]",
        "{\"a\": 1,}",
        "{\"a\" 1}",
        "{\"a\": 1} x",
        "{\"a\": 1}   \n",
        "  {\"a\": tru}",
        "{\"a\": nul}",
        // Arrays of numbers under a field no pattern reads (skipped word by
        // word when compact).
        "{\"g\": [[-122.43463064933286,37.77929454081582,0],[1.5,-0.25,10]], \"n\": 1}",
        "{\"g\": [-122.43463064933286,01,37.77929454081582,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286,1.,37.77929454081582,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286,-,37.77929454081582,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286,1.5e400,37.7792945408158,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286,1.5e-4,37.7792945408158,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286, 37.77929454081582 ,0], \"n\": 1}",
        "{\"g\": [-122.43463064933286,37.77929454081582,0,], \"n\": 1}",
        "{\"g\": [-122.434630649332.86,37.77929454081582,0], \"n\": 1}",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("{{\"d\": {deep}}}"),
        format!("{{\"g\": [1,{}0,2], \"n\": 1}}", "1".repeat(400)),
    ])
    .collect();
    let tight = Limits {
        max_message_bytes: 40,
        max_params_fields: 2,
        max_depth: 1,
    };
    for limits in [Limits::default(), tight] {
        for p in &params {
            assert_eq!(
                engine.matches_params_json(p.as_bytes(), &limits),
                reference_params(&engine, p.as_bytes(), &limits),
                "params {p}"
            );
            for body in [
                format!("{{\"name\":\"sig\",\"params\":{p}}}"),
                format!("{{\"params\":{p},\"name\":\"sig\"}}"),
                format!("{{\"name\":\"sig\",\"params\":{{}},\"payload\":{p}}}"),
            ] {
                assert_eq!(
                    engine.matches_signal_json(body.as_bytes(), &limits),
                    reference(&engine, body.as_bytes(), &limits),
                    "body {body}"
                );
            }
        }
    }
}
