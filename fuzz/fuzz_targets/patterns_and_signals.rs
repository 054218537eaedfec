//! Fuzz target: arbitrary bytes split at the first NUL into pattern JSON and
//! params JSON. Parsing must never panic; when both parse, the engine must agree
//! with the naive evaluator and with explain, and `to_json` must round-trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, explain, naive};
use signalbox_model::Value;

fuzz_target!(|data: &[u8]| {
    let (pattern_bytes, params_bytes) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(pattern_json) = serde_json::from_slice::<serde_json::Value>(pattern_bytes) else {
        return;
    };
    let ops = OperatorRegistry::default();
    let parsed = Pattern::parse(&pattern_json, &ops);
    let _ = Pattern::from_match_params(&pattern_json);
    let Ok(pattern) = parsed else { return };
    let again = Pattern::parse(&pattern.to_json(), &ops).expect("to_json must re-parse");
    assert_eq!(again.to_json(), pattern.to_json());
    let Ok(Value::Object(params)) = serde_json::from_slice::<Value>(params_bytes) else {
        return;
    };
    let engine = Engine::new();
    engine.add("p", pattern.clone());
    let want = naive::matches(&pattern, &params);
    assert_eq!(!engine.matches(&params).is_empty(), want);
    assert_eq!(explain(&pattern, &params).matched, want);
    assert!(engine.remove("p"));
    assert!(engine.matches(&params).is_empty());
});
