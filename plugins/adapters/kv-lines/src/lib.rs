//! The `kv-lines` adapter: a non-JSON format. Each line of the message is one
//! signal written as `key=value` pairs separated by spaces (logfmt style):
//!
//! ```text
//! event=order.created order=A-17 amount=12.5 express=true note="two words"
//! ```
//!
//! Values are typed: integers and decimals become numbers, `true`/`false`
//! booleans, everything else a string; `"..."` quotes a value with spaces
//! (`\"` and `\\` escape inside quotes). Blank lines and lines starting with
//! `#` are skipped. Each line becomes a JSON object and the shared mapping of
//! `plugin-mapping` applies to it (`name-pointer = "/event"`, `params` …;
//! headers, key and `meta:` sources work as in `kafka-json`). Without
//! `params`, every pair but the name becomes a param.
//!
//! A line that does not parse (no `=`, an unterminated quote, an empty key) is
//! rejected with its line number; the whole message is then dead-lettered.

use exports::signalbox::plugin::adapter::{DecodeError, Envelope, Signal};
use plugin_mapping::{Context, MapError, Mapping, Source};
use serde_json::{Map, Number, Value};
use signalbox::plugin::host::config_get;

wit_bindgen::generate!({ world: "source-adapter", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "kv-lines".into(),
            argument_shape: "settings: name-pointer | name, id-pointer, params (JSON object of name -> source); default params: every pair but the name".into(),
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

/// Parses one line into an object; `Err` names the problem.
fn parse_line(line: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next_if_eq(&'=').is_none() {
            return Err(format!("{key:?} has no '=value'"));
        }
        if key.is_empty() {
            return Err("a pair has an empty key".into());
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("the value of {key:?} has no closing quote")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => return Err(format!("the value of {key:?} ends in a backslash")),
                    },
                    Some(c) => v.push(c),
                }
            }
            Value::String(v)
        } else {
            let mut v = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                v.push(c);
            }
            typed(&v)
        };
        out.insert(key, value);
    }
}

fn typed(v: &str) -> Value {
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::Number(i.into());
    }
    if v.contains(['.', 'e', 'E'])
        && let Ok(f) = v.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(v.to_string())
}

impl exports::signalbox::plugin::adapter::Guest for Plugin {
    fn decode(envelope: Envelope) -> Result<Vec<Signal>, DecodeError> {
        let get = |k: &str| {
            if k == "params" {
                config_get(k).or_else(|| Some("{}".into()))
            } else {
                config_get(k)
            }
        };
        let explicit_params = config_get("params").is_some();
        let name_key = match config_get("name-pointer") {
            Some(p) => match Source::parse(&p) {
                Ok(Source::Pointer(p)) => p.trim_start_matches('/').to_string(),
                _ => String::new(),
            },
            None => String::new(),
        };
        let m = Mapping::from_settings(get).map_err(decode_error)?;
        let text = std::str::from_utf8(&envelope.body)
            .map_err(|e| DecodeError::Reject(format!("the message is not UTF-8: {e}")))?;
        let mut items = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let obj = parse_line(line)
                .map_err(|e| DecodeError::Reject(format!("line {}: {e}", n + 1)))?;
            items.push(Value::Object(obj));
        }
        let cx = Context {
            headers: &envelope.headers,
            key: envelope.key.as_deref(),
            metadata: &envelope.metadata,
        };
        let mapped = m.map_items(&items, &cx).map_err(decode_error)?;
        Ok(mapped
            .into_iter()
            .zip(&items)
            .map(|(s, item)| {
                let params = if explicit_params {
                    s.params
                } else {
                    let mut all = item.as_object().cloned().unwrap_or_default();
                    all.remove(&name_key);
                    Value::Object(all).to_string()
                };
                Signal {
                    name: s.name,
                    id: s.id,
                    params,
                    payload: s.payload,
                }
            })
            .collect())
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_and_quoted_values() {
        let obj = parse_line(r#"event=a n=3 x=1.5 ok=true note="two \"words\"" id=007x"#)
            .expect("parses");
        assert_eq!(obj["event"], "a");
        assert_eq!(obj["n"], 3);
        assert_eq!(obj["x"], 1.5);
        assert_eq!(obj["ok"], true);
        assert_eq!(obj["note"], "two \"words\"");
        assert_eq!(obj["id"], "007x");
    }

    #[test]
    fn names_the_problem() {
        assert!(parse_line("novalue").unwrap_err().contains("no '=value'"));
        assert!(
            parse_line("a=\"open")
                .unwrap_err()
                .contains("closing quote")
        );
        assert!(parse_line("=x").unwrap_err().contains("empty key"));
    }
}
