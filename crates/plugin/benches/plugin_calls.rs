//! Benchmarks of plugin calls: an operator `test` through signalbox (pool,
//! deadline, limiter, counters) against the bare typed wasmtime call on the same
//! component, and an adapter `decode` (webhook-json) against the same mapping
//! done natively with serde_json; the JavaScript `regex` operator (jco /
//! ComponentizeJS) against its Rust sibling: per call and per load. Run:
//! `cargo bench -p signalbox-plugin`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use signalbox_model::{Limits, Signal, Value};
use signalbox_plugin::bindings::operator::Operator;
use signalbox_plugin::bindings::operator::exports::signalbox::plugin::conditions::Value as WitValue;
use signalbox_plugin::bindings::operator::signalbox::plugin::{host, types};
use signalbox_plugin::{Envelope, HostConfig, PluginHost, Transport};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Store data for the bare wasmtime baseline.
struct Bare {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl host::Host for Bare {
    fn log(&mut self, _level: host::Level, _message: String) {}
    fn config_get(&mut self, _key: String) -> Option<String> {
        None
    }
    fn now_ms(&mut self) -> i64 {
        0
    }
}

impl types::Host for Bare {}

fn config() -> HostConfig {
    HostConfig {
        cache_dir: Some(support::shared_cache_dir()),
        ..HostConfig::default()
    }
}

fn operator_call(c: &mut Criterion) {
    let bytes = support::component("operator_semver");
    let host = PluginHost::new(config()).unwrap();
    let op = host.load(&bytes, "semver").unwrap().operator().unwrap();
    let cond = op.prepare_condition(&json!(">=2.1.0 <3")).unwrap().unwrap();
    let value = Value::String("2.4.1".into());
    assert_eq!(cond.test_value(&value), Ok(Ok(true)));

    let engine = Engine::new(Config::new().wasm_component_model(true)).unwrap();
    let component = Component::new(&engine, &bytes).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    Operator::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).unwrap();
    let mut store = Store::new(
        &engine,
        Bare {
            ctx: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let bindings = Operator::instantiate(&mut store, &component, &linker).unwrap();
    let guest = bindings.signalbox_plugin_conditions().condition();
    let resource = guest
        .call_prepare(&mut store, "\">=2.1.0 <3\"")
        .unwrap()
        .unwrap();
    let wit = WitValue::Text("2.4.1".into());

    let mut group = c.benchmark_group("operator_test_semver");
    group.bench_function("signalbox", |b| {
        b.iter(|| black_box(cond.test_value(black_box(&value))))
    });
    group.bench_function("bare_wasmtime", |b| {
        b.iter(|| {
            black_box(
                guest
                    .call_test(&mut store, resource, black_box(&wit))
                    .unwrap(),
            )
        })
    });
    // The Python sibling through signalbox, for the plain statement of its cost.
    if python_available()
        && let Some(py) = support::python_component("semver")
    {
        let py_op = host.load(&py, "semver-py").unwrap().operator().unwrap();
        let py_cond = py_op
            .prepare_condition(&json!(">=2.1.0 <3"))
            .unwrap()
            .unwrap();
        assert_eq!(py_cond.test_value(&value), Ok(Ok(true)));
        group.bench_function("signalbox_python", |b| {
            b.iter(|| black_box(py_cond.test_value(black_box(&value))))
        });
    }
    group.finish();
}

fn native_decode(body: &[u8], limits: &Limits) -> Vec<Signal> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let mut params = serde_json::Map::new();
    for (k, p) in [("table", "/data/table"), ("rows", "/data/rows")] {
        if let Some(x) = v.pointer(p) {
            params.insert(k.into(), x.clone());
        }
    }
    let s = json!({"name": v.pointer("/event/type").unwrap(), "id": v.pointer("/event/id").unwrap().to_string(), "params": params});
    vec![Signal::from_json(s, limits).unwrap()]
}

fn adapter_decode(c: &mut Criterion) {
    let host = PluginHost::new(config()).unwrap();
    let settings: BTreeMap<String, String> = [
        ("name-pointer", "/event/type"),
        ("id-pointer", "/event/id"),
        (
            "params",
            r#"{"table": "/data/table", "rows": "/data/rows"}"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let adapter = host
        .load_with_settings(
            &support::component("adapter_webhook_json"),
            "webhook",
            settings,
        )
        .unwrap()
        .adapter()
        .unwrap();
    let body = json!({"event": {"type": "table_updated", "id": 42}, "data": {"table": "sales", "rows": 7, "note": "x".repeat(200)}})
        .to_string();
    let envelope = Envelope::new(Transport::Http, "/ingest/webhook", body.clone());
    let limits = Limits::default();
    assert_eq!(
        adapter.decode(&envelope).unwrap(),
        native_decode(body.as_bytes(), &limits)
    );

    let mut group = c.benchmark_group("adapter_decode_webhook_json");
    group.bench_function("signalbox", |b| {
        b.iter(|| black_box(adapter.decode(black_box(&envelope)).unwrap()))
    });
    group.bench_function("native_serde_json", |b| {
        b.iter(|| black_box(native_decode(black_box(body.as_bytes()), &limits)))
    });
    group.finish();
}

/// Whether the JavaScript toolchain is installed (`npm ci` in `plugins/js`);
/// without it the JavaScript rows are skipped, with a note.
fn js_available() -> bool {
    let ok = support::repo_root()
        .join("plugins/js/node_modules/.bin/componentize-js")
        .exists();
    if !ok {
        eprintln!(
            "skipping the JavaScript rows: no plugins/js/node_modules (scripts/setup.sh --test)"
        );
    }
    ok
}

/// Whether componentize-py is installed; without it the Python rows are
/// skipped, with a note.
fn python_available() -> bool {
    let ok = std::process::Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping the Python rows: no componentize-py (scripts/setup.sh --test)");
    }
    ok
}

/// One load of `bytes` on `host`, timed.
fn timed_load(host: &PluginHost, bytes: &[u8]) -> std::time::Duration {
    let start = std::time::Instant::now();
    let loaded = host.load(bytes, "regex").unwrap();
    let took = start.elapsed();
    drop(loaded);
    took
}

/// The `regex` operator in Rust, JavaScript and Python: one `test` on a warm
/// instance, and one load once the component is compiled (instance creation
/// plus the `describe` call). Compiling and loading from the disk cache are
/// timed once and printed.
fn regex_by_language(c: &mut Criterion) {
    let mut components = vec![("rust", support::component("operator_regex"))];
    if js_available() {
        components.push(("js", support::js_component("regex")));
    }
    if python_available()
        && let Some(bytes) = support::python_component("regex")
    {
        components.push(("python", bytes));
    }
    let value = Value::String("v1.20".into());
    let mut calls = c.benchmark_group("operator_test_regex");
    for (lang, bytes) in &components {
        let host = PluginHost::new(config()).unwrap();
        let op = host.load(bytes, "regex").unwrap().operator().unwrap();
        let cond = op
            .prepare_condition(&json!("v[0-9]+\\.[0-9]+"))
            .unwrap()
            .unwrap();
        assert_eq!(cond.test_value(&value), Ok(Ok(true)));
        calls.bench_function(*lang, |b| {
            b.iter(|| black_box(cond.test_value(black_box(&value))))
        });
    }
    calls.finish();

    let mut loads = c.benchmark_group("load_regex_compiled");
    for (lang, bytes) in &components {
        let cache = tempfile::tempdir().unwrap();
        let with_cache = || {
            PluginHost::new(HostConfig {
                cache_dir: Some(cache.path().to_path_buf()),
                ..HostConfig::default()
            })
            .unwrap()
        };
        let compile = timed_load(&with_cache(), bytes);
        let from_disk = timed_load(&with_cache(), bytes);
        eprintln!(
            "regex ({lang}): {} bytes; first load (compile) {compile:.2?}, load from the disk cache {from_disk:.2?}",
            bytes.len()
        );
        let host = with_cache();
        timed_load(&host, bytes);
        loads.bench_function(*lang, |b| {
            b.iter(|| black_box(host.load(black_box(bytes), "regex").unwrap()))
        });
    }
    loads.finish();
}

criterion_group!(benches, operator_call, adapter_decode, regex_by_language);
criterion_main!(benches);
