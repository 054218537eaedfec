//! The JavaScript siblings (jco / ComponentizeJS) pass the same cases as the
//! Rust plugins: `regex` and `webhook-json`. node, npm and the pinned jco
//! (`plugins/js/package-lock.json`) are installed by `scripts/setup.sh --test`;
//! without them these tests fail.

#![allow(clippy::unwrap_used)]

use crate::support;
use std::collections::BTreeMap;
use std::sync::Arc;

use signalbox_plugin::{HostConfig, PluginHost, WasiLinking, WasmAdapter, World};

#[test]
fn js_regex_passes_the_rust_cases() {
    let bytes = support::js_component("regex");
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let loaded = host.load(&bytes, "regex").unwrap();
    eprintln!("the JavaScript component imports {:?}", loaded.imports);
    let op = loaded.operator().unwrap();
    assert_eq!(op.description().name, "regex");
    support::cases::regex(&*op);
}

#[test]
fn js_webhook_json_passes_the_rust_cases() {
    let bytes = support::js_component("webhook-json");
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let load = |settings: &[(&str, &str)]| -> Arc<WasmAdapter> {
        let settings: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let loaded = host
            .load_with_settings(&bytes, "webhook", settings)
            .unwrap();
        assert_eq!(loaded.world(), World::SourceAdapter);
        loaded.adapter().unwrap()
    };
    support::cases::webhook_json_maps_pointers(&load);
    support::cases::webhook_json_items_and_rejects(&load);
    support::cases::webhook_json_unconfigured_and_bad_names(&load);
}

/// Built with every ComponentizeJS feature disabled, the components import no
/// WASI at all: they load with the minimal WASI as well, and with the default
/// memory and table limits.
#[test]
fn js_components_import_only_the_host() {
    let host = PluginHost::new(HostConfig {
        wasi: WasiLinking::Minimal,
        ..support::relaxed_config()
    })
    .unwrap();
    for name in ["regex", "webhook-json"] {
        let loaded = host.load(&support::js_component(name), name).unwrap();
        let wasi: Vec<&String> = loaded
            .imports
            .iter()
            .filter(|i| i.starts_with("wasi:"))
            .collect();
        assert!(wasi.is_empty(), "{name} imports {wasi:?}");
    }
}
