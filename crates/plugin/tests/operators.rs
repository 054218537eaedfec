//! The Rust operator plugins (`semver`, `regex`, `geo`) through the host, as
//! matcher custom operators: true, false, edge and bad-argument cases.

#![allow(clippy::unwrap_used)]

use crate::support;
use std::sync::Arc;

use serde_json::json;
use signalbox_matcher::{CustomOperator, OperatorRegistry, PreparedOperator};
use signalbox_model::Value;
use signalbox_plugin::{HostConfig, PluginHost, WasiLinking, World};

fn operator(host: &PluginHost, file: &str, name: &str) -> Arc<signalbox_plugin::WasmOperator> {
    let loaded = host.load(&support::component(file), name).unwrap();
    assert_eq!(loaded.world(), World::Operator);
    loaded.operator().unwrap()
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn semver_ranges() {
    let host = support::relaxed_host();
    let op = operator(&host, "operator_semver", "semver");
    assert_eq!(op.description().name, "semver");
    support::cases::semver(&*op);
}

#[test]
fn regex_is_anchored() {
    let host = support::relaxed_host();
    let op = operator(&host, "operator_regex", "regex");
    support::cases::regex(&*op);
}

#[test]
fn geo_radius_and_polygon() {
    let host = support::relaxed_host();
    let op = operator(&host, "operator_geo", "geo");
    support::cases::geo(&*op);
}

#[test]
fn imports_only_signalbox_and_minimal_wasi() {
    // The Rust guests load even with the minimal WASI (no filesystem, no sockets).
    let host = PluginHost::new(HostConfig {
        wasi: WasiLinking::Minimal,
        ..support::relaxed_config()
    })
    .unwrap();
    for file in ["operator_semver", "operator_regex", "operator_geo"] {
        let loaded = host.load(&support::component(file), "op").unwrap();
        for import in &loaded.imports {
            assert!(
                import.starts_with("wasi:") || import.starts_with("signalbox:plugin/"),
                "{file} imports {import}"
            );
            assert!(
                !import.starts_with("wasi:sockets") && !import.starts_with("wasi:filesystem"),
                "{file} imports {import}"
            );
        }
    }
}

#[test]
fn registers_in_the_matcher() {
    let host = support::relaxed_host();
    let op = operator(&host, "operator_semver", "semver");
    let mut registry = OperatorRegistry::new();
    registry.register(op).unwrap();
    assert!(registry.is_operator("semver"));
    let prepared = registry
        .get("semver")
        .unwrap()
        .prepare(&json!(">=1"))
        .unwrap();
    assert_eq!(prepared.test(&s("1.0.0")), Ok(true));
}

#[test]
fn conditions_work_across_threads_and_instances() {
    let host = support::relaxed_host();
    let op = operator(&host, "operator_regex", "regex");
    let c: Arc<dyn PreparedOperator> = Arc::from(op.prepare(&json!("[a-z]+")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    assert_eq!(c.test(&s("abc")), Ok(true));
                    assert_eq!(c.test(&s(&format!("abc{i}"))), Ok(false));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(op.stats().consecutive_failures, 0);
}
