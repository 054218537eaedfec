//! Where a signal message is parsed: [`Signal::parse`] and
//! [`Signal::parse_for_subject`]. Their common case, a valid signal, is
//! decoded straight from its bytes, without building a `serde_json::Value`
//! of the whole message first and converting its `params` after.
//!
//! Invariant: [`decode`] returns `Some(signal)` only when the checked path
//! (`Signal::from_json` on the parsed message) would return `Ok` of an equal
//! signal; for anything else (invalid JSON, an unknown or repeated field, a
//! wrong type, a broken rule, a limit passed) it returns `None`, and the
//! caller runs the checked path, which names the field and the rule. So this
//! module never writes an error message, and a rejected message gets exactly
//! the error it got before. The tests pit the two against each other on
//! generated messages, valid and not.
//!
//! `params` are read by the direct `Value` deserializer (`value_serde`, the
//! rules of `Value::from_json`), and the depth and field-count limits are
//! checked on the result, counted as `check_shape` counts them.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::error::FieldError;
use crate::limits::Limits;
use crate::signal::{Signal, parse_producer, parse_rfc3339, validate_id, validate_name};
use crate::value::{Map, Value};

impl Signal {
    /// Parses and validates a signal message.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Signal, FieldError> {
        if let Some(signal) = decode(bytes, limits, "") {
            return Ok(signal);
        }
        Signal::parse_checked(bytes, limits)
    }

    /// Parses a message that arrived on a subject naming the signal
    /// `subject_name` (`""` for none): a body without `name` takes it from the
    /// subject, and a body whose `name` differs from the subject's is refused
    /// (the error names `<subject_prefix>.<name>` as where to publish it).
    pub fn parse_for_subject(
        bytes: &[u8],
        limits: &Limits,
        subject_name: &str,
        subject_prefix: &str,
    ) -> Result<Signal, FieldError> {
        if let Some(signal) = decode(bytes, limits, subject_name) {
            return Ok(signal);
        }
        if bytes.len() > limits.max_message_bytes {
            return Signal::parse_checked(bytes, limits);
        }
        let mut json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
        if let serde_json::Value::Object(obj) = &mut json {
            match obj.get("name") {
                None if !subject_name.is_empty() => {
                    obj.insert(
                        "name".into(),
                        serde_json::Value::String(subject_name.into()),
                    );
                }
                Some(serde_json::Value::String(n))
                    if !subject_name.is_empty() && n != subject_name =>
                {
                    validate_name(n).map_err(|rule| FieldError::new("name", rule))?;
                    return Err(FieldError::new(
                        "name",
                        format!(
                            "{n:?} does not match the subject's signal name {subject_name:?} (publish to {subject_prefix}.{n})"
                        ),
                    ));
                }
                _ => {}
            }
        }
        Signal::from_json(json, limits)
    }
}

/// The signal in `bytes` if it is valid and ordinary (see the module docs).
/// `default_name` is the name a message without `name` takes (the one its
/// subject names, or `""` for none); a message whose `name` differs from a
/// non-empty `default_name` is left to the checked path.
pub(crate) fn decode(bytes: &[u8], limits: &Limits, default_name: &str) -> Option<Signal> {
    if bytes.len() > limits.max_message_bytes {
        return None;
    }
    let fields: Fields = serde_json::from_slice(bytes).ok()?;
    let name = match fields.name {
        None if !default_name.is_empty() => default_name.to_string(),
        Some(name) if default_name.is_empty() || name == default_name => name,
        _ => return None,
    };
    validate_name(&name).ok()?;
    if let Some(id) = &fields.id {
        validate_id(id).ok()?;
    }
    let params = fields.params.unwrap_or_default();
    let mut count = 0;
    if !map_within(&params, 1, limits, &mut count) {
        return None;
    }
    let producer = match fields.producer {
        Some(p) => Some(parse_producer(p).ok()?),
        None => None,
    };
    if let Some(at) = &fields.occurred_at {
        parse_rfc3339(at).ok()?;
    }
    Some(Signal {
        name,
        id: fields.id,
        params,
        payload: fields.payload,
        source: fields.source,
        producer,
        occurred_at: fields.occurred_at,
    })
}

/// Whether an object at `depth` and everything in it is within the limits,
/// counting members and array items in `count` (the rules of `check_shape`).
fn map_within(map: &Map, depth: usize, limits: &Limits, count: &mut usize) -> bool {
    if depth > limits.max_depth {
        return false;
    }
    map.values().all(|v| {
        *count += 1;
        *count <= limits.max_params_fields && value_within(v, depth, limits, count)
    })
}

fn value_within(v: &Value, depth: usize, limits: &Limits, count: &mut usize) -> bool {
    match v {
        Value::Object(m) => map_within(m, depth + 1, limits, count),
        Value::Array(items) => {
            depth < limits.max_depth
                && items.iter().all(|item| {
                    *count += 1;
                    *count <= limits.max_params_fields
                        && value_within(item, depth + 1, limits, count)
                })
        }
        _ => true,
    }
}

/// The top-level fields, each at most once.
#[derive(Default)]
struct Fields {
    /// `None`: no `name` field (`null` or not a string fails the decode).
    name: Option<String>,
    id: Option<String>,
    params: Option<Map>,
    payload: Option<serde_json::Value>,
    source: Option<String>,
    producer: Option<serde_json::Map<String, serde_json::Value>>,
    occurred_at: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a signal object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        let mut seen = 0u8;
        while let Some(key) = access.next_key::<KeyName>()? {
            // A repeated field keeps its last value in the checked path;
            // rare enough to leave to it.
            let bit = 1u8 << (key as u8);
            if seen & bit != 0 {
                return Err(de::Error::custom("repeated field"));
            }
            seen |= bit;
            match key {
                KeyName::Name => {
                    // `null` (or, failing the parse, not a string): the
                    // checked path's error.
                    let Some(name) = access.next_value::<Option<String>>()? else {
                        return Err(de::Error::custom("name is null"));
                    };
                    fields.name = Some(name);
                }
                KeyName::Id => fields.id = access.next_value()?,
                KeyName::Params => fields.params = access.next_value()?,
                KeyName::Payload => {
                    fields.payload = access
                        .next_value::<Option<serde_json::Value>>()?
                        .filter(|p| !p.is_null());
                }
                KeyName::Source => fields.source = access.next_value()?,
                KeyName::Producer => fields.producer = access.next_value()?,
                KeyName::OccurredAt => fields.occurred_at = access.next_value()?,
            }
        }
        Ok(fields)
    }
}

/// A known top-level field name; any other name fails the decode.
#[derive(Clone, Copy)]
enum KeyName {
    Name,
    Id,
    Params,
    Payload,
    Source,
    Producer,
    OccurredAt,
}

impl<'de> serde::Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = KeyName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a signal field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyName, E> {
        Ok(match s {
            "name" => KeyName::Name,
            "id" => KeyName::Id,
            "params" => KeyName::Params,
            "payload" => KeyName::Payload,
            "source" => KeyName::Source,
            "producer" => KeyName::Producer,
            "occurred_at" => KeyName::OccurredAt,
            _ => return Err(E::custom("unknown field")),
        })
    }
}

#[cfg(test)]
mod tests;
