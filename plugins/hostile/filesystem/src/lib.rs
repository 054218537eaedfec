//! A hostile operator that reads a file: it imports `wasi:filesystem`, which
//! the host does not link, so loading it must fail with an error naming the
//! import.

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};

wit_bindgen::generate!({ world: "operator", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "filesystem".into(),
            argument_shape: "a path".into(),
            version: "0".into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = ReadFile;
}

/// Reads the file named by the argument.
struct ReadFile(String);

impl GuestCondition for ReadFile {
    fn prepare(argument: String) -> Result<Condition, String> {
        Ok(Condition::new(ReadFile(argument)))
    }

    fn test(&self, _value: Value) -> Result<bool, String> {
        std::fs::read(&self.0)
            .map(|b| !b.is_empty())
            .map_err(|e| e.to_string())
    }
}

export!(Plugin);
