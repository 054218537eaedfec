//! The field mapping shared by the source adapters that see a JSON-shaped
//! record (`webhook-json`, `kafka-json`, `kv-lines`): which part of a record
//! becomes the signal's name, id, params and payload.
//!
//! A mapping is read once per call from the plugin's settings (all strings):
//! - `name` (a fixed signal name) and/or `name-pointer` (a source, below; when it
//!   finds nothing, `name` is the fallback); one of the two is required;
//! - `id-pointer` (optional): a source for the signal id (string or number);
//! - `params` (optional): a JSON object of param name → source;
//! - `payload-pointer` (optional): a source for the payload (`""` = whole item);
//! - `items-pointer` (optional): a JSON pointer to an array; each element
//!   becomes one signal and value pointers are relative to the element.
//!
//! A *source* is a JSON pointer into the item (`""` or starting with `/`), or
//! `header:<name>` (a transport header, case-insensitive; the last one wins),
//! `key` (the Kafka record key), or `meta:<name>` (envelope metadata such as
//! `partition`, `offset`, `timestamp`). Headers, key and metadata are strings.
//!
//! Invariant: a bad setting is a [`MapError::Config`] (the host should retry:
//! the record is fine, the deployment is not); a record that does not fit is a
//! [`MapError::Input`] (reject it: it will never fit).

use serde_json::{Map, Value};

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The settings are wrong (retry after fixing the deployment).
    Config(String),
    /// The record does not fit the mapping (reject it).
    Input(String),
}

/// Where one value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A JSON pointer into the item.
    Pointer(String),
    /// A transport header (name compared case-insensitively).
    Header(String),
    /// The record key.
    Key,
    /// An envelope metadata entry.
    Meta(String),
}

impl Source {
    /// Parses a source string (see the module docs).
    pub fn parse(text: &str) -> Result<Source, String> {
        if text.is_empty() || text.starts_with('/') {
            Ok(Source::Pointer(text.to_string()))
        } else if let Some(h) = text.strip_prefix("header:") {
            Ok(Source::Header(h.to_ascii_lowercase()))
        } else if let Some(m) = text.strip_prefix("meta:") {
            Ok(Source::Meta(m.to_string()))
        } else if text == "key" {
            Ok(Source::Key)
        } else {
            Err(format!(
                "{text:?} is not a source: use a JSON pointer (\"/a/b\"), header:NAME, key or meta:NAME"
            ))
        }
    }
}

/// The parts of an envelope besides the body that sources can read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Transport headers in arrival order.
    pub headers: &'a [(String, String)],
    /// The record key, if any.
    pub key: Option<&'a str>,
    /// Envelope metadata.
    pub metadata: &'a [(String, String)],
}

impl Context<'_> {
    fn read(&self, source: &Source, item: &Value) -> Option<Value> {
        match source {
            Source::Pointer(p) => item.pointer(p).cloned(),
            Source::Header(h) => self
                .headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(h))
                .map(|(_, v)| Value::String(v.clone())),
            Source::Key => self.key.map(|k| Value::String(k.to_string())),
            Source::Meta(m) => self
                .metadata
                .iter()
                .find(|(n, _)| n == m)
                .map(|(_, v)| Value::String(v.clone())),
        }
    }
}

/// One mapped signal, before it is turned into the plugin's WIT type.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The signal name.
    pub name: String,
    /// The signal id, when the mapping has one.
    pub id: Option<String>,
    /// The params as a JSON object text.
    pub params: String,
    /// The payload as JSON text.
    pub payload: Option<String>,
}

/// The mapping read from the settings.
#[derive(Debug, Clone)]
pub struct Mapping {
    name_source: Option<Source>,
    name: Option<String>,
    id_source: Option<Source>,
    params: Vec<(String, Source)>,
    payload_source: Option<Source>,
    items_pointer: Option<String>,
}

impl Mapping {
    /// Reads the mapping through `get` (the plugin's `config-get`).
    pub fn from_settings(get: impl Fn(&str) -> Option<String>) -> Result<Mapping, MapError> {
        let source = |setting: &str| -> Result<Option<Source>, MapError> {
            get(setting)
                .map(|t| Source::parse(&t).map_err(|e| MapError::Config(format!("{setting}: {e}"))))
                .transpose()
        };
        let params = match get("params") {
            None => Vec::new(),
            Some(text) => {
                let obj: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
                    MapError::Config(format!("setting params is not a JSON object: {e}"))
                })?;
                obj.into_iter()
                    .map(|(k, v)| match v {
                        Value::String(p) => Source::parse(&p)
                            .map(|s| (k.clone(), s))
                            .map_err(|e| MapError::Config(format!("setting params.{k}: {e}"))),
                        _ => Err(MapError::Config(format!(
                            "setting params.{k} must be a source string"
                        ))),
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let m = Mapping {
            name_source: source("name-pointer")?,
            name: get("name"),
            id_source: source("id-pointer")?,
            params,
            payload_source: source("payload-pointer")?,
            items_pointer: get("items-pointer"),
        };
        if m.name_source.is_none() && m.name.is_none() {
            return Err(MapError::Config(
                "setting name-pointer or name is required".into(),
            ));
        }
        Ok(m)
    }

    /// Maps a parsed body: one signal, or one per element of `items-pointer`.
    pub fn map(&self, body: &Value, cx: &Context<'_>) -> Result<Vec<Mapped>, MapError> {
        match &self.items_pointer {
            None => Ok(vec![self.one(body, cx, None)?]),
            Some(p) => match body.pointer(p) {
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.one(item, cx, Some(i)))
                    .collect(),
                _ => Err(MapError::Input(format!("no array at {p}"))),
            },
        }
    }

    /// Maps several items (e.g. the lines of a record), numbering errors.
    pub fn map_items(&self, items: &[Value], cx: &Context<'_>) -> Result<Vec<Mapped>, MapError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.one(item, cx, Some(i)))
            .collect()
    }

    fn one(
        &self,
        item: &Value,
        cx: &Context<'_>,
        index: Option<usize>,
    ) -> Result<Mapped, MapError> {
        let at = |what: String| match index {
            Some(i) => MapError::Input(format!("item {i}: {what}")),
            None => MapError::Input(what),
        };
        let name = match (&self.name_source, &self.name) {
            (Some(s), fallback) => match cx.read(s, item) {
                Some(Value::String(s)) => s,
                Some(other) => return Err(at(format!("name at {s:?} is not a string: {other}"))),
                None => match fallback {
                    Some(f) => f.clone(),
                    None => return Err(at(format!("no name at {s:?}"))),
                },
            },
            (None, Some(f)) => f.clone(),
            (None, None) => return Err(MapError::Config("no name mapping".into())),
        };
        let id = match &self.id_source {
            None => None,
            Some(s) => match cx.read(s, item) {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(v),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => return Err(at(format!("id at {s:?} is not a string: {other}"))),
            },
        };
        let mut params = Map::new();
        for (key, s) in &self.params {
            if let Some(v) = cx.read(s, item) {
                params.insert(key.clone(), v);
            }
        }
        let payload = self
            .payload_source
            .as_ref()
            .and_then(|s| cx.read(s, item))
            .map(|v| v.to_string());
        Ok(Mapped {
            name,
            id,
            params: Value::Object(params).to_string(),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_pointers_headers_key_and_metadata() {
        let m = Mapping::from_settings(settings(&[
            ("name-pointer", "/type"),
            ("id-pointer", "meta:offset"),
            (
                "params",
                r#"{"n": "/n", "tenant": "header:X-Tenant", "k": "key"}"#,
            ),
        ]))
        .expect("valid settings");
        let headers = [("x-tenant".to_string(), "acme".to_string())];
        let meta = [("offset".to_string(), "7".to_string())];
        let cx = Context {
            headers: &headers,
            key: Some("k1"),
            metadata: &meta,
        };
        let out = m.map(&json!({"type": "t", "n": 3}), &cx).expect("maps");
        assert_eq!(out[0].name, "t");
        assert_eq!(out[0].id.as_deref(), Some("7"));
        let params: Value = serde_json::from_str(&out[0].params).expect("json");
        assert_eq!(params, json!({"n": 3, "tenant": "acme", "k": "k1"}));
    }

    #[test]
    fn bad_settings_are_config_errors_and_bad_records_input_errors() {
        assert!(matches!(
            Mapping::from_settings(settings(&[])),
            Err(MapError::Config(_))
        ));
        assert!(matches!(
            Mapping::from_settings(settings(&[("name", "x"), ("params", r#"{"a": "nope"}"#)])),
            Err(MapError::Config(_))
        ));
        let m = Mapping::from_settings(settings(&[("name-pointer", "/type")])).expect("valid");
        assert!(matches!(
            m.map(&json!({"other": 1}), &Context::default()),
            Err(MapError::Input(e)) if e.contains("no name")
        ));
    }
}
