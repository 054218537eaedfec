//! The `webhook-json` adapter: turns a JSON body into signals by JSON pointers.
//!
//! Settings (from `config-get`, all strings):
//! - `name-pointer`: JSON pointer to the signal name (e.g. `/event/type`), or
//!   `name`: a fixed signal name; one of the two is required;
//! - `id-pointer` (optional): pointer to the signal id (a string or a number);
//! - `params` (optional): a JSON object mapping param names to pointers,
//!   e.g. `{"repo": "/repository/name", "count": "/stats/n"}`; a pointer that
//!   finds nothing leaves the param out;
//! - `payload-pointer` (optional): pointer to the payload (`""` = the whole body);
//! - `items-pointer` (optional): pointer to an array; each element becomes one
//!   signal and the other pointers are relative to the element.
//!
//! A body that is not JSON, or a missing name, is rejected; a missing setting is
//! a configuration problem and asks for a retry.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use serde_json::{Map, Value};
use signalbox::plugin::host::config_get;

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "webhook-json".into(),
            argument_shape: "settings: name-pointer | name, id-pointer, params (JSON object of name -> pointer), payload-pointer, items-pointer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The mapping read from the settings.
struct Mapping {
    name_pointer: Option<String>,
    name: Option<String>,
    id_pointer: Option<String>,
    params: Vec<(String, String)>,
    payload_pointer: Option<String>,
    items_pointer: Option<String>,
}

fn mapping() -> Result<Mapping, DecodeError> {
    let params = match config_get("params") {
        None => Vec::new(),
        Some(text) => {
            let obj: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
                DecodeError::Retry(format!("setting params is not a JSON object: {e}"))
            })?;
            obj.into_iter()
                .map(|(k, v)| match v {
                    Value::String(p) => Ok((k, p)),
                    _ => Err(DecodeError::Retry(format!(
                        "setting params.{k} must be a JSON pointer string"
                    ))),
                })
                .collect::<Result<_, _>>()?
        }
    };
    let m = Mapping {
        name_pointer: config_get("name-pointer"),
        name: config_get("name"),
        id_pointer: config_get("id-pointer"),
        params,
        payload_pointer: config_get("payload-pointer"),
        items_pointer: config_get("items-pointer"),
    };
    if m.name_pointer.is_none() && m.name.is_none() {
        return Err(DecodeError::Retry(
            "setting name-pointer or name is required".into(),
        ));
    }
    Ok(m)
}

fn one(m: &Mapping, item: &Value, index: Option<usize>) -> Result<Signal, DecodeError> {
    let at = |what: &str| match index {
        Some(i) => format!("item {i}: {what}"),
        None => what.to_string(),
    };
    let name = match (&m.name_pointer, &m.name) {
        (Some(p), fallback) => match item.pointer(p) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(DecodeError::Reject(at(&format!(
                    "name at {p} is not a string: {other}"
                ))));
            }
            None => match fallback {
                Some(f) => f.clone(),
                None => return Err(DecodeError::Reject(at(&format!("no name at {p}")))),
            },
        },
        (None, Some(f)) => f.clone(),
        (None, None) => return Err(DecodeError::Retry("no name mapping".into())),
    };
    let id = match &m.id_pointer {
        None => None,
        Some(p) => match item.pointer(p) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(DecodeError::Reject(at(&format!(
                    "id at {p} is not a string: {other}"
                ))));
            }
        },
    };
    let mut params = Map::new();
    for (key, pointer) in &m.params {
        if let Some(v) = item.pointer(pointer) {
            params.insert(key.clone(), v.clone());
        }
    }
    let payload = m
        .payload_pointer
        .as_ref()
        .and_then(|p| item.pointer(p))
        .map(Value::to_string);
    Ok(Signal {
        name,
        id,
        params: Value::Object(params).to_string(),
        payload,
    })
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        let m = mapping()?;
        let body: Value = serde_json::from_slice(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the body is not JSON: {e}")))?;
        match &m.items_pointer {
            None => Ok(vec![one(&m, &body, None)?]),
            Some(p) => match body.pointer(p) {
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| one(&m, item, Some(i)))
                    .collect(),
                _ => Err(DecodeError::Reject(format!("no array at {p}"))),
            },
        }
    }
}

export!(Plugin);
