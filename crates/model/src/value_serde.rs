//! Serde for [`Value`]: serialization as plain JSON, and deserialization
//! straight from the input into a `Value` tree.
//!
//! Deserializing does not go through `serde_json::Value` first: each number,
//! string, array and object is built once, where the input has it. The rules
//! are those of [`Value::from_json`]: an integer that fits an `i64` is an
//! `Int`, a larger unsigned integer or any other number is a `Float`, a number
//! that is not finite is an error; a repeated key keeps its last value.

use std::fmt;

use serde::de::{Error, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{Map, Value};

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => items.serialize(serializer),
            Value::Object(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the deserializer holds.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: Error>(self, u: u64) -> Result<Value, E> {
        // Larger than i64::MAX: kept as a float, as EventBridge does.
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E: Error>(self, f: f64) -> Result<Value, E> {
        if f.is_finite() {
            Ok(Value::Float(f))
        } else {
            Err(E::custom(format!("number {f} is outside the f64 range")))
        }
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Value, Value) {
        let direct: Value = serde_json::from_str(text).expect("direct");
        let json: serde_json::Value = serde_json::from_str(text).expect("json");
        (direct, Value::from_json(&json, "").expect("converted"))
    }

    #[test]
    fn direct_parse_agrees_with_conversion() {
        for text in [
            r#"{"a":1,"b":1.5,"c":[true,null,"x",[]],"d":{"e":-3,"f":{}},"g":5.0}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "9223372036854775807",
            "-0.0",
            "1e308",
            "4.9e-324",
            r#"{"k":1,"k":2}"#,
            r#""\u00e9\ud83d\ude00""#,
        ] {
            let (direct, converted) = both(text);
            assert_eq!(direct, converted, "{text}");
        }
    }

    #[test]
    fn kinds_are_kept() {
        let v: Value = serde_json::from_str(r#"[1, 1.0, 18446744073709551615]"#).expect("parses");
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Int(1),
                Value::Float(1.0),
                Value::Float(18446744073709551615.0)
            ])
        );
    }

    #[test]
    fn numbers_beyond_f64_are_refused() {
        let err = serde_json::from_str::<Value>(r#"{"x": 1e400}"#).expect_err("refused");
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
