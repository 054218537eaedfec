//! The Python `regex` operator (componentize-py) passes the same cases as its
//! Rust sibling. Opt-in: runs only with `SIGNALBOX_TEST_PYTHON=1` (and
//! componentize-py installed), see `support::python_component`.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use signalbox_matcher::CustomOperator;
use signalbox_model::Value;
use signalbox_plugin::PluginHost;

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn python_regex_matches_like_the_rust_one() {
    let Some(bytes) = support::python_component("regex") else {
        return;
    };
    // The default limits (64 MiB, 20 000 table elements) fit a Python component.
    let host = PluginHost::new(support::relaxed_config()).unwrap();
    let loaded = host.load(&bytes, "regex").unwrap();
    eprintln!("the Python component imports {:?}", loaded.imports);
    let op = loaded.operator().unwrap();
    assert_eq!(op.description().name, "regex");
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
