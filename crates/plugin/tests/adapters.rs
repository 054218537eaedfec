//! The Rust adapter plugins (`webhook-json`, `github`) through the host:
//! mappings, signature checks, and validation of what an adapter returns (the
//! cases are shared with the Python siblings: `support::cases`).

#![allow(clippy::unwrap_used)]

use crate::support;
use std::collections::BTreeMap;
use std::sync::Arc;

use signalbox_plugin::{WasmAdapter, World};

fn adapter(file: &str, name: &str, settings: &[(&str, &str)]) -> Arc<WasmAdapter> {
    let host = support::relaxed_host();
    let settings: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let loaded = host
        .load_with_settings(&support::component(file), name, settings)
        .unwrap();
    assert_eq!(loaded.world(), World::SourceAdapter);
    loaded.adapter().unwrap()
}

#[test]
fn webhook_json_maps_pointers() {
    support::cases::webhook_json_maps_pointers(&load);
}

#[test]
fn webhook_json_items_and_rejects() {
    support::cases::webhook_json_items_and_rejects(&load);
}

#[test]
fn webhook_json_unconfigured_asks_for_retry_and_bad_names_are_caught() {
    support::cases::webhook_json_unconfigured_and_bad_names(&load);
}

fn load(settings: &[(&str, &str)]) -> Arc<WasmAdapter> {
    adapter("adapter_webhook_json", "webhook", settings)
}

fn load_github(settings: &[(&str, &str)]) -> Arc<WasmAdapter> {
    adapter("adapter_github", "github", settings)
}

#[test]
fn github_good_signature_becomes_signals() {
    support::cases::github_good_signature_becomes_signals(&load_github);
}

#[test]
fn github_wrong_signature_is_rejected() {
    support::cases::github_wrong_signature_is_rejected(&load_github);
}
