//! The `webhook-json` adapter: turns a JSON request body into signals.
//!
//! The settings are the shared mapping of `plugin-mapping` (`name` or
//! `name-pointer`, `id-pointer`, `params`, `payload-pointer`, `items-pointer`);
//! sources may also read request headers (`header:X-Tenant`).
//!
//! A body that is not JSON, or a missing name, is rejected; a missing or bad
//! setting is a configuration problem and asks for a retry.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use plugin_mapping::{Context, MapError, Mapping};
use signalbox::plugin::host::config_get;

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "webhook-json".into(),
            argument_shape: "settings: name-pointer | name, id-pointer, params (JSON object of name -> source), payload-pointer, items-pointer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

fn decode_error(e: MapError) -> DecodeError {
    match e {
        MapError::Config(m) => DecodeError::Retry(m),
        MapError::Input(m) => DecodeError::Reject(m),
    }
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        let m = Mapping::from_settings(config_get).map_err(decode_error)?;
        let body: serde_json::Value = serde_json::from_slice(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the body is not JSON: {e}")))?;
        let cx = Context {
            headers: &envelope.headers,
            key: envelope.key.as_deref(),
            metadata: &envelope.metadata,
        };
        Ok(m.map(&body, &cx)
            .map_err(decode_error)?
            .into_iter()
            .map(|s| Signal {
                name: s.name,
                id: s.id,
                params: s.params,
                payload: s.payload,
            })
            .collect())
    }
}

export!(Plugin);
