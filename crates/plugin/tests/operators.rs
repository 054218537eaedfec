//! The Rust operator plugins (`semver`, `regex`, `geo`) through the host, as
//! matcher custom operators: true, false, edge and bad-argument cases.

#![allow(clippy::unwrap_used)]

mod support;

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
    let c = op.prepare(&json!(">=2.1.0 <3")).unwrap();
    assert_eq!(c.test(&s("2.1.0")), Ok(true));
    assert_eq!(c.test(&s("2.9.14")), Ok(true));
    assert_eq!(c.test(&s("v2.5")), Ok(true));
    assert_eq!(c.test(&s("3.0.0")), Ok(false));
    assert_eq!(c.test(&s("2.0.9")), Ok(false));
    // Pre-releases do not match a range without one (cargo semantics).
    assert_eq!(c.test(&s("2.2.0-rc.1")), Ok(false));
    // Not a string: no match; not a version: an error.
    assert_eq!(c.test(&Value::Int(2)), Ok(false));
    assert!(c.test(&s("two")).unwrap_err().contains("not a version"));
    let alt = op.prepare(&json!("^1.2 || >=3")).unwrap();
    assert_eq!(alt.test(&s("1.4.0")), Ok(true));
    assert_eq!(alt.test(&s("2.0.0")), Ok(false));
    assert_eq!(alt.test(&s("3.1.0")), Ok(true));
    // Bad arguments are refused at prepare time.
    assert!(
        op.prepare(&json!(">=banana"))
            .unwrap_err()
            .contains("not a version range")
    );
    assert!(op.prepare(&json!(3)).unwrap_err().contains("string"));
    assert!(op.prepare(&json!("")).is_err());
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
    // Berlin, Alexanderplatz; the Brandenburg Gate is about 2.3 km away.
    let near = op
        .prepare(&json!({"within_radius": {"lat": 52.5219, "lon": 13.4132, "meters": 3000}}))
        .unwrap();
    assert_eq!(near.test(&s("52.5163,13.3777")), Ok(true));
    let tight = op
        .prepare(&json!({"within_radius": {"lat": 52.5219, "lon": 13.4132, "meters": 1000}}))
        .unwrap();
    assert_eq!(tight.test(&s("52.5163,13.3777")), Ok(false));
    // The exact centre, radius 0.
    let zero = op
        .prepare(&json!({"within_radius": {"lat": 10.0, "lon": 20.0, "meters": 0}}))
        .unwrap();
    assert_eq!(zero.test(&s("10,20")), Ok(true));
    let square = op
        .prepare(&json!({"within_polygon": [[0, 0], [0, 10], [10, 10], [10, 0]]}))
        .unwrap();
    assert_eq!(square.test(&s("5,5")), Ok(true));
    assert_eq!(square.test(&s("5,15")), Ok(false));
    assert_eq!(square.test(&s("-1,5")), Ok(false));
    // An object value (if the host passes one) works too; other types do not match.
    let mut obj = signalbox_model::Map::new();
    obj.insert("lat".into(), Value::Float(2.5));
    obj.insert("lon".into(), Value::Int(3));
    assert_eq!(square.test(&Value::Object(obj)), Ok(true));
    assert_eq!(square.test(&Value::Bool(true)), Ok(false));
    assert!(square.test(&s("north")).is_err());
    assert!(square.test(&s("95,0")).unwrap_err().contains("lat must be"));
    // Bad arguments.
    assert!(
        op.prepare(&json!({"within_polygon": [[0, 0], [1, 1]]}))
            .unwrap_err()
            .contains("at least 3")
    );
    assert!(
        op.prepare(&json!({"within_radius": {"lat": 0, "lon": 0}}))
            .unwrap_err()
            .contains("meters")
    );
    assert!(op.prepare(&json!({"near": 1})).is_err());
    assert!(op.prepare(&json!("52,13")).is_err());
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
