//! The signal of docs/DESIGN.md section 2: parsing from wire bytes, validation, and the
//! stored form (a signal instance with its per-name sequence number).
//!
//! Parsing is strict and total: any byte string yields either a [`Signal`] that
//! satisfies every rule below, or a [`FieldError`] naming the field and the rule.
//! It never panics. Rules: the message is at most `max_message_bytes`; it is a JSON
//! object with only the known fields; `name` is 1–256 characters of
//! `[A-Za-z0-9_.:/-]` and neither starts nor ends with a separator; `id`, when
//! present, is a non-empty string of at most 512 characters; `params` is an object
//! within the field-count and depth limits; `occurred_at` is RFC 3339.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::limits::Limits;
use crate::value::{Map, Value, join_path};

/// The fields a signal message may carry.
pub const SIGNAL_FIELDS: &[&str] = &[
    "name",
    "id",
    "params",
    "payload",
    "source",
    "producer",
    "occurred_at",
];

/// Longest accepted signal id, in characters.
pub const MAX_ID_CHARS: usize = 512;

/// A signal as a producer announces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What happened, e.g. `table_updated`.
    pub name: String,
    /// The producer's idempotency key; the router fills it in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The values subscriptions match on.
    #[serde(default)]
    pub params: Map,
    /// Carried along to firings, never matched on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// A free-form label of where the producer says the signal comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who produced it (workflow, run, step, or any other string fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    /// When it happened, RFC 3339, as the producer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
}

/// The producer of a signal: a workflow step, or any other named origin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Producer {
    /// Workflow (or job, or service) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Run (instance) identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Step within the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Any other string fields the producer adds.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// Where the router received a signal from (filled in by the router, not the producer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Origin {
    /// `nats`, `jetstream`, `http`, `sns`, `kafka`, `replay` …
    pub transport: String,
    /// The NATS subject, HTTP path or Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The source adapter that decoded it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// Transport coordinates (partition, offset, message id …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// One stored signal: the signal, its id resolved, its per-name sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalInstance {
    /// Per-name sequence number, 1, 2, 3 …
    pub seq: u64,
    /// The signal id (the producer's, or the one the router assigned).
    pub id: String,
    /// When the router received it, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The signal as announced (its `id` equals [`SignalInstance::id`]).
    pub signal: Signal,
    /// Where it came in.
    pub origin: Origin,
}

impl Signal {
    /// [`Signal::parse`] without the direct decode: every rule checked on the
    /// parsed message, in order (the path that writes the errors).
    pub(crate) fn parse_checked(bytes: &[u8], limits: &Limits) -> Result<Signal, FieldError> {
        if bytes.len() > limits.max_message_bytes {
            return Err(FieldError::new(
                "",
                format!(
                    "message is {} bytes, more than the limit of {} bytes",
                    bytes.len(),
                    limits.max_message_bytes
                ),
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
        Signal::from_json(json, limits)
    }

    /// Validates a signal given as a JSON value.
    pub fn from_json(json: serde_json::Value, limits: &Limits) -> Result<Signal, FieldError> {
        let serde_json::Value::Object(mut obj) = json else {
            return Err(FieldError::new(
                "",
                format!("expected a JSON object, found {}", json_kind(&json)),
            ));
        };
        if let Some(unknown) = obj.keys().find(|k| !SIGNAL_FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                unknown.clone(),
                format!("unknown field; a signal has {}", SIGNAL_FIELDS.join(", ")),
            ));
        }
        let name = match obj.remove("name") {
            None | Some(serde_json::Value::Null) => {
                return Err(FieldError::new("name", "required"));
            }
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(FieldError::new(
                    "name",
                    format!("expected a string, found {}", json_kind(&other)),
                ));
            }
        };
        validate_name(&name).map_err(|rule| FieldError::new("name", rule))?;
        let id = optional_string(&mut obj, "id")?;
        if let Some(id) = &id {
            validate_id(id).map_err(|rule| FieldError::new("id", rule))?;
        }
        let params = params_from_json(obj.remove("params"), limits)?;
        let payload = obj.remove("payload").filter(|p| !p.is_null());
        let source = optional_string(&mut obj, "source")?;
        let producer = match obj.remove("producer") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(p)) => Some(parse_producer(p)?),
            Some(other) => {
                return Err(FieldError::new(
                    "producer",
                    format!("expected a JSON object, found {}", json_kind(&other)),
                ));
            }
        };
        let occurred_at = optional_string(&mut obj, "occurred_at")?;
        if let Some(ts) = &occurred_at {
            parse_rfc3339(ts).map_err(|rule| FieldError::new("occurred_at", rule))?;
        }
        Ok(Signal {
            name,
            id,
            params,
            payload,
            source,
            producer,
            occurred_at,
        })
    }

    /// Parses and validates the JSON bytes of a signal's `params` alone, with
    /// the rules `params` has inside a signal (an object, or `null` for none,
    /// within the field-count and depth limits). Errors name `params`: a body
    /// larger than `max_message_bytes` or not valid JSON is refused at
    /// `params`, as is anything else the params of a signal may not be.
    pub fn parse_params(bytes: &[u8], limits: &Limits) -> Result<Map, FieldError> {
        if bytes.len() > limits.max_message_bytes {
            return Err(FieldError::new(
                "params",
                format!(
                    "params are {} bytes, more than the limit of {} bytes",
                    bytes.len(),
                    limits.max_message_bytes
                ),
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("params", format!("not valid JSON: {e}")))?;
        params_from_json(Some(json), limits)
    }

    /// Serializes the signal to its wire form.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The params of a signal from the value of its `params` field (absent or
/// `null`: none), with the field-count and depth limits checked first.
fn params_from_json(json: Option<serde_json::Value>, limits: &Limits) -> Result<Map, FieldError> {
    match json {
        None | Some(serde_json::Value::Null) => Ok(Map::new()),
        Some(serde_json::Value::Object(p)) => {
            let mut fields = 0usize;
            check_shape(&p, "params", 1, limits, &mut fields)?;
            match Value::from_json(&serde_json::Value::Object(p), "params")? {
                Value::Object(m) => Ok(m),
                _ => Ok(Map::new()),
            }
        }
        Some(other) => Err(FieldError::new(
            "params",
            format!("expected a JSON object, found {}", json_kind(&other)),
        )),
    }
}

/// Checks a signal name: 1–256 characters of `[A-Za-z0-9_.:/-]`, no leading or
/// trailing separator (`.`, `:`, `/`, `-`, `_`).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let chars = name.chars().count();
    if chars > 256 {
        return Err(format!("is {chars} characters long, the limit is 256"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.:/-".contains(*c)))
    {
        return Err(format!(
            "character {bad:?} is not allowed; use only A-Z a-z 0-9 _ . : / -"
        ));
    }
    let is_sep = |c: char| "_.:/-".contains(c);
    if name.starts_with(is_sep) || name.ends_with(is_sep) {
        return Err("must not start or end with a separator (_ . : / -)".into());
    }
    Ok(())
}

/// Checks a signal id: non-empty, at most [`MAX_ID_CHARS`] characters, no control characters.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!("is longer than {MAX_ID_CHARS} characters"));
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Parses an RFC 3339 timestamp into milliseconds since the Unix epoch.
pub fn parse_rfc3339(ts: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 timestamp like 2026-11-26T04:00:00Z ({e})"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 (UTC).
pub fn format_rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A word for the kind of a JSON value, for error messages.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn optional_string(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            field,
            format!("expected a string, found {}", json_kind(&other)),
        )),
    }
}

pub(crate) fn parse_producer(
    p: serde_json::Map<String, serde_json::Value>,
) -> Result<Producer, FieldError> {
    let mut producer = Producer::default();
    for (k, v) in p {
        let path = join_path("producer", &k);
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(FieldError::new(
                    path,
                    format!("expected a string, found {}", json_kind(&other)),
                ));
            }
        };
        match k.as_str() {
            "workflow" => producer.workflow = Some(s),
            "run" => producer.run = Some(s),
            "step" => producer.step = Some(s),
            _ => {
                producer.extra.insert(k, s);
            }
        }
    }
    Ok(producer)
}

/// Walks `params` once, enforcing the depth and field-count limits before conversion.
fn check_shape(
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    depth: usize,
    limits: &Limits,
    fields: &mut usize,
) -> Result<(), FieldError> {
    if depth > limits.max_depth {
        return Err(FieldError::new(
            path,
            format!(
                "nested deeper than the limit of {} levels",
                limits.max_depth
            ),
        ));
    }
    for (k, v) in obj {
        *fields += 1;
        let child = join_path(path, k);
        if *fields > limits.max_params_fields {
            return Err(FieldError::new(
                child,
                format!(
                    "params has more than the limit of {} fields",
                    limits.max_params_fields
                ),
            ));
        }
        check_value(v, &child, depth, limits, fields)?;
    }
    Ok(())
}

fn check_value(
    v: &serde_json::Value,
    path: &str,
    depth: usize,
    limits: &Limits,
    fields: &mut usize,
) -> Result<(), FieldError> {
    match v {
        serde_json::Value::Object(o) => check_shape(o, path, depth + 1, limits, fields),
        serde_json::Value::Array(items) => {
            if depth + 1 > limits.max_depth {
                return Err(FieldError::new(
                    path,
                    format!(
                        "nested deeper than the limit of {} levels",
                        limits.max_depth
                    ),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                *fields += 1;
                if *fields > limits.max_params_fields {
                    return Err(FieldError::new(
                        format!("{path}[{i}]"),
                        format!(
                            "params has more than the limit of {} fields",
                            limits.max_params_fields
                        ),
                    ));
                }
                check_value(item, &format!("{path}[{i}]"), depth + 1, limits, fields)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Signal, FieldError> {
        Signal::parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn parses_the_design_example() {
        let s = parse(
            r#"{"name": "table_updated", "id": "etl-run-8812/part-20261126",
                "params": {"table": "prod.events", "partition": 20261126, "rows": 1.2e6,
                           "owner": {"team": "data-eng"}},
                "payload": {"location": "s3://bucket/events/20261126/"},
                "producer": {"workflow": "etl-daily", "run": "8812", "step": "load"},
                "occurred_at": "2026-11-26T04:00:00Z"}"#,
        )
        .expect("valid signal");
        assert_eq!(s.name, "table_updated");
        assert_eq!(s.params.get("partition"), Some(&Value::Int(20261126)));
        assert_eq!(s.params.get("rows"), Some(&Value::Float(1.2e6)));
        assert_eq!(
            s.producer.and_then(|p| p.workflow).as_deref(),
            Some("etl-daily")
        );
    }

    #[test]
    fn bad_inputs_name_field_and_rule() {
        let cases = [
            ("not json", "", "not valid JSON"),
            ("[1,2]", "", "expected a JSON object, found an array"),
            ("{}", "name", "required"),
            (r#"{"name": 5}"#, "name", "expected a string"),
            (r#"{"name": "a b"}"#, "name", "not allowed"),
            (r#"{"name": ".a"}"#, "name", "separator"),
            (
                r#"{"name": "a", "params": [1]}"#,
                "params",
                "expected a JSON object",
            ),
            (r#"{"name": "a", "parms": {}}"#, "parms", "unknown field"),
            (r#"{"name": "a", "id": ""}"#, "id", "must not be empty"),
            (r#"{"name": "a", "id": 7}"#, "id", "expected a string"),
            (
                r#"{"name": "a", "occurred_at": "yesterday"}"#,
                "occurred_at",
                "RFC 3339",
            ),
            (
                r#"{"name": "a", "params": {"x": 1e400}}"#,
                "",
                "not valid JSON",
            ),
        ];
        for (input, field, rule) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err.field, field, "{input}: {err}");
            assert!(err.rule.contains(rule), "{input}: {err}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_message_bytes: 200,
            max_params_fields: 3,
            max_depth: 2,
        };
        let big = format!(r#"{{"name":"a","payload":"{}"}}"#, "x".repeat(300));
        assert!(
            Signal::parse(big.as_bytes(), &limits)
                .expect_err("too big")
                .rule
                .contains("limit of 200 bytes")
        );
        let many = r#"{"name":"a","params":{"a":1,"b":2,"c":3,"d":4}}"#;
        let err = Signal::parse(many.as_bytes(), &limits).expect_err("too many");
        assert_eq!(err.field, "params.d");
        let deep = r#"{"name":"a","params":{"a":{"b":{"c":1}}}}"#;
        let err = Signal::parse(deep.as_bytes(), &limits).expect_err("too deep");
        assert_eq!(err.field, "params.a.b");
        assert!(err.rule.contains("deeper"));
    }

    #[test]
    fn params_alone_follow_the_params_rules() {
        let limits = Limits {
            max_message_bytes: 60,
            max_params_fields: 3,
            max_depth: 2,
        };
        let ok = Signal::parse_params(br#"{"a": 1, "b": {"c": "x"}}"#, &limits).expect("valid");
        assert_eq!(ok.get("a"), Some(&Value::Int(1)));
        assert!(
            Signal::parse_params(b"null", &limits)
                .expect("null is none")
                .is_empty()
        );
        let cases: [(&[u8], &str, &str); 6] = [
            (b"[1]", "params", "expected a JSON object, found an array"),
            (b"{\"a\": }", "params", "not valid JSON"),
            (b"{\"x\": 1e400}", "params", "not valid JSON"),
            (
                br#"{"a":1,"b":2,"c":3,"d":4}"#,
                "params.d",
                "limit of 3 fields",
            ),
            (br#"{"a":{"b":{"c":1}}}"#, "params.a.b", "deeper"),
            (&[b' '; 61], "params", "more than the limit of 60 bytes"),
        ];
        for (input, field, rule) in cases {
            let err = Signal::parse_params(input, &limits).expect_err("refused");
            assert_eq!(err.field, field, "{err}");
            assert!(err.rule.contains(rule), "{err}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = parse_rfc3339("2026-11-26T04:00:00Z").expect("valid");
        assert_eq!(format_rfc3339(ms), "2026-11-26T04:00:00Z");
    }
}
