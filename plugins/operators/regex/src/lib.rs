//! The `regex` operator: matches a string against an anchored regular expression.
//!
//! Argument: a JSON string holding a pattern in Rust `regex` syntax (no
//! look-around, no back-references: matching is linear time). The pattern is
//! anchored at both ends (`"v[0-9]+"` matches `"v12"`, not `"av12"`) and compiled
//! once, when the condition is prepared; its compiled size is capped at 1 MiB.
//! Value: a string; any other value does not match.

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};
use regex::{Regex, RegexBuilder};

wit_bindgen::generate!({ world: "operator", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "regex".into(),
            argument_shape: "a regular expression string, anchored at both ends, e.g. \"v[0-9]+\\\\.[0-9]+\"; the value is a string".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = Pattern;
}

/// A compiled, anchored pattern.
struct Pattern {
    regex: Regex,
}

impl GuestCondition for Pattern {
    fn prepare(argument: String) -> Result<Condition, String> {
        let arg: serde_json::Value = serde_json::from_str(&argument)
            .map_err(|e| format!("the argument is not JSON: {e}"))?;
        let serde_json::Value::String(pattern) = arg else {
            return Err("the argument must be a regular expression string".into());
        };
        let regex = RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("not a valid regular expression: {e}"))?;
        Ok(Condition::new(Pattern { regex }))
    }

    fn test(&self, value: Value) -> Result<bool, String> {
        match value {
            Value::Text(text) => Ok(self.regex.is_match(&text)),
            _ => Ok(false),
        }
    }
}

export!(Plugin);
