//! The `sns` adapter: turns an AWS SNS notification into one signal.
//!
//! The host has already verified the message (signature, certificate URL,
//! topic, timestamp) and hands over the SNS JSON document as the body, with
//! metadata `message-id`, `type`, `subject`, `timestamp` and `raw=false`; with
//! raw message delivery (`raw=true`) the body is the message itself and there
//! are no attributes.
//!
//! Params:
//! - the `Message`: a JSON object becomes the params; any other text (or JSON
//!   that is not an object) becomes the param `message`;
//! - the `MessageAttributes`, by their type: `String` → text, `Number` → an
//!   integer or a float (text if neither), `Binary` → its Base64 text,
//!   `String.Array` → an array; custom types (`Number.float`) by their prefix.
//!   They go under the param named by the setting `attributes` (default
//!   `attributes`); `attributes = ""` merges them into the top level, where a
//!   Message field of the same name wins.
//!
//! Settings (from `config-get`, all strings):
//! - `name-pointer`: JSON pointer into the Message to the signal name; or
//!   `name-attribute`: the message attribute holding the name; or `name`: a
//!   fixed name (also the fallback of the other two). One is required.
//! - `id-pointer` (optional): pointer into the Message to the signal id; without
//!   it the host uses the SNS `MessageId`, so an SNS retry is a duplicate.
//! - `attributes` (optional): where the attributes go (above).
//! - `subject-param` (optional): a param to carry the `Subject` in.
//!
//! Only envelopes of transport `sns` are taken: anything else (a webhook) has
//! not been verified and is rejected. A body that is not an SNS JSON document,
//! or no name, is rejected; a missing setting is a configuration problem and
//! asks for a retry.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal, Transport};
use serde_json::{Map, Number, Value};
use signalbox::plugin::host::config_get;

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "sns".into(),
            argument_shape: "settings: name | name-pointer | name-attribute, id-pointer, attributes, subject-param".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The settings.
struct Settings {
    name: Option<String>,
    name_pointer: Option<String>,
    name_attribute: Option<String>,
    id_pointer: Option<String>,
    attributes: String,
    subject_param: Option<String>,
}

fn settings() -> Result<Settings, DecodeError> {
    let s = Settings {
        name: config_get("name"),
        name_pointer: config_get("name-pointer"),
        name_attribute: config_get("name-attribute"),
        id_pointer: config_get("id-pointer"),
        attributes: config_get("attributes").unwrap_or_else(|| "attributes".into()),
        subject_param: config_get("subject-param"),
    };
    if s.name.is_none() && s.name_pointer.is_none() && s.name_attribute.is_none() {
        return Err(DecodeError::Retry(
            "setting name, name-pointer or name-attribute is required".into(),
        ));
    }
    Ok(s)
}

/// One message attribute's value by its type.
fn attribute_value(attr: &Value) -> Option<Value> {
    let obj = attr.as_object()?;
    let kind = obj
        .get("Type")
        .or_else(|| obj.get("DataType"))
        .and_then(Value::as_str)
        .unwrap_or("String");
    let text = obj
        .get("Value")
        .or_else(|| obj.get("StringValue"))
        .or_else(|| obj.get("BinaryValue"))
        .and_then(Value::as_str)?;
    let base = kind.split('.').next().unwrap_or(kind);
    Some(match (base, kind) {
        (_, "String.Array") => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Array(_)) => v,
            _ => Value::String(text.to_string()),
        },
        ("Number", _) => {
            if let Ok(i) = text.trim().parse::<i64>() {
                Value::Number(i.into())
            } else if let Some(n) = text.trim().parse::<f64>().ok().and_then(Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(text.to_string())
            }
        }
        _ => Value::String(text.to_string()),
    })
}

/// The parts of a notification the mapping reads.
struct Notification {
    message: String,
    attributes: Map<String, Value>,
    subject: Option<String>,
}

fn notification(envelope: &Envelope) -> Result<Notification, DecodeError> {
    let raw = envelope
        .metadata
        .iter()
        .any(|(k, v)| k == "raw" && v == "true");
    if raw {
        return Ok(Notification {
            message: String::from_utf8_lossy(&envelope.body).into_owned(),
            attributes: Map::new(),
            subject: None,
        });
    }
    let doc: Value = serde_json::from_slice(&envelope.body)
        .map_err(|e| DecodeError::Reject(format!("the body is not SNS JSON: {e}")))?;
    let message = match doc.get("Message") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(DecodeError::Reject(
                "the SNS document has no Message string".into(),
            ));
        }
    };
    let mut attributes = Map::new();
    if let Some(Value::Object(attrs)) = doc.get("MessageAttributes") {
        for (k, v) in attrs {
            if let Some(value) = attribute_value(v) {
                attributes.insert(k.clone(), value);
            }
        }
    }
    let subject = doc
        .get("Subject")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Notification {
        message,
        attributes,
        subject,
    })
}

fn text_at(doc: Option<&Value>, pointer: &str) -> Option<String> {
    match doc?.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        if !matches!(envelope.transport, Transport::Sns) {
            // Only the host's SNS endpoint has verified the message.
            return Err(DecodeError::Reject(
                "the sns adapter takes only SNS deliveries (POST /sns/<source>)".into(),
            ));
        }
        let s = settings()?;
        let n = notification(&envelope)?;
        let parsed: Option<Value> = serde_json::from_str::<Value>(&n.message)
            .ok()
            .filter(Value::is_object);
        let name = s
            .name_pointer
            .as_deref()
            .and_then(|p| text_at(parsed.as_ref(), p))
            .or_else(|| {
                s.name_attribute
                    .as_deref()
                    .and_then(|a| n.attributes.get(a))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| s.name.clone())
            .ok_or_else(|| {
                DecodeError::Reject(match (&s.name_pointer, &s.name_attribute) {
                    (Some(p), _) => format!("no signal name at {p} in the Message"),
                    (None, Some(a)) => format!("no message attribute {a} with the signal name"),
                    (None, None) => "no signal name".into(),
                })
            })?;
        let id = s
            .id_pointer
            .as_deref()
            .and_then(|p| text_at(parsed.as_ref(), p));
        let mut params = match parsed {
            Some(Value::Object(map)) => map,
            _ => {
                let mut map = Map::new();
                map.insert("message".into(), Value::String(n.message.clone()));
                map
            }
        };
        if !n.attributes.is_empty() {
            if s.attributes.is_empty() {
                for (k, v) in n.attributes {
                    params.entry(k).or_insert(v);
                }
            } else {
                params.insert(s.attributes.clone(), Value::Object(n.attributes));
            }
        }
        if let (Some(param), Some(subject)) = (&s.subject_param, n.subject) {
            params.insert(param.clone(), Value::String(subject));
        }
        Ok(vec![Signal {
            name,
            id,
            params: Value::Object(params).to_string(),
            payload: None,
        }])
    }
}

export!(Plugin);
