//! The Python siblings (componentize-py) pass the same cases as the Rust
//! plugins: `regex` and `webhook-json`. componentize-py is installed by
//! `scripts/setup.sh --test`; a cold build of the Python components takes a
//! few minutes.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use signalbox_plugin::{PluginHost, WasmAdapter, World};

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
