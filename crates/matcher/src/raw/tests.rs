//! In-crate tests of the raw path: that it decides the inputs it should
//! (valid bodies are read in one pass, not handed to the model's parser), and
//! that what it decides agrees with the reference. The public entry points
//! fall back to the reference whenever this path bails, so only a test from
//! inside can tell that the fast path ran.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/mod.rs"]
mod support;

use proptest::prelude::*;
use signalbox_model::Limits;
use signalbox_model::signal::Signal;

use super::{signal_matches, span_matches};
use crate::engine::MatchStats;
use crate::{Engine, Pattern};
use support::{engine_of, params, pattern, write};

/// Whether the text has an escaped UTF-16 surrogate (left to the reference).
fn has_surrogate_escape(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "\\ud8", "\\ud9", "\\uda", "\\udb", "\\udc", "\\udd", "\\ude", "\\udf",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn valid_bodies_are_decided_in_one_pass(
        patterns in prop::collection::vec(pattern(), 1..16),
        events in prop::collection::vec((params(), any::<u64>(), any::<bool>()), 1..6),
    ) {
        let (engine, _) = engine_of(patterns);
        let limits = Limits::default();
        for (p, seed, dups) in &events {
            let text = write(p, *seed, *dups);
            prop_assume!(!has_surrogate_escape(&text) && !text.contains("1e308"));
            let body = format!("{{\"name\":\"sig\",\"id\":\"x-1\",\"params\":{text},\"payload\":{text}}}");
            let signal = Signal::parse(body.as_bytes(), &limits).unwrap();
            let want = engine.matches_shared(&signal.params);
            let got = engine.with_index(|ix| {
                signal_matches(ix, body.as_bytes(), &limits, &mut MatchStats::default())
            });
            prop_assert_eq!(got, Ok(want.clone()), "body {}", body);
            let span = engine.with_index(|ix| {
                span_matches(ix, text.as_bytes(), &limits, 1, &mut MatchStats::default())
            });
            prop_assert_eq!(span, Ok(want), "params {}", text);
        }
    }
}

#[test]
fn a_plain_signal_is_decided_in_one_pass() {
    let engine = Engine::new();
    let ops = crate::OperatorRegistry::default();
    for (i, p) in [
        serde_json::json!({"table": ["prod.events"]}),
        serde_json::json!({"partition": [{"numeric": [">=", 20261126]}]}),
        serde_json::json!({"owner": {"team": [{"prefix": "data"}]}}),
    ]
    .iter()
    .enumerate()
    {
        engine.add(&format!("s{i}"), Pattern::parse(p, &ops).unwrap());
    }
    let body = br#"{"name": "table_updated", "id": "etl-run-8812/part-20261126",
        "params": {"table": "prod.events", "partition": 20261126, "rows": 1.2e6,
                   "owner": {"team": "data-eng"}, "tags": ["a", {"b": [1, 2]}]},
        "payload": {"location": "s3://bucket/events/20261126/"},
        "producer": {"workflow": "etl-daily", "run": "8812", "step": "load"},
        "occurred_at": "2026-11-26T04:00:00Z"}"#;
    let got = engine
        .with_index(|ix| signal_matches(ix, body, &Limits::default(), &mut MatchStats::default()));
    let ids: Vec<String> = got.unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(ids, ["s0", "s1", "s2"]);
}
