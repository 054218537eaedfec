//! The Python siblings (componentize-py) pass the same cases as the Rust
//! plugins: `regex`, `semver`, `geo`, `webhook-json` and `github`
//! (`support::cases`). componentize-py is installed by `scripts/setup.sh
//! --test`; without it these tests fail rather than skip. A cold build of the
//! Python components takes a few minutes.

#![allow(clippy::unwrap_used)]

use crate::support;
use std::collections::BTreeMap;
use std::sync::Arc;

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
