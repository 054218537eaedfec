//! The `{{name}}` operator: matches a string that contains the argument.
//!
//! In a subscription pattern: `{"{{name}}": "prod"}` matches the values
//! `"prod"`, `"eu-prod-1"`, … Argument: a JSON string (an error otherwise,
//! shown to whoever creates the subscription). Value: a string; any other value
//! does not match.
//!
//! `prepare` runs once per argument (compile whatever is expensive there: a
//! regex, a range, a polygon); `test` runs once per value and must be quick (the
//! host stops a call after 5 ms by default).

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};

// Generates the bindings of the world from the WIT package in `wit/`.
wit_bindgen::generate!({ world: "operator", path: "wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "{{name}}".into(),
            argument_shape: "a string; the value matches when it is a string containing it".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = Contains;
}

/// A prepared condition: the text to look for.
struct Contains {
    needle: String,
}

impl GuestCondition for Contains {
    fn prepare(argument: String) -> Result<Condition, String> {
        // The argument arrives as JSON text: `"prod"` with its quotes.
        match serde_json::from_str::<serde_json::Value>(&argument) {
            Ok(serde_json::Value::String(needle)) => Ok(Condition::new(Contains { needle })),
            Ok(other) => Err(format!("the argument must be a string, not {other}")),
            Err(e) => Err(format!("the argument is not JSON: {e}")),
        }
    }

    fn test(&self, value: Value) -> Result<bool, String> {
        match value {
            Value::Text(text) => Ok(text.contains(&self.needle)),
            // Numbers, booleans, null, arrays and objects never match.
            _ => Ok(false),
        }
    }
}

export!(Plugin);
