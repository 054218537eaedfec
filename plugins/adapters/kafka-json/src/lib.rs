//! The `kafka-json` adapter: turns a Kafka record with a JSON value into signals.
//!
//! The settings are the shared mapping of `plugin-mapping` (`name` or
//! `name-pointer`, `id-pointer`, `params`, `payload-pointer`, `items-pointer`).
//! Besides JSON pointers into the value, sources read the record's headers
//! (`header:tenant`), its key (`key`) and its coordinates (`meta:topic`,
//! `meta:partition`, `meta:offset`, `meta:timestamp`). Without `id-pointer` the
//! host gives each signal the id `topic/partition/offset` (`/index` appended
//! when one record yields several), so a re-read record is a duplicate.
//!
//! An empty value (a tombstone) yields no signal. A value that is not JSON, or
//! a record without a name, is rejected (the host dead-letters it and the
//! partition moves on); a bad setting asks for a retry.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use plugin_mapping::{Context, MapError, Mapping};
use signalbox::plugin::host::config_get;

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "kafka-json".into(),
            argument_shape: "settings: name-pointer | name, id-pointer, params (JSON object of name -> source: /pointer, header:NAME, key, meta:NAME), payload-pointer, items-pointer".into(),
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
        if envelope.body.is_empty() {
            return Ok(Vec::new());
        }
        let value: serde_json::Value = serde_json::from_slice(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the record value is not JSON: {e}")))?;
        let cx = Context {
            headers: &envelope.headers,
            key: envelope.key.as_deref(),
            metadata: &envelope.metadata,
        };
        Ok(m.map(&value, &cx)
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
