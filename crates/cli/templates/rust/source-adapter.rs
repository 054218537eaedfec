//! The `{{name}}` source adapter: one JSON object body becomes one signal.
//!
//! Settings (`--set KEY=VALUE` with `signalbox plugin test|deploy`, read with
//! `config-get`): `name` (required), the name of the signal. The body must be a
//! JSON object; it becomes the signal's params, and its `id` field, when it is a
//! string, the signal's id (else the host assigns one).
//!
//! A body that is not a JSON object is rejected (bad input stays bad: HTTP 422,
//! dead-letter); a missing setting asks for a retry (a configuration problem the
//! operator can fix: HTTP 503, redelivery).

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use signalbox::plugin::host::{Level, config_get, log};

// Generates the bindings of the world from the WIT package in `wit/`.
wit_bindgen::generate!({ world: "source-adapter", path: "wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "{{name}}".into(),
            argument_shape: "settings: name (the signal name); the body is a JSON object, its params".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        let Some(name) = config_get("name") else {
            return Err(DecodeError::Retry("setting name is required".into()));
        };
        let body: serde_json::Value = serde_json::from_slice(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the body is not JSON: {e}")))?;
        let serde_json::Value::Object(params) = body else {
            return Err(DecodeError::Reject("the body must be a JSON object".into()));
        };
        let id = params
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        log(
            Level::Debug,
            &format!("{} bytes from {} -> {name}", envelope.body.len(), envelope.topic),
        );
        Ok(vec![Signal {
            name,
            id,
            params: serde_json::Value::Object(params).to_string(),
            payload: None,
        }])
    }
}

export!(Plugin);
