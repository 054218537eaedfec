//! The Python siblings (componentize-py) pass the same cases as the Rust
//! plugins: `regex`, `semver`, `geo`, `webhook-json` and `github`
//! (`support::cases`). componentize-py is installed by `scripts/setup.sh
//! --test`; without it these tests fail rather than skip. A cold build of the
//! Python components takes a few minutes.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use signalbox_model::Value;
use signalbox_plugin::{PluginHost, WasmAdapter, WasmOperator, World};

/// Loads a Python operator component with the relaxed test limits.
fn python_operator(host: &PluginHost, name: &str) -> Arc<WasmOperator> {
    let bytes =
        support::python_component(name).unwrap_or_else(|| panic!("the Python {name} component"));
    let loaded = host.load(&bytes, name).unwrap();
    assert_eq!(loaded.world(), World::Operator);
    let op = loaded.operator().unwrap();
    assert_eq!(op.description().name, name);
    op
}

/// Loads a Python adapter component with these settings.
fn python_adapter(
    host: &PluginHost,
    bytes: &[u8],
    name: &str,
    settings: &[(&str, &str)],
) -> Arc<WasmAdapter> {
    let settings: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let loaded = host.load_with_settings(bytes, name, settings).unwrap();
    assert_eq!(loaded.world(), World::SourceAdapter);
    loaded.adapter().unwrap()
}

#[test]
fn python_regex_passes_the_rust_cases() {
    let bytes = support::python_component("regex").expect("the Python regex component");
    // The default limits (64 MiB, 20 000 table elements) fit a Python component.
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let loaded = host.load(&bytes, "regex").unwrap();
    eprintln!("the Python component imports {:?}", loaded.imports);
    let op = loaded.operator().unwrap();
    assert_eq!(op.description().name, "regex");
    support::cases::regex(&*op);
}

#[test]
fn python_webhook_json_passes_the_rust_cases() {
    let bytes =
        support::python_component("webhook-json").expect("the Python webhook-json component");
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let load = |settings: &[(&str, &str)]| python_adapter(&host, &bytes, "webhook", settings);
    support::cases::webhook_json_maps_pointers(&load);
    support::cases::webhook_json_items_and_rejects(&load);
    support::cases::webhook_json_unconfigured_and_bad_names(&load);
}

#[test]
fn python_semver_passes_the_rust_cases() {
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let op = python_operator(&host, "semver");
    support::cases::semver(&*op);
}

#[test]
fn python_geo_passes_the_rust_cases() {
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let op = python_operator(&host, "geo");
    support::cases::geo(&*op);
}

#[test]
fn python_github_passes_the_rust_cases() {
    let bytes = support::python_component("github").expect("the Python github component");
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let load = |settings: &[(&str, &str)]| python_adapter(&host, &bytes, "github", settings);
    support::cases::github_good_signature_becomes_signals(&load);
    support::cases::github_wrong_signature_is_rejected(&load);
}

/// A measurement, not a check (opt-in, no timed assertion): the cost of one
/// `test` call of the Python `semver` operator against the Rust one, on a warm
/// instance (`>=2.1.0 <3` on `"2.4.1"`, as in the `operator_test_semver`
/// bench). Run with an optimised host for meaningful figures (the bench
/// profile reuses `cargo bench`'s build):
/// `cargo test --profile bench -p signalbox-plugin --test python -- --ignored --nocapture semver_call_cost`.
#[test]
#[ignore = "a timing measurement; run it explicitly"]
fn python_semver_call_cost() {
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let python = python_operator(&host, "semver");
    let rust = host
        .load(&support::component("operator_semver"), "semver")
        .unwrap()
        .operator()
        .unwrap();
    let value = Value::String("2.4.1".into());
    for (label, op) in [("rust", &rust), ("python", &python)] {
        let cond = op.prepare_condition(&json!(">=2.1.0 <3")).unwrap().unwrap();
        // Warm up: the pooled instance prepares and caches the condition.
        for _ in 0..100 {
            assert_eq!(cond.test_value(&value), Ok(Ok(true)));
        }
        for round in 0..3 {
            let n: u32 = 2_000;
            let start = std::time::Instant::now();
            for _ in 0..n {
                let answer = cond.test_value(std::hint::black_box(&value));
                assert_eq!(std::hint::black_box(answer), Ok(Ok(true)));
            }
            let per_call = start.elapsed() / n;
            eprintln!(
                "semver test call, {label}, round {round}: {per_call:?} per call ({n} calls)"
            );
        }
    }
}
