//! The Rust adapter plugins (`webhook-json`, `github`) through the host:
//! mappings, signature checks, and validation of what an adapter returns.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac_sha256::sign;
use serde_json::json;
use signalbox_model::Value;
use signalbox_plugin::{DecodeError, Envelope, Transport, WasmAdapter, World};

/// HMAC-SHA256 for the GitHub tests, from the sha2 crate (RFC 2104).
mod hmac_sha256 {
    use sha2::{Digest, Sha256};

    pub fn sign(key: &[u8], body: &[u8]) -> String {
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
}

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

fn github_push() -> Vec<u8> {
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

fn github_envelope(event: &str, body: Vec<u8>, signature: &str) -> Envelope {
    Envelope::new(Transport::Http, "/ingest/github", body)
        .with_header("x-github-event", event)
        .with_header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .with_header("x-hub-signature-256", signature)
}

#[test]
fn github_good_signature_becomes_signals() {
    let a = adapter(
        "adapter_github",
        "github",
        &[("secret", "It's a Secret to Everybody")],
    );
    let body = github_push();
    let sig = sign(b"It's a Secret to Everybody", &body);
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
    let sig = sign(b"It's a Secret to Everybody", &pr);
    let s = &a
        .decode(&github_envelope("pull_request", pr, &sig))
        .unwrap()[0];
    assert_eq!(s.name, "github.pull_request");
    assert_eq!(s.params.get("merged"), Some(&Value::Bool(true)));
    assert_eq!(s.params.get("number"), Some(&Value::Int(17)));

    let rel = json!({"action": "published", "release": {"tag_name": "v1.2.0", "prerelease": false, "draft": false}, "repository": {"full_name": "acme/widgets"}})
        .to_string()
        .into_bytes();
    let sig = sign(b"It's a Secret to Everybody", &rel);
    let s = &a.decode(&github_envelope("release", rel, &sig)).unwrap()[0];
    assert_eq!(s.name, "github.release");
    assert_eq!(s.params.get("tag"), Some(&Value::String("v1.2.0".into())));

    // Other events are accepted and dropped.
    let ping = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
    let sig = sign(b"It's a Secret to Everybody", &ping);
    assert_eq!(
        a.decode(&github_envelope("ping", ping, &sig)).unwrap(),
        vec![]
    );
}

#[test]
fn github_wrong_signature_is_rejected() {
    let a = adapter("adapter_github", "github", &[("secret", "right")]);
    let body = github_push();
    let wrong = sign(b"wrong", &body);
    let err = a
        .decode(&github_envelope("push", body.clone(), &wrong))
        .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Reject(m) if m.contains("signature mismatch")),
        "{err}"
    );
    // A body changed after signing.
    let sig = sign(b"right", &body);
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
    let unconfigured = adapter("adapter_github", "github", &[]);
    let err = unconfigured
        .decode(&github_envelope("push", github_push(), &wrong))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Retry(_)));
}
