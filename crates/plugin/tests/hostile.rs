//! Hostile plugins: an infinite loop, a memory bomb, a trap, a huge output and
//! the wrong world. Each must fail only its own call with a typed error, the next
//! call must work on a fresh instance, and repeated failures must quarantine the
//! plugin. Assertions are on error kinds and counters, never on wall time.

#![allow(clippy::unwrap_used)]

use crate::support;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signalbox_matcher::CustomOperator;
use signalbox_model::Value;
use signalbox_plugin::{
    CallError, DecodeError, Envelope, HostConfig, LoadError, PluginHost, Transport, WasiLinking,
    WasmAdapter, WasmOperator,
};

fn config() -> HostConfig {
    HostConfig {
        operator_deadline: Duration::from_millis(100),
        prepare_deadline: Duration::from_millis(100),
        adapter_deadline: Duration::from_millis(500),
        max_memory_bytes: 32 << 20,
        quarantine_after: 3,
        max_instances: 16,
        cache_dir: Some(support::shared_cache_dir()),
        ..HostConfig::default()
    }
}

fn hostile_operator(host: &PluginHost) -> Arc<WasmOperator> {
    host.load(&support::component("hostile_operator"), "hostile")
        .unwrap()
        .operator()
        .unwrap()
}

fn hostile_adapter(host: &PluginHost) -> Arc<WasmAdapter> {
    host.load(&support::component("hostile_adapter"), "hostile-adapter")
        .unwrap()
        .adapter()
        .unwrap()
}

fn any() -> Value {
    Value::String("x".into())
}

#[test]
fn infinite_loop_times_out_and_the_next_call_works() {
    let host = PluginHost::new(config()).unwrap();
    let op = hostile_operator(&host);
    let looping = op.prepare_condition(&json!("loop")).unwrap().unwrap();
    let err = looping.test_value(&any()).unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Timeout {
                deadline_ms: 100,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), "timeout");
    assert!(
        err.to_string().contains("hostile"),
        "the error names the plugin: {err}"
    );
    let ok = op.prepare_condition(&json!("ok")).unwrap().unwrap();
    assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    let stats = op.stats();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.consecutive_failures, 0);
    // Through the matcher's trait the failure is an error string (no match).
    let prepared = op.prepare(&json!("loop")).unwrap();
    assert!(prepared.test(&any()).unwrap_err().contains("deadline"));
}

#[test]
fn a_loop_in_prepare_times_out() {
    let host = PluginHost::new(config()).unwrap();
    let op = hostile_operator(&host);
    let err = op.prepare_condition(&json!("loop-prepare")).unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err}");
    assert!(
        op.prepare(&json!("loop-prepare"))
            .unwrap_err()
            .contains("deadline")
    );
    assert!(
        op.prepare(&json!("unknown"))
            .unwrap_err()
            .contains("unknown mode")
    );
}

#[test]
fn memory_bomb_is_out_of_memory() {
    let host = PluginHost::new(config()).unwrap();
    let op = hostile_operator(&host);
    let bomb = op.prepare_condition(&json!("bomb")).unwrap().unwrap();
    let err = bomb.test_value(&any()).unwrap_err();
    assert!(
        matches!(err, CallError::OutOfMemory { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{err}"
    );
    let ok = op.prepare_condition(&json!("ok")).unwrap().unwrap();
    assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    assert_eq!(op.stats().out_of_memory, 1);
}

#[test]
fn trap_fails_the_call_and_a_fresh_instance_serves_the_next() {
    let host = PluginHost::new(config()).unwrap();
    let op = hostile_operator(&host);
    let trap = op.prepare_condition(&json!("trap")).unwrap().unwrap();
    let ok = op.prepare_condition(&json!("ok")).unwrap().unwrap();
    let err = trap.test_value(&any()).unwrap_err();
    match &err {
        CallError::Trap { plugin, message } => {
            assert_eq!(plugin, "hostile");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    let stats = op.stats();
    assert_eq!(
        (stats.traps, stats.consecutive_failures, stats.quarantined),
        (1, 0, false)
    );
}

#[test]
fn instances_are_reused_and_replaced_after_a_failure_or_enough_calls() {
    let host = PluginHost::new(HostConfig {
        max_calls_per_instance: 10,
        ..config()
    })
    .unwrap();
    let op = hostile_operator(&host);
    // describe at load created the first instance.
    assert_eq!(op.stats().instances_created, 1);
    let ok = op.prepare_condition(&json!("ok")).unwrap().unwrap();
    for _ in 0..5 {
        assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    }
    // describe + prepare + 5 tests = 7 calls on one instance.
    assert_eq!(op.stats().instances_created, 1);
    let trap = op.prepare_condition(&json!("trap")).unwrap().unwrap();
    assert!(trap.test_value(&any()).is_err());
    assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    assert_eq!(
        op.stats().instances_created,
        2,
        "the trapped instance was replaced"
    );
    // The new instance retires after 10 calls.
    for _ in 0..10 {
        assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    }
    assert_eq!(
        op.stats().instances_created,
        3,
        "a retired instance was replaced"
    );
}

#[test]
fn repeated_failures_quarantine_the_plugin() {
    let host = PluginHost::new(config()).unwrap();
    let op = hostile_operator(&host);
    let trap = op.prepare_condition(&json!("trap")).unwrap().unwrap();
    let ok = op.prepare_condition(&json!("ok")).unwrap().unwrap();
    for _ in 0..3 {
        assert!(matches!(
            trap.test_value(&any()),
            Err(CallError::Trap { .. })
        ));
    }
    // Quarantined: even a good call fails fast, without running the plugin.
    let err = ok.test_value(&any()).unwrap_err();
    assert!(
        matches!(err, CallError::Quarantined { failures: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("quarantined"));
    let stats = op.stats();
    assert!(stats.quarantined);
    assert_eq!((stats.traps, stats.refused, stats.quarantines), (3, 1, 1));
    op.reset_quarantine();
    assert_eq!(ok.test_value(&any()), Ok(Ok(true)));
    assert!(!op.stats().quarantined);
    assert_eq!(op.stats().quarantines, 1, "counted once, not reset");
}

#[test]
fn adapter_huge_output_and_garbage_are_refused() {
    let host = PluginHost::new(HostConfig {
        max_memory_bytes: 64 << 20,
        ..config()
    })
    .unwrap();
    let a = hostile_adapter(&host);
    let err = a
        .decode(&Envelope::new(Transport::Nats, "huge", ""))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::TooManySignals {
                count: 100_000,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );
    let err = a
        .decode(&Envelope::new(Transport::Nats, "big-params", ""))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::InvalidSignal { index: 0, error, .. } if error.rule.contains("more than the limit")),
        "{err}"
    );
    let err = a
        .decode(&Envelope::new(Transport::Nats, "garbage", ""))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::InvalidSignal { error, .. } if error.field == "params"),
        "{err}"
    );
    let err = a
        .decode(&Envelope::new(Transport::Nats, "retry", ""))
        .unwrap_err();
    assert_eq!(err, DecodeError::Retry("try later".into()));
    // None of these count as plugin failures; a good message still decodes.
    assert_eq!(a.stats().consecutive_failures, 0);
    let signals = a
        .decode(&Envelope::new(Transport::Nats, "fine", ""))
        .unwrap();
    assert_eq!(signals[0].name, "fine");
}

#[test]
fn adapter_loop_times_out_then_quarantines() {
    let host = PluginHost::new(HostConfig {
        adapter_deadline: Duration::from_millis(100),
        ..config()
    })
    .unwrap();
    let a = hostile_adapter(&host);
    for _ in 0..3 {
        let err = a
            .decode(&Envelope::new(Transport::Kafka, "loop", ""))
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::Call(CallError::Timeout { .. })),
            "{err}"
        );
        assert!(err.is_retryable());
    }
    let err = a
        .decode(&Envelope::new(Transport::Kafka, "fine", ""))
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::Call(CallError::Quarantined { .. })),
        "{err}"
    );
    assert_eq!(a.stats().timeouts, 3);
}

#[test]
fn wrong_world_is_a_load_error_naming_the_worlds() {
    let host = PluginHost::new(config()).unwrap();
    let err = host
        .load(&support::component("hostile_wrong_world"), "calc")
        .unwrap_err();
    match &err {
        LoadError::WrongWorld { name, exports } => {
            assert_eq!(name, "calc");
            assert_eq!(exports, &["add".to_string()]);
        }
        other => panic!("expected WrongWorld, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("signalbox:plugin/operator@0.1.0") && msg.contains("source-adapter"),
        "{msg}"
    );
}

#[test]
fn a_plugin_importing_the_filesystem_finds_nothing() {
    // Default (inert) WASI: it loads, but there is no directory to open.
    let host = PluginHost::new(config()).unwrap();
    let op = host
        .load(&support::component("hostile_filesystem"), "fs")
        .unwrap()
        .operator()
        .unwrap();
    for path in ["/etc/passwd", "Cargo.toml", "."] {
        let c = op.prepare_condition(&json!(path)).unwrap().unwrap();
        let verdict = c.test_value(&any()).unwrap();
        assert!(verdict.is_err(), "{path}: {verdict:?}");
    }
    assert_eq!(op.stats().consecutive_failures, 0);
}

#[test]
fn with_minimal_wasi_a_plugin_importing_the_filesystem_does_not_load() {
    let host = PluginHost::new(HostConfig {
        wasi: WasiLinking::Minimal,
        ..config()
    })
    .unwrap();
    let err = host
        .load(&support::component("hostile_filesystem"), "fs")
        .unwrap_err();
    match &err {
        LoadError::Link { world, message, .. } => {
            assert_eq!(*world, "signalbox:plugin/operator@0.1.0");
            assert!(message.contains("wasi:filesystem"), "{message}");
        }
        other => panic!("expected a link error, got {other}"),
    }
}

#[test]
fn garbage_bytes_and_bad_names_are_load_errors() {
    let host = PluginHost::new(config()).unwrap();
    let err = host.load(b"\0asm not really", "junk").unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    let err = host
        .load(&support::component("operator_semver"), "no spaces")
        .unwrap_err();
    assert!(matches!(err, LoadError::InvalidName(_)), "{err}");
}
