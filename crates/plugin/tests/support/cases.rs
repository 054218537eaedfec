//! Test cases shared by sibling plugins (the Rust, Python and JavaScript
//! `regex` operators and `webhook-json` adapters; the Rust and Python `semver`
//! and `geo` operators and `github` adapters): each sibling must pass exactly
//! these.

use std::sync::Arc;

use serde_json::json;
use signalbox_matcher::CustomOperator;
use signalbox_model::Value;
use signalbox_plugin::{DecodeError, Envelope, Transport, WasmAdapter};

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// HMAC-SHA256 (RFC 2104) from the sha2 crate, for the GitHub cases:
/// `sha256=<hex>` as GitHub sends it in `X-Hub-Signature-256`.
pub fn github_sign(key: &[u8], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(body.iter().copied())
        .collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    format!("sha256={}", hex::encode(Sha256::digest(&outer)))
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

/// The `semver` operator: ranges, alternatives, pre-releases, bad arguments.
pub fn semver(op: &dyn CustomOperator) {
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

/// The `geo` operator: radius and polygon, point formats, bad arguments.
pub fn geo(op: &dyn CustomOperator) {
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

/// The GitHub cases' push body.
pub fn github_push() -> Vec<u8> {
    json!({
        "ref": "refs/heads/main",
        "before": "0000000",
        "after": "abc1234",
        "repository": {"full_name": "acme/widgets"},
        "pusher": {"name": "octocat"},
        "commits": [{"id": "abc1234"}, {"id": "def5678"}],
    })
    .to_string()
    .into_bytes()
}

/// A GitHub webhook request: event, delivery id and signature headers.
pub fn github_envelope(event: &str, body: Vec<u8>, signature: &str) -> Envelope {
    Envelope::new(Transport::Http, "/ingest/github", body)
        .with_header("x-github-event", event)
        .with_header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .with_header("x-hub-signature-256", signature)
}

/// `github`: signed push, pull_request and release events become signals;
/// other events are dropped.
pub fn github_good_signature_becomes_signals(load: Load<'_>) {
    let a = load(&[("secret", "It's a Secret to Everybody")]);
    let body = github_push();
    let sig = github_sign(b"It's a Secret to Everybody", &body);
    let signals = a.decode(&github_envelope("push", body, &sig)).unwrap();
    assert_eq!(signals.len(), 1);
    let s = &signals[0];
    assert_eq!(s.name, "github.push");
    assert_eq!(
        s.id.as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(
        s.params.get("repository"),
        Some(&Value::String("acme/widgets".into()))
    );
    assert_eq!(s.params.get("branch"), Some(&Value::String("main".into())));
    assert_eq!(s.params.get("commits"), Some(&Value::Int(2)));
    assert!(s.payload.is_some());

    let pr = json!({
        "action": "closed", "number": 17,
        "pull_request": {"merged": true, "base": {"ref": "main"}, "head": {"ref": "fix"}, "user": {"login": "octocat"}},
        "repository": {"full_name": "acme/widgets"},
    })
    .to_string()
    .into_bytes();
    let sig = github_sign(b"It's a Secret to Everybody", &pr);
    let s = &a
        .decode(&github_envelope("pull_request", pr, &sig))
        .unwrap()[0];
    assert_eq!(s.name, "github.pull_request");
    assert_eq!(s.params.get("merged"), Some(&Value::Bool(true)));
    assert_eq!(s.params.get("number"), Some(&Value::Int(17)));

    let rel = json!({"action": "published", "release": {"tag_name": "v1.2.0", "prerelease": false, "draft": false}, "repository": {"full_name": "acme/widgets"}})
        .to_string()
        .into_bytes();
    let sig = github_sign(b"It's a Secret to Everybody", &rel);
    let s = &a.decode(&github_envelope("release", rel, &sig)).unwrap()[0];
    assert_eq!(s.name, "github.release");
    assert_eq!(s.params.get("tag"), Some(&Value::String("v1.2.0".into())));

    // Other events are accepted and dropped.
    let ping = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
    let sig = github_sign(b"It's a Secret to Everybody", &ping);
    assert_eq!(
        a.decode(&github_envelope("ping", ping, &sig)).unwrap(),
        vec![]
    );
}

/// `github`: a wrong, stale or missing signature is rejected; without a
/// configured secret the adapter asks for a retry.
pub fn github_wrong_signature_is_rejected(load: Load<'_>) {
    let a = load(&[("secret", "right")]);
    let body = github_push();
    let wrong = github_sign(b"wrong", &body);
    let err = a
        .decode(&github_envelope("push", body.clone(), &wrong))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Reject(m) if m.contains("signature mismatch")),
        "{err}"
    );
    // A body changed after signing.
    let sig = github_sign(b"right", &body);
    let mut tampered = body.clone();
    tampered.push(b' ');
    let err = a
        .decode(&github_envelope("push", tampered, &sig))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Reject(_)));
    // No signature at all.
    let no_sig = Envelope::new(Transport::Http, "/ingest/github", body)
        .with_header("x-github-event", "push");
    let err = a.decode(&no_sig).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Reject(m) if m.contains("missing")),
        "{err}"
    );
    // Without a configured secret: retry, not reject.
    let unconfigured = load(&[]);
    let err = unconfigured
        .decode(&github_envelope("push", github_push(), &wrong))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Retry(_)));
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
