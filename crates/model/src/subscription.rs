//! Subscriptions (docs/DESIGN.md section 3): which signals, which conditions, what to do on
//! a match. Read from YAML or JSON and checked field by field.
//!
//! Two spellings are accepted for the signals: the shorthand `signal: NAME` with a
//! top-level `where` (or `match_params`), and the list `signals: [{name, as, where}]`.
//! Both become [`Subscription::signals`]. A `where` pattern is kept as JSON here and
//! compiled by the matcher; this crate checks only its outer shape. The `version`
//! is assigned by the store (1 on creation, +1 on every change); a version given in
//! the file is ignored. Every error names the field (`signals[0].name`,
//! `action.publish.subject`) and the rule.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::signal::{json_kind, validate_name};
use crate::template::Template;

/// Top-level fields of a subscription document.
pub const SUBSCRIPTION_FIELDS: &[&str] = &[
    "id",
    "version",
    "description",
    "signal",
    "where",
    "match_params",
    "signals",
    "join",
    "action",
    "params",
    "dedup",
    "carry",
];

/// Fields of one entry of `signals`.
const SIGNAL_SPEC_FIELDS: &[&str] = &["name", "as", "where", "match_params"];

/// A subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Stable id, `[A-Za-z0-9_.:/-]`, 1–256 characters.
    pub id: String,
    /// Version, assigned by the store.
    #[serde(default)]
    pub version: u64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The signals it waits for (one, or several joined).
    pub signals: Vec<SignalSpec>,
    /// How several signals are joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Join>,
    /// What a match does.
    pub action: Action,
    /// Firing parameters: name → template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// At most one firing per rendered value of this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<String>,
    /// What the firing carries of each consumed signal (default: everything).
    #[serde(default, skip_serializing_if = "Carry::is_full")]
    pub carry: Carry,
}

/// What a firing carries of each signal it consumed, besides its alias,
/// name, id and seq (which it always carries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carry {
    /// Its params and its payload (the default).
    #[default]
    Full,
    /// Its params, not its payload.
    Params,
    /// Nothing more: only the reference (for large payloads).
    Refs,
}

impl Carry {
    /// True for the default, [`Carry::Full`].
    pub fn is_full(&self) -> bool {
        *self == Carry::Full
    }

    /// Parses the `carry` field.
    fn parse(v: Option<&serde_json::Value>) -> Result<Carry, FieldError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(Carry::Full),
            Some(serde_json::Value::String(s)) => match s.as_str() {
                "full" => Ok(Carry::Full),
                "params" => Ok(Carry::Params),
                "refs" => Ok(Carry::Refs),
                other => Err(FieldError::new(
                    "carry",
                    format!("{other:?} is not one of full, params, refs"),
                )),
            },
            Some(other) => Err(FieldError::new(
                "carry",
                format!(
                    "expected one of full, params, refs, found {}",
                    json_kind(other)
                ),
            )),
        }
    }
}

/// One signal a subscription waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalSpec {
    /// Signal name.
    pub name: String,
    /// Alias used by templates and joins (defaults to the name).
    #[serde(rename = "as")]
    pub alias: String,
    /// The pattern over params, EventBridge form (`{}` matches every signal).
    #[serde(rename = "where", default)]
    pub pattern: serde_json::Value,
    /// The pattern in Maestro's `match_params` form, when given that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_params: Option<serde_json::Value>,
}

/// Join of several signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Join {
    /// `alias.param` keys that must be equal across the signals.
    pub on: Vec<String>,
    /// How long a partial join waits, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<u64>,
}

/// What a match does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Publish (notify listeners) or trigger (start a run).
    pub kind: ActionKind,
    /// Target subject.
    pub subject: String,
}

/// The two kinds of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Publish/subscribe: notify listeners.
    Publish,
    /// Start a run.
    Trigger,
}

impl Subscription {
    /// Parses a subscription from YAML (JSON is valid YAML, so this takes both).
    pub fn from_yaml(text: &str) -> Result<Subscription, FieldError> {
        let json: serde_json::Value = serde_yaml::from_str(text)
            .map_err(|e| FieldError::new("", format!("not valid YAML or JSON: {e}")))?;
        Subscription::from_json(&json)
    }

    /// Parses a subscription from JSON text.
    pub fn from_json_str(text: &str) -> Result<Subscription, FieldError> {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
        Subscription::from_json(&json)
    }

    /// Checks and converts a subscription document.
    pub fn from_json(json: &serde_json::Value) -> Result<Subscription, FieldError> {
        let obj = json.as_object().ok_or_else(|| {
            FieldError::new(
                "",
                format!("a subscription is an object, found {}", json_kind(json)),
            )
        })?;
        if let Some(k) = obj
            .keys()
            .find(|k| !SUBSCRIPTION_FIELDS.contains(&k.as_str()))
        {
            return Err(FieldError::new(
                k.clone(),
                format!(
                    "unknown subscription field; known fields are {}",
                    SUBSCRIPTION_FIELDS.join(", ")
                ),
            ));
        }
        let id = required_str(obj, "id", "")?;
        validate_name(&id).map_err(|r| FieldError::new("id", r))?;
        let version = match obj.get("version") {
            None | Some(serde_json::Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| FieldError::new("version", "expected a positive integer"))?,
        };
        let description = optional_str(obj, "description", "")?;
        let (signals, join) = parse_signals_and_join(obj, "subscription")?;
        let action = parse_action(obj.get("action"))?;
        let mut params = BTreeMap::new();
        match obj.get("params") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    let path = format!("params.{k}");
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => v.to_string(),
                        other => {
                            return Err(FieldError::new(
                                path,
                                format!("expected a template string, found {}", json_kind(other)),
                            ));
                        }
                    };
                    check_template(&text, &signals, &path)?;
                    params.insert(k.clone(), text);
                }
            }
            Some(other) => {
                return Err(FieldError::new(
                    "params",
                    format!(
                        "expected an object of templates, found {}",
                        json_kind(other)
                    ),
                ));
            }
        }
        let dedup = optional_str(obj, "dedup", "")?;
        if let Some(d) = &dedup {
            check_template(d, &signals, "dedup")?;
        }
        let carry = Carry::parse(obj.get("carry"))?;
        Ok(Subscription {
            id,
            version,
            description,
            signals,
            join,
            action,
            params,
            dedup,
            carry,
        })
    }

    /// The subscription as a JSON document (the canonical stored form).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// True when the two differ only in `version`.
    pub fn same_content(&self, other: &Subscription) -> bool {
        let mut a = self.clone();
        a.version = other.version;
        &a == other
    }
}

impl Action {
    /// The document form, `{"publish": {"subject": …}}`.
    pub fn to_document(&self) -> serde_json::Value {
        let kind = match self.kind {
            ActionKind::Publish => "publish",
            ActionKind::Trigger => "trigger",
        };
        serde_json::json!({ kind: { "subject": self.subject } })
    }
}

/// The signal part shared by subscriptions and waits: `signal`/`where` or
/// `signals`, and `join` (required, and covering every alias, with several).
pub(crate) fn parse_signals_and_join(
    obj: &serde_json::Map<String, serde_json::Value>,
    what: &str,
) -> Result<(Vec<SignalSpec>, Option<Join>), FieldError> {
    let signals = parse_signals(obj)?;
    let join = match obj.get("join") {
        None | Some(serde_json::Value::Null) => None,
        Some(j) => Some(parse_join(j, &signals)?),
    };
    if let Some(j) = &join {
        check_join_covers(j, &signals)?;
    }
    if signals.len() > 1 && join.is_none() {
        return Err(FieldError::new(
            "join",
            format!("required when a {what} names several signals (join.on lists the keys)"),
        ));
    }
    Ok((signals, join))
}

/// Every alias must appear in `join.on` the same number of times: the `k`-th
/// field of each alias is compared with the `k`-th field of every other alias.
fn check_join_covers(join: &Join, signals: &[SignalSpec]) -> Result<(), FieldError> {
    let counts: Vec<(&str, usize)> = signals
        .iter()
        .map(|s| (s.alias.as_str(), join.paths_for(&s.alias).count()))
        .collect();
    let first = counts.first().map_or(0, |c| c.1);
    if let Some((alias, n)) = counts.iter().find(|(_, n)| *n != first || *n == 0) {
        return Err(FieldError::new(
            "join.on",
            format!(
                "every signal must appear in join.on the same number of times (the k-th key of each alias is compared); {alias} appears {n} times, {} appears {first}",
                counts[0].0
            ),
        ));
    }
    Ok(())
}

impl Join {
    /// The param paths `alias` contributes to the join key, in `on` order.
    pub fn paths_for<'a>(&'a self, alias: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.on.iter().filter_map(move |k| {
            k.split_once('.')
                .filter(|(a, _)| *a == alias)
                .map(|(_, path)| path)
        })
    }

    /// The canonical join key of an instance of `alias`: its `on` values in
    /// order, as JSON, with integral floats written as integers (so `5` and
    /// `5.0` join). `None` when a key param is missing or not a scalar.
    pub fn key_for(&self, alias: &str, params: &crate::value::Map) -> Option<String> {
        let mut parts = Vec::new();
        for path in self.paths_for(alias) {
            let mut segments = path.split('.');
            let first = segments.next()?;
            let mut cur = params.get(first)?;
            for seg in segments {
                cur = cur.as_object()?.get(seg)?;
            }
            let canonical = match cur {
                crate::value::Value::Float(f)
                    if f.fract() == 0.0 && (-9.0e15..=9.0e15).contains(f) =>
                {
                    serde_json::Value::from(*f as i64)
                }
                crate::value::Value::Array(_) | crate::value::Value::Object(_) => return None,
                other => other.to_json(),
            };
            parts.push(canonical);
        }
        serde_json::to_string(&parts).ok()
    }
}

fn parse_signals(
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<SignalSpec>, FieldError> {
    match (obj.get("signal"), obj.get("signals")) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "signals",
            "give either `signal` (one signal) or `signals` (a list), not both",
        )),
        (Some(name), None) => {
            let name = name.as_str().ok_or_else(|| {
                FieldError::new(
                    "signal",
                    format!("expected a signal name, found {}", json_kind(name)),
                )
            })?;
            validate_name(name).map_err(|r| FieldError::new("signal", r))?;
            let (pattern, match_params) = parse_pattern_fields(obj, "")?;
            Ok(vec![SignalSpec {
                name: name.to_string(),
                alias: name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                pattern,
                match_params,
            }])
        }
        (None, Some(serde_json::Value::Array(list))) => {
            if obj.contains_key("where") || obj.contains_key("match_params") {
                return Err(FieldError::new(
                    "where",
                    "with a `signals` list, put `where` inside each entry",
                ));
            }
            if list.is_empty() {
                return Err(FieldError::new("signals", "must name at least one signal"));
            }
            let mut specs = Vec::with_capacity(list.len());
            for (i, entry) in list.iter().enumerate() {
                let path = format!("signals[{i}]");
                let e = entry.as_object().ok_or_else(|| {
                    FieldError::new(
                        &path,
                        format!("expected an object, found {}", json_kind(entry)),
                    )
                })?;
                if let Some(k) = e.keys().find(|k| !SIGNAL_SPEC_FIELDS.contains(&k.as_str())) {
                    return Err(FieldError::new(
                        format!("{path}.{k}"),
                        format!(
                            "unknown field; known fields are {}",
                            SIGNAL_SPEC_FIELDS.join(", ")
                        ),
                    ));
                }
                let name = required_str(e, "name", &path)?;
                validate_name(&name).map_err(|r| FieldError::new(format!("{path}.name"), r))?;
                let alias = optional_str(e, "as", &path)?
                    .unwrap_or_else(|| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
                if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(FieldError::new(
                        format!("{path}.as"),
                        "must be a non-empty word of A-Z a-z 0-9 _ (it is used in templates and join keys)",
                    ));
                }
                if specs.iter().any(|s: &SignalSpec| s.alias == alias) {
                    return Err(FieldError::new(
                        format!("{path}.as"),
                        format!("alias {alias:?} is used twice; give each signal its own `as`"),
                    ));
                }
                let (pattern, match_params) = parse_pattern_fields(e, &path)?;
                specs.push(SignalSpec {
                    name,
                    alias,
                    pattern,
                    match_params,
                });
            }
            Ok(specs)
        }
        (None, Some(other)) => Err(FieldError::new(
            "signals",
            format!("expected a list, found {}", json_kind(other)),
        )),
        (None, None) => Err(FieldError::new(
            "signal",
            "required: name the signal (`signal: NAME`) or list them (`signals: [...]`)",
        )),
    }
}

fn parse_pattern_fields(
    obj: &serde_json::Map<String, serde_json::Value>,
    parent: &str,
) -> Result<(serde_json::Value, Option<serde_json::Value>), FieldError> {
    let path = |f: &str| {
        if parent.is_empty() {
            f.to_string()
        } else {
            format!("{parent}.{f}")
        }
    };
    let pattern = match obj.get("where") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(p @ serde_json::Value::Object(_)) => p.clone(),
        Some(other) => {
            return Err(FieldError::new(
                path("where"),
                format!("expected a pattern object, found {}", json_kind(other)),
            ));
        }
    };
    let match_params = match obj.get("match_params") {
        None | Some(serde_json::Value::Null) => None,
        Some(p @ serde_json::Value::Object(_)) => Some(p.clone()),
        Some(other) => {
            return Err(FieldError::new(
                path("match_params"),
                format!("expected an object, found {}", json_kind(other)),
            ));
        }
    };
    Ok((pattern, match_params))
}

fn parse_join(j: &serde_json::Value, signals: &[SignalSpec]) -> Result<Join, FieldError> {
    let obj = j.as_object().ok_or_else(|| {
        FieldError::new(
            "join",
            format!("expected an object, found {}", json_kind(j)),
        )
    })?;
    if let Some(k) = obj.keys().find(|k| *k != "on" && *k != "within") {
        return Err(FieldError::new(
            format!("join.{k}"),
            "unknown field; known fields are on, within",
        ));
    }
    let on = match obj.get("on") {
        Some(serde_json::Value::Array(keys)) if !keys.is_empty() => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let path = format!("join.on[{i}]");
                let key = k
                    .as_str()
                    .ok_or_else(|| FieldError::new(&path, "expected `alias.param`"))?;
                let alias = key.split('.').next().unwrap_or_default();
                if !key.contains('.') || !signals.iter().any(|s| s.alias == alias) {
                    return Err(FieldError::new(
                        &path,
                        format!("{key:?} must be `alias.param` with an alias from `signals[].as`"),
                    ));
                }
                Ok(key.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(FieldError::new(
                "join.on",
                "required: a non-empty list of `alias.param` keys",
            ));
        }
    };
    let within_ms = match obj.get("within") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            Some(parse_duration(s).map_err(|r| FieldError::new("join.within", r))?)
        }
        Some(serde_json::Value::Number(n)) => {
            Some(n.as_u64().map(|secs| secs * 1000).ok_or_else(|| {
                FieldError::new("join.within", "expected seconds or a duration like 24h")
            })?)
        }
        Some(other) => {
            return Err(FieldError::new(
                "join.within",
                format!("expected a duration like 24h, found {}", json_kind(other)),
            ));
        }
    };
    Ok(Join { on, within_ms })
}

/// Parses a human duration (`24h`, `90s`, `1h 30m`) into milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    humantime::parse_duration(s)
        .map(|d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .map_err(|e| format!("expected a duration like 24h or 90s ({e})"))
}

fn parse_action(a: Option<&serde_json::Value>) -> Result<Action, FieldError> {
    let Some(a) = a else {
        return Err(FieldError::new(
            "action",
            "required: {publish: {subject: ...}} or {trigger: {subject: ...}}",
        ));
    };
    let obj = a.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        FieldError::new(
            "action",
            "expected exactly one of {publish: {subject: ...}} or {trigger: {subject: ...}}",
        )
    })?;
    let (key, body) = obj
        .iter()
        .next()
        .ok_or_else(|| FieldError::new("action", "empty"))?;
    let kind = match key.as_str() {
        "publish" => ActionKind::Publish,
        "trigger" => ActionKind::Trigger,
        other => {
            return Err(FieldError::new(
                format!("action.{other}"),
                "unknown action; use publish or trigger",
            ));
        }
    };
    let path = format!("action.{key}");
    let body = body
        .as_object()
        .ok_or_else(|| FieldError::new(&path, "expected {subject: ...}"))?;
    if let Some(k) = body.keys().find(|k| *k != "subject") {
        return Err(FieldError::new(
            format!("{path}.{k}"),
            "unknown field; known fields are subject",
        ));
    }
    let subject = required_str(body, "subject", &path)?;
    validate_subject(&subject).map_err(|r| FieldError::new(format!("{path}.subject"), r))?;
    Ok(Action { kind, subject })
}

/// Checks a NATS subject to publish to: non-empty tokens separated by `.`, no
/// whitespace, no wildcards.
pub fn validate_subject(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    if s.split('.').any(|t| t.is_empty()) {
        return Err("has an empty token (leading, trailing or double '.')".into());
    }
    if s.split('.').any(|t| t == "*" || t == ">") {
        return Err("must not contain wildcards (* or >): a firing goes to one subject".into());
    }
    Ok(())
}

fn check_template(text: &str, signals: &[SignalSpec], path: &str) -> Result<(), FieldError> {
    let t = Template::parse(text).map_err(|r| FieldError::new(path, r))?;
    if signals.len() > 1 {
        for p in t.placeholders() {
            if p.len() < 2 || !signals.iter().any(|s| s.alias == p[0]) {
                return Err(FieldError::new(
                    path,
                    format!(
                        "placeholder {{{}}} must start with an alias from `signals[].as`",
                        p.join(".")
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn required_str(
    obj: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    parent: &str,
) -> Result<String, FieldError> {
    optional_str(obj, field, parent)?
        .ok_or_else(|| FieldError::new(join(parent, field), "required"))
}

pub(crate) fn optional_str(
    obj: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    parent: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(FieldError::new(
            join(parent, field),
            format!("expected a string, found {}", json_kind(other)),
        )),
    }
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shorthand_yaml() {
        let s = Subscription::from_yaml(
            "id: big-tables\nsignal: table_updated\nwhere:\n  table: [prod.events]\n  rows: [{numeric: ['>', 1000]}]\naction: {publish: {subject: matches.big}}\nparams: {table: '{table}'}\n",
        )
        .expect("valid");
        assert_eq!(s.signals.len(), 1);
        assert_eq!(s.signals[0].alias, "table_updated");
        assert_eq!(s.action.kind, ActionKind::Publish);
        assert_eq!(s.action.subject, "matches.big");
        assert_eq!(s.params.get("table").map(String::as_str), Some("{table}"));
    }

    #[test]
    fn parses_the_design_join_example() {
        let s = Subscription::from_yaml(
            r#"
id: ml-training-daily
signals:
  - name: table_updated
    as: t
    where: {table: ["prod.events"]}
  - name: model_published
    as: m
    where: {model: ["ranker"]}
join: {on: [t.partition, m.date], within: 24h}
action: {trigger: {subject: runs.ml-training}}
params: {date: "{t.partition}", location: "{t.payload.location}"}
dedup: "{t.partition}"
"#,
        )
        .expect("valid");
        assert_eq!(s.signals.len(), 2);
        assert_eq!(s.join.as_ref().and_then(|j| j.within_ms), Some(86_400_000));
        assert_eq!(s.action.kind, ActionKind::Trigger);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "id: a\nsignal: s\naction: {publish: {subject: x}}\nfoo: 1",
                "foo",
                "unknown subscription field",
            ),
            (
                "signal: s\naction: {publish: {subject: x}}",
                "id",
                "required",
            ),
            (
                "id: a\naction: {publish: {subject: x}}",
                "signal",
                "required",
            ),
            ("id: a\nsignal: s", "action", "required"),
            (
                "id: a\nsignal: s\naction: {send: {subject: x}}",
                "action.send",
                "unknown action",
            ),
            (
                "id: a\nsignal: s\naction: {publish: {subject: 'a.*'}}",
                "action.publish.subject",
                "wildcards",
            ),
            (
                "id: a\nsignal: s\nwhere: [1]\naction: {publish: {subject: x}}",
                "where",
                "pattern object",
            ),
            (
                "id: a\nsignal: s\naction: {publish: {subject: x}}\nparams: {p: '{open'}",
                "params.p",
                "unclosed",
            ),
            (
                "id: a\nsignals: [{name: s}, {name: t}]\naction: {publish: {subject: x}}",
                "join",
                "required",
            ),
            ("{{{", "", "not valid YAML"),
        ];
        for (doc, field, rule) in cases {
            let err = Subscription::from_yaml(doc).expect_err(doc);
            assert_eq!(err.field, field, "{doc}: {err}");
            assert!(err.rule.contains(rule), "{doc}: {err}");
        }
    }

    #[test]
    fn join_keys_are_canonical() {
        let s = Subscription::from_yaml(
            "id: j\nsignals: [{name: a, as: t}, {name: b, as: m}]\njoin: {on: [t.day, m.date]}\naction: {publish: {subject: x}}",
        )
        .expect("valid");
        let join = s.join.expect("join");
        let mut p = crate::value::Map::new();
        p.insert("day".into(), crate::value::Value::Int(5));
        let mut q = crate::value::Map::new();
        q.insert("date".into(), crate::value::Value::Float(5.0));
        assert_eq!(join.key_for("t", &p), join.key_for("m", &q));
        assert_eq!(join.key_for("t", &p).as_deref(), Some("[5]"));
        assert_eq!(join.key_for("m", &p), None, "missing key param");
        let err = Subscription::from_yaml(
            "id: j\nsignals: [{name: a, as: t}, {name: b, as: m}]\njoin: {on: [t.day, t.hour, m.date]}\naction: {publish: {subject: x}}",
        )
        .expect_err("uneven");
        assert_eq!(err.field, "join.on");
    }

    #[test]
    fn round_trips_through_json() {
        let s = Subscription::from_yaml(
            "id: a\nsignal: s\nwhere: {x: [1]}\naction: {trigger: {subject: runs.a}}",
        )
        .expect("valid");
        let back: Subscription = serde_json::from_value(s.to_json()).expect("round trip");
        assert_eq!(s, back);
    }
}
