//! Waits (docs/DESIGN.md section 3, "Waits"): a step dependency. A workflow step
//! registers "unblock me when signals matching these conditions exist"; it is
//! answered exactly once, with the signal instances that satisfied it, or with a
//! timeout or a cancel.
//!
//! A wait document has the signal part of a subscription (`signal` + `where`, or
//! `signals` + `join`) plus `id` (the idempotency key: registering the same id
//! again returns the same wait, never a second one), `lookback` (which stored
//! signals count: `{since: RFC3339}`, `{within: 24h}`, or absent = anything
//! still stored), `timeout` (`1h`; absent = none) and `consumer` (who waits:
//! `{workflow, run, step}`). Unknown fields are rejected with their name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::firing::SignalRef;
use crate::signal::{json_kind, parse_rfc3339, validate_name};
use crate::subscription::{
    Join, SignalSpec, optional_str, parse_duration, parse_signals_and_join, required_str,
};

/// Top-level fields of a wait document.
pub const WAIT_FIELDS: &[&str] = &[
    "id",
    "signal",
    "where",
    "match_params",
    "signals",
    "join",
    "lookback",
    "timeout",
    "consumer",
];

/// A registered wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wait {
    /// The wait id (idempotency key).
    pub id: String,
    /// The signals it waits for.
    pub signals: Vec<SignalSpec>,
    /// How several signals are joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Join>,
    /// Which stored signals count.
    #[serde(default)]
    pub lookback: Lookback,
    /// How long to wait, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Who waits (workflow, run, step …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consumer: BTreeMap<String, String>,
}

/// Which stored signals a wait looks back at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookback {
    /// Anything still stored.
    #[default]
    All,
    /// Signals received at or after this time (milliseconds since the epoch).
    SinceMs(i64),
    /// Signals received within this many milliseconds before registration.
    WithinMs(u64),
    /// No lookback: only signals that arrive after registration.
    None,
}

/// Where a wait stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WaitState {
    /// Not answered yet.
    Waiting,
    /// Answered with these signal instances.
    Satisfied {
        /// When.
        at_ms: i64,
        /// The instances, in the wait's signal order.
        signals: Vec<SignalRef>,
    },
    /// The timeout passed first.
    TimedOut {
        /// When.
        at_ms: i64,
    },
    /// Cancelled by request.
    Cancelled {
        /// When.
        at_ms: i64,
    },
}

/// A wait with its registration time and state, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitRecord {
    /// The wait.
    pub wait: Wait,
    /// When it was registered.
    pub registered_at_ms: i64,
    /// When it times out, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    /// Its state.
    pub state: WaitState,
}

impl WaitRecord {
    /// True while the wait has not been answered.
    pub fn is_waiting(&self) -> bool {
        self.state == WaitState::Waiting
    }

    /// The oldest receive time a signal may have to count, per the lookback.
    pub fn lookback_floor_ms(&self) -> Option<i64> {
        match self.wait.lookback {
            Lookback::All => Some(i64::MIN),
            Lookback::SinceMs(t) => Some(t),
            Lookback::WithinMs(w) => Some(
                self.registered_at_ms
                    .saturating_sub(i64::try_from(w).unwrap_or(i64::MAX)),
            ),
            Lookback::None => None,
        }
    }
}

/// The id of the firing that answers wait `id` (one answer per wait, whatever it is).
pub fn answer_firing_id(id: &str) -> String {
    crate::firing::dedup_firing_id("@wait", id)
}

impl WaitRecord {
    /// The answer message of a settled wait, published to `<prefix>.<wait id>`:
    /// `params` holds `wait`, `state` and, per alias, the matched instance's
    /// params; `signals` the instances, each with its params and payload.
    pub fn answer(
        &self,
        subject_prefix: &str,
        matched: &[(&str, &crate::signal::SignalInstance)],
        now_ms: i64,
    ) -> crate::firing::Firing {
        let state = match &self.state {
            WaitState::Waiting => "waiting",
            WaitState::Satisfied { .. } => "satisfied",
            WaitState::TimedOut { .. } => "timed_out",
            WaitState::Cancelled { .. } => "cancelled",
        };
        let mut params = crate::value::Map::new();
        params.insert(
            "wait".into(),
            crate::value::Value::String(self.wait.id.clone()),
        );
        params.insert("state".into(), crate::value::Value::String(state.into()));
        for (alias, inst) in matched {
            params.insert(
                (*alias).to_string(),
                crate::value::Value::Object(inst.signal.params.clone()),
            );
        }
        // The consumed signals, each with its params and payload.
        let signals = match &self.state {
            WaitState::Satisfied { signals, .. } => signals
                .iter()
                .map(|r| {
                    matched
                        .iter()
                        .find(|(a, i)| *a == r.alias && i.seq == r.seq && i.signal.name == r.name)
                        .map_or_else(
                            || r.clone(),
                            |(a, i)| SignalRef::of(a, i, crate::subscription::Carry::Full),
                        )
                })
                .collect(),
            _ => Vec::new(),
        };
        crate::firing::Firing {
            firing_id: answer_firing_id(&self.wait.id),
            subscription: format!("@{}", self.wait.id),
            version: 0,
            action: crate::subscription::ActionKind::Publish,
            subject: format!("{subject_prefix}.{}", self.wait.id),
            params,
            signals,
            created_at_ms: now_ms,
            traceparent: matched.last().and_then(|(_, i)| {
                i.origin
                    .details
                    .get(crate::firing::Firing::TRACEPARENT)
                    .cloned()
            }),
        }
    }
}

impl Wait {
    /// Parses a wait from YAML or JSON.
    pub fn from_yaml(text: &str) -> Result<Wait, FieldError> {
        let json: serde_json::Value = serde_yaml::from_str(text)
            .map_err(|e| FieldError::new("", format!("not valid YAML or JSON: {e}")))?;
        Wait::from_json(&json)
    }

    /// Checks and converts a wait document.
    pub fn from_json(json: &serde_json::Value) -> Result<Wait, FieldError> {
        let obj = json.as_object().ok_or_else(|| {
            FieldError::new(
                "",
                format!("a wait is an object, found {}", json_kind(json)),
            )
        })?;
        if let Some(k) = obj.keys().find(|k| !WAIT_FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                k.clone(),
                format!(
                    "unknown wait field; known fields are {}",
                    WAIT_FIELDS.join(", ")
                ),
            ));
        }
        let id = required_str(obj, "id", "")?;
        validate_name(&id).map_err(|r| FieldError::new("id", r))?;
        let (signals, join) = parse_signals_and_join(obj, "wait")?;
        let lookback = match obj.get("lookback") {
            None | Some(serde_json::Value::Null) => Lookback::All,
            Some(serde_json::Value::String(s)) if s == "none" => Lookback::None,
            Some(serde_json::Value::String(s)) if s == "all" => Lookback::All,
            Some(serde_json::Value::Object(o)) if o.len() == 1 => {
                let (k, v) = o
                    .iter()
                    .next()
                    .ok_or_else(|| FieldError::new("lookback", "empty"))?;
                let text = v
                    .as_str()
                    .ok_or_else(|| FieldError::new(format!("lookback.{k}"), "expected a string"))?;
                match k.as_str() {
                    "since" => Lookback::SinceMs(
                        parse_rfc3339(text).map_err(|r| FieldError::new("lookback.since", r))?,
                    ),
                    "within" => Lookback::WithinMs(
                        parse_duration(text).map_err(|r| FieldError::new("lookback.within", r))?,
                    ),
                    other => {
                        return Err(FieldError::new(
                            format!("lookback.{other}"),
                            "unknown lookback; use since (RFC 3339) or within (a duration)",
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(FieldError::new(
                    "lookback",
                    "expected {since: RFC3339}, {within: 24h}, \"all\" or \"none\"",
                ));
            }
        };
        let timeout_ms = optional_str(obj, "timeout", "")?
            .map(|t| parse_duration(&t).map_err(|r| FieldError::new("timeout", r)))
            .transpose()?;
        let mut consumer = BTreeMap::new();
        match obj.get("consumer") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(c)) => {
                for (k, v) in c {
                    let s = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        other => {
                            return Err(FieldError::new(
                                format!("consumer.{k}"),
                                format!("expected a string, found {}", json_kind(other)),
                            ));
                        }
                    };
                    consumer.insert(k.clone(), s);
                }
            }
            Some(other) => {
                return Err(FieldError::new(
                    "consumer",
                    format!(
                        "expected {{workflow, run, step}}, found {}",
                        json_kind(other)
                    ),
                ));
            }
        }
        Ok(Wait {
            id,
            signals,
            join,
            lookback,
            timeout_ms,
            consumer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_step_dependency() {
        let w = Wait::from_yaml(
            "id: etl/8812/train\nsignal: table_updated\nwhere: {table: [prod.events]}\nlookback: {within: 24h}\ntimeout: 1h\nconsumer: {workflow: etl, run: 8812, step: train}",
        )
        .expect("valid");
        assert_eq!(w.lookback, Lookback::WithinMs(86_400_000));
        assert_eq!(w.timeout_ms, Some(3_600_000));
        assert_eq!(w.consumer.get("run").map(String::as_str), Some("8812"));
    }

    #[test]
    fn errors_name_the_field() {
        for (doc, field) in [
            ("id: a\nsignal: s\nlookback: {ago: 1h}", "lookback.ago"),
            ("id: a\nsignal: s\ntimeout: soon", "timeout"),
            (
                "id: a\nsignal: s\naction: {publish: {subject: x}}",
                "action",
            ),
            ("signal: s", "id"),
            ("id: a", "signal"),
        ] {
            let err = Wait::from_yaml(doc).expect_err(doc);
            assert_eq!(err.field, field, "{doc}: {err}");
        }
    }
}
