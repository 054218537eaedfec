//! Typed parameter values: what a signal's `params` hold and what patterns match on.
//!
//! A [`Value`] is JSON with the number split in two: integers that fit an `i64`
//! are [`Value::Int`], every other number is [`Value::Float`]. Integers and floats
//! compare by numeric value with each other (`5 == 5.0`, see [`Value::num_eq`]);
//! a string never equals a number. Objects keep their keys sorted (a `BTreeMap`),
//! so two equal signals serialize to the same bytes.
//!
//! Invariants: a `Float` is always finite (JSON cannot carry NaN or infinity), and
//! conversion from JSON never panics; a number outside both `i64` and `f64` is an
//! error that names its path.

use std::collections::BTreeMap;
use std::fmt;

/// An object of named values (the shape of `params`).
pub type Map = BTreeMap<String, Value>;

/// One typed value inside a signal's `params`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// Any other finite number.
    Float(f64),
    /// A UTF-8 string.
    String(String),
    /// An array; a condition on it matches if any element matches.
    Array(Vec<Value>),
    /// A nested object, addressed by dotted paths (`owner.team`).
    Object(Map),
}

/// Why a JSON value could not become a [`Value`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {rule}")]
pub struct ValueError {
    /// Dotted path of the offending value, e.g. `params.partition`.
    pub path: String,
    /// The rule that was broken.
    pub rule: String,
}

impl Value {
    /// The kind of this value as a word for error messages (`"string"`, `"integer"` …).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The numeric value of an `Int` or `Float`, as `f64`; `None` for anything else.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string inside a `String`; `None` for anything else.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The map inside an `Object`; `None` for anything else.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Equality as patterns see it: numbers compare by value across `Int` and
    /// `Float` (`5 == 5.0`, `-0.0 == 0`), everything else structurally.
    pub fn num_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                match (self, other) {
                    (Value::Int(i), Value::Float(f)) | (Value::Float(f), Value::Int(i)) => {
                        int_eq_float(*i, *f)
                    }
                    (Value::Float(a), Value::Float(b)) => a == b,
                    _ => false,
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.num_eq(y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.num_eq(vb))
            }
            _ => self == other,
        }
    }

    /// Looks up a dotted path (`owner.team`) through nested objects. Arrays on the
    /// way are not traversed here (patterns handle arrays); `None` if any step is
    /// missing or not an object.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut cur = self;
        for part in path.split('.') {
            cur = cur.as_object()?.get(part)?;
        }
        Some(cur)
    }

    /// Converts from `serde_json::Value`, naming `path` in any error.
    ///
    /// The path of an element is only built when that element fails, so a
    /// valid value costs no string work beyond its own contents.
    pub fn from_json(json: &serde_json::Value, path: &str) -> Result<Value, ValueError> {
        convert(json).map_err(|f| f.at(path))
    }

    /// Converts to `serde_json::Value` (lossless: integers stay integers).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// Renders the value as a template would: strings bare, everything else as JSON.
    pub fn render(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => other.to_json().to_string(),
        }
    }
}

/// Joins a parent path and a key with a dot (no dot when the parent is empty).
pub fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Exact comparison of an integer and a float, without rounding the integer.
fn int_eq_float(i: i64, f: f64) -> bool {
    if f.fract() != 0.0 || !f.is_finite() {
        return false;
    }
    // f is integral; compare in i128 when it is in range, else it cannot be equal.
    if !(-9.3e18..=9.3e18).contains(&f) {
        return false;
    }
    (f as i128) == i128::from(i)
}

/// A conversion failure on its way out of the value: the segments from the
/// failing element up to the top, innermost first.
struct Failure {
    segments: Vec<Segment>,
    rule: String,
}

/// One step of a path inside a value.
enum Segment {
    Index(usize),
    Key(String),
}

impl Failure {
    fn within(mut self, segment: Segment) -> Failure {
        self.segments.push(segment);
        self
    }

    /// The error, with the path written from `root` down to the failing element.
    fn at(self, root: &str) -> ValueError {
        let mut path = root.to_string();
        for segment in self.segments.into_iter().rev() {
            path = match segment {
                Segment::Index(i) => format!("{path}[{i}]"),
                Segment::Key(k) => join_path(&path, &k),
            };
        }
        ValueError {
            path,
            rule: self.rule,
        }
    }
}

fn convert(json: &serde_json::Value) -> Result<Value, Failure> {
    Ok(match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => number_from_json(n)?,
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(v).map_err(|f| f.within(Segment::Index(i))))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match convert(v) {
                    Ok(v) => Ok((k.clone(), v)),
                    Err(f) => Err(f.within(Segment::Key(k.clone()))),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn number_from_json(n: &serde_json::Number) -> Result<Value, Failure> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::Int(i));
    }
    if n.is_u64() {
        // Larger than i64::MAX: keep the value as a float, as EventBridge does.
        if let Some(f) = n.as_f64() {
            return Ok(Value::Float(f));
        }
    }
    match n.as_f64() {
        Some(f) if f.is_finite() => Ok(Value::Float(f)),
        _ => Err(Failure {
            segments: Vec::new(),
            rule: format!("number {n} is outside the f64 range"),
        }),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_floats_compare_by_value() {
        assert!(Value::Int(5).num_eq(&Value::Float(5.0)));
        assert!(Value::Float(-0.0).num_eq(&Value::Int(0)));
        assert!(!Value::Int(5).num_eq(&Value::Float(5.5)));
        assert!(!Value::Int(i64::MAX).num_eq(&Value::Float(9.223372036854775e18 + 4096.0)));
        assert!(!Value::String("5".into()).num_eq(&Value::Int(5)));
    }

    #[test]
    fn json_round_trip_keeps_integers() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":1.5,"c":[true,null,"x"],"d":{"e":-3}}"#)
                .expect("valid json");
        let v = Value::from_json(&json, "params").expect("converts");
        assert_eq!(v.get_path("d.e"), Some(&Value::Int(-3)));
        assert_eq!(v.to_json(), json);
    }

    #[test]
    fn huge_unsigned_becomes_float() {
        let json: serde_json::Value = serde_json::from_str("18446744073709551615").expect("json");
        assert!(matches!(Value::from_json(&json, "x"), Ok(Value::Float(_))));
    }
}
