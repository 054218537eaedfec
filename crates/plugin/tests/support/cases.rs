//! Test cases shared by sibling plugins (the Rust and the Python `regex`
//! operator, the Rust and the Python `webhook-json` adapter): each sibling must
//! pass exactly these.

use std::sync::Arc;

use serde_json::json;
use signalbox_matcher::CustomOperator;
use signalbox_model::Value;
use signalbox_plugin::{DecodeError, Envelope, Transport, WasmAdapter};

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// Loads the adapter under test with these settings.
pub type Load<'a> = &'a dyn Fn(&[(&str, &str)]) -> Arc<WasmAdapter>;

/// The `regex` operator: anchored matching, non-strings, bad arguments.
pub fn regex(op: &dyn CustomOperator) {
    let c = op.prepare(&json!("v[0-9]+\\.[0-9]+")).unwrap();
    assert_eq!(c.test(&s("v1.20")), Ok(true));
    assert_eq!(c.test(&s("av1.20")), Ok(false));
    assert_eq!(c.test(&s("v1.20x")), Ok(false));
    assert_eq!(c.test(&s("")), Ok(false));
    assert_eq!(c.test(&Value::Int(1)), Ok(false));
    let alt = op.prepare(&json!("a|b")).unwrap();
    assert_eq!(alt.test(&s("a")), Ok(true));
    assert_eq!(
        alt.test(&s("ab")),
        Ok(false),
        "alternation stays inside the anchors"
    );
    assert!(
        op.prepare(&json!("(unclosed"))
            .unwrap_err()
            .contains("regular expression")
    );
    assert!(op.prepare(&json!({"re": "x"})).is_err());
}

/// `webhook-json`: pointers to name, id, params and payload.
pub fn webhook_json_maps_pointers(load: Load<'_>) {
    let a = load(&[
        ("name-pointer", "/event/type"),
        ("id-pointer", "/event/id"),
        (
            "params",
            r#"{"table": "/data/table", "rows": "/data/rows", "missing": "/nope"}"#,
        ),
        ("payload-pointer", "/data"),
    ]);
    let body = json!({"event": {"type": "table_updated", "id": 42}, "data": {"table": "sales", "rows": 7}});
    let signals = a
        .decode(&Envelope::new(
            Transport::Http,
            "/ingest/webhook",
            body.to_string(),
        ))
        .unwrap();
    assert_eq!(signals.len(), 1);
    let s = &signals[0];
    assert_eq!(s.name, "table_updated");
    assert_eq!(s.id.as_deref(), Some("42"));
    assert_eq!(s.params.get("table"), Some(&Value::String("sales".into())));
    assert_eq!(s.params.get("rows"), Some(&Value::Int(7)));
    assert!(!s.params.contains_key("missing"));
    assert_eq!(s.payload, Some(json!({"table": "sales", "rows": 7})));
}

/// `webhook-json`: one signal per array item; rejects.
pub fn webhook_json_items_and_rejects(load: Load<'_>) {
    let a = load(&[
        ("items-pointer", "/items"),
        ("name", "item_seen"),
        ("params", r#"{"sku": "/sku"}"#),
    ]);
    let body = json!({"items": [{"sku": "a-1"}, {"sku": "b-2"}]});
    let signals = a
        .decode(&Envelope::new(
            Transport::Nats,
            "in.items",
            body.to_string(),
        ))
        .unwrap();
    assert_eq!(
        signals.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["item_seen", "item_seen"]
    );
    assert_eq!(
        signals[1].params.get("sku"),
        Some(&Value::String("b-2".into()))
    );
    // Not JSON: reject.
    let err = a
        .decode(&Envelope::new(Transport::Http, "/x", "not json"))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Reject(m) if m.contains("not JSON")),
        "{err}"
    );
    assert!(!err.is_retryable());
    // No array at the pointer: reject.
    let err = a
        .decode(&Envelope::new(Transport::Http, "/x", "{}"))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Reject(_)));
}

/// `webhook-json`: missing settings ask for a retry; the host validates names.
pub fn webhook_json_unconfigured_and_bad_names(load: Load<'_>) {
    let unconfigured = load(&[]);
    let err = unconfigured
        .decode(&Envelope::new(Transport::Http, "/x", "{}"))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Retry(m) if m.contains("name-pointer")),
        "{err}"
    );
    assert!(err.is_retryable());
    // The body names the signal with characters the model refuses: the host
    // validates every returned signal.
    let a = load(&[("name-pointer", "/n")]);
    let err = a
        .decode(&Envelope::new(
            Transport::Http,
            "/x",
            r#"{"n": "bad name!"}"#,
        ))
        .unwrap_err();
    match err {
        DecodeError::InvalidSignal { index, error, .. } => {
            assert_eq!(index, 0);
            assert_eq!(error.field, "name");
        }
        other => panic!("expected InvalidSignal, got {other}"),
    }
}
