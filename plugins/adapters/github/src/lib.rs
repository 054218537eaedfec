//! The `github` adapter: GitHub webhooks, signature-checked, become signals.
//!
//! Settings: `secret` (required): the webhook secret. Every request must carry
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; a missing or wrong
//! signature is rejected (compared in constant time). The `X-GitHub-Event` header
//! picks the event:
//! - `push` → `github.push` {repository, ref, branch?, tag?, before, after, pusher, commits}
//! - `pull_request` → `github.pull_request` {repository, action, number, merged, base, head, author}
//! - `release` → `github.release` {repository, action, tag, prerelease, draft}
//! - `ping` and every other event → no signal (accepted and dropped).
//!
//! The signal id is the `X-GitHub-Delivery` header; the payload is the body.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use signalbox::plugin::host::{Level, config_get, log};

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "github".into(),
            argument_shape:
                "settings: secret (the webhook secret); events push, pull_request, release".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

fn header<'a>(envelope: &'a Envelope, name: &str) -> Option<&'a str> {
    envelope
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn verify(secret: &str, body: &[u8], signature: Option<&str>) -> Result<(), DecodeError> {
    let signature = signature
        .ok_or_else(|| DecodeError::Reject("missing X-Hub-Signature-256 header".into()))?;
    let hex_sig = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| DecodeError::Reject("X-Hub-Signature-256 must start with sha256=".into()))?;
    let expected = hex::decode(hex_sig)
        .map_err(|_| DecodeError::Reject("X-Hub-Signature-256 is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| DecodeError::Retry(format!("bad secret: {e}")))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| DecodeError::Reject("signature mismatch".into()))
}

fn s(v: &Value, pointer: &str) -> Value {
    v.pointer(pointer).cloned().unwrap_or(Value::Null)
}

fn params_for(event: &str, body: &Value) -> Option<(String, Map<String, Value>)> {
    let repository = s(body, "/repository/full_name");
    let params = match event {
        "push" => {
            let git_ref = body
                .pointer("/ref")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut p = json!({
                "repository": repository,
                "ref": git_ref,
                "before": s(body, "/before"),
                "after": s(body, "/after"),
                "pusher": s(body, "/pusher/name"),
                "commits": body.pointer("/commits").and_then(Value::as_array).map_or(0, Vec::len),
            });
            if let Some(b) = git_ref.strip_prefix("refs/heads/") {
                p["branch"] = json!(b);
            }
            if let Some(t) = git_ref.strip_prefix("refs/tags/") {
                p["tag"] = json!(t);
            }
            p
        }
        "pull_request" => json!({
            "repository": repository,
            "action": s(body, "/action"),
            "number": s(body, "/number"),
            "merged": body.pointer("/pull_request/merged").and_then(Value::as_bool).unwrap_or(false),
            "base": s(body, "/pull_request/base/ref"),
            "head": s(body, "/pull_request/head/ref"),
            "author": s(body, "/pull_request/user/login"),
        }),
        "release" => json!({
            "repository": repository,
            "action": s(body, "/action"),
            "tag": s(body, "/release/tag_name"),
            "prerelease": body.pointer("/release/prerelease").and_then(Value::as_bool).unwrap_or(false),
            "draft": body.pointer("/release/draft").and_then(Value::as_bool).unwrap_or(false),
        }),
        _ => return None,
    };
    let Value::Object(mut map) = params else {
        return None;
    };
    map.retain(|_, v| !v.is_null());
    Some((format!("github.{event}"), map))
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        let secret = config_get("secret")
            .ok_or_else(|| DecodeError::Retry("setting secret is not configured".into()))?;
        verify(
            &secret,
            &envelope.body,
            header(&envelope, "x-hub-signature-256"),
        )?;
        let event = header(&envelope, "x-github-event")
            .ok_or_else(|| DecodeError::Reject("missing X-GitHub-Event header".into()))?;
        let body: Value = serde_json::from_slice(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the body is not JSON: {e}")))?;
        let Some((name, params)) = params_for(event, &body) else {
            log(Level::Debug, &format!("ignoring GitHub event {event}"));
            return Ok(Vec::new());
        };
        Ok(vec![Signal {
            name,
            id: header(&envelope, "x-github-delivery").map(str::to_string),
            params: Value::Object(params).to_string(),
            payload: Some(body.to_string()),
        }])
    }
}

export!(Plugin);
