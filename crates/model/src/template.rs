//! Templates that read matched signals: `"{t.partition}"`, `"run-{t.payload.day}"`.
//!
//! A template is text with placeholders in braces; `{{` and `}}` are literal
//! braces. A placeholder is a dotted path: `alias.param.path`, `alias.payload.path`,
//! `alias.id`, `alias.seq`, `alias.name`; when a subscription has one signal the
//! alias may be left out (`{partition}`, `{payload.location}`). A template that is
//! exactly one placeholder keeps the value's type (an integer stays an integer);
//! any other renders to a string. A placeholder with no value renders as `null`
//! (or the empty string inside text), never as an error: a firing is not lost
//! because an optional param was absent.

use crate::signal::SignalInstance;
use crate::value::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Placeholder(Vec<String>),
}

/// One matched signal as a template sees it: its alias and its stored instance.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The alias (`as`) of the signal in the subscription.
    pub alias: &'a str,
    /// The matched instance.
    pub instance: &'a SignalInstance,
}

impl Template {
    /// Parses a template, or says which rule it breaks.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut buf = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    buf.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    buf.push('}');
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(format!("unclosed '{{' in template {text:?}"));
                    }
                    let path: Vec<String> = inner.trim().split('.').map(str::to_string).collect();
                    if path.iter().any(String::is_empty) {
                        return Err(format!(
                            "placeholder {{{inner}}} must be a dotted path like {{alias.param}}"
                        ));
                    }
                    if !buf.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut buf)));
                    }
                    parts.push(Part::Placeholder(path));
                }
                '}' => return Err(format!("unmatched '}}' in template {text:?}")),
                c => buf.push(c),
            }
        }
        if !buf.is_empty() {
            parts.push(Part::Text(buf));
        }
        Ok(Template { parts })
    }

    /// The aliases the template names (first path segment of each placeholder).
    pub fn placeholders(&self) -> impl Iterator<Item = &[String]> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder(path) => Some(path.as_slice()),
            Part::Text(_) => None,
        })
    }

    /// Renders the template against the matched signals.
    pub fn render(&self, bindings: &[Binding<'_>]) -> Value {
        if let [Part::Placeholder(path)] = self.parts.as_slice() {
            return lookup(path, bindings).unwrap_or(Value::Null);
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Placeholder(path) => {
                    if let Some(v) = lookup(path, bindings) {
                        out.push_str(&v.render());
                    }
                }
            }
        }
        Value::String(out)
    }
}

fn lookup(path: &[String], bindings: &[Binding<'_>]) -> Option<Value> {
    let (binding, rest) = match bindings.iter().find(|b| b.alias == path[0]) {
        Some(b) if path.len() > 1 => (b, &path[1..]),
        _ if bindings.len() == 1 => (&bindings[0], path),
        _ => return None,
    };
    let inst = binding.instance;
    match rest {
        [field] if field == "id" && !inst.signal.params.contains_key("id") => {
            Some(Value::String(inst.id.clone()))
        }
        [field] if field == "seq" && !inst.signal.params.contains_key("seq") => {
            Some(Value::Int(i64::try_from(inst.seq).unwrap_or(i64::MAX)))
        }
        [field] if field == "name" && !inst.signal.params.contains_key("name") => {
            Some(Value::String(inst.signal.name.clone()))
        }
        [first, tail @ ..] if first == "payload" => {
            let mut cur = inst.signal.payload.as_ref()?;
            for key in tail {
                cur = cur.get(key)?;
            }
            Value::from_json(cur, "payload").ok()
        }
        [first, tail @ ..] if first == "params" && !inst.signal.params.contains_key("params") => {
            walk(&inst.signal.params, tail)
        }
        _ => walk(&inst.signal.params, rest),
    }
}

fn walk(params: &crate::value::Map, path: &[String]) -> Option<Value> {
    let (first, tail) = path.split_first()?;
    let mut cur = params.get(first)?;
    for key in tail {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Origin, Signal};

    fn instance() -> SignalInstance {
        let signal = Signal::parse(
            br#"{"name":"t","id":"x1","params":{"partition":20261126,"owner":{"team":"data"}},
                 "payload":{"location":"s3://b/"}}"#,
            &crate::Limits::default(),
        )
        .expect("valid");
        SignalInstance {
            seq: 7,
            id: "x1".into(),
            received_at_ms: 0,
            signal,
            origin: Origin::default(),
        }
    }

    #[test]
    fn renders_typed_and_text() {
        let inst = instance();
        let b = [Binding {
            alias: "t",
            instance: &inst,
        }];
        let t = |s: &str| Template::parse(s).expect("parses").render(&b);
        assert_eq!(t("{t.partition}"), Value::Int(20261126));
        assert_eq!(t("{partition}"), Value::Int(20261126));
        assert_eq!(t("day-{t.partition}"), Value::String("day-20261126".into()));
        assert_eq!(t("{t.payload.location}"), Value::String("s3://b/".into()));
        assert_eq!(t("{t.owner.team}"), Value::String("data".into()));
        assert_eq!(t("{t.seq}"), Value::Int(7));
        assert_eq!(t("{t.missing}"), Value::Null);
        assert_eq!(t("{{literal}}"), Value::String("{literal}".into()));
    }

    #[test]
    fn rejects_malformed() {
        assert!(Template::parse("{open").is_err());
        assert!(Template::parse("close}").is_err());
        assert!(Template::parse("{a..b}").is_err());
    }
}
