//! Operators: the names of the built-in ones and the extension point for custom
//! ones (a native implementation here; Wasm plugins in the plugin crate).
//!
//! A custom operator appears in a pattern as `{"<name>": <argument>}`. Its
//! argument is prepared once when the pattern is parsed ([`CustomOperator::prepare`]),
//! and the prepared form tests one leaf value at a time. Invariants: a custom
//! operator is only tested after every built-in condition at the same level of its
//! pattern passed (and after the engine's index selected the pattern); an error
//! from `test` counts as "does not match" and is shown by `explain`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use signalbox_model::Value;

/// The built-in operator names, sorted.
pub const BUILTIN_OPERATORS: [&str; 8] = [
    "anything-but",
    "cidr",
    "equals-ignore-case",
    "exists",
    "numeric",
    "prefix",
    "suffix",
    "wildcard",
];

/// A custom operator: a name and a way to prepare its argument.
pub trait CustomOperator: Send + Sync {
    /// The name used in patterns (`{"semver": ">=2.1.0"}` → `semver`).
    fn name(&self) -> &str;
    /// Compiles the argument once per condition; an error rejects the pattern.
    fn prepare(&self, arg: &serde_json::Value) -> Result<Box<dyn PreparedOperator>, String>;
}

/// A custom operator with its argument prepared: tests one leaf value.
pub trait PreparedOperator: Send + Sync + Debug {
    /// Whether `value` satisfies the condition; an error counts as no match.
    fn test(&self, value: &Value) -> Result<bool, String>;
}

/// The custom operators a pattern may use. `Default` has none.
#[derive(Clone, Default)]
pub struct OperatorRegistry {
    custom: BTreeMap<String, Arc<dyn CustomOperator>>,
}

impl Debug for OperatorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRegistry")
            .field("custom", &self.custom.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OperatorRegistry {
    /// An empty registry (built-in operators only).
    pub fn new() -> OperatorRegistry {
        OperatorRegistry::default()
    }

    /// Registers (or replaces) a custom operator under its name. A name that
    /// is a built-in operator is rejected.
    pub fn register(&mut self, op: Arc<dyn CustomOperator>) -> Result<(), String> {
        let name = op.name().to_string();
        if BUILTIN_OPERATORS.contains(&name.as_str()) {
            return Err(format!(
                "\"{name}\" is a built-in operator and cannot be replaced"
            ));
        }
        if name.is_empty() || name.starts_with('$') {
            return Err(format!("\"{name}\" is not a valid operator name"));
        }
        self.custom.insert(name, op);
        Ok(())
    }

    /// Removes a custom operator; patterns already parsed keep their prepared form.
    pub fn unregister(&mut self, name: &str) -> bool {
        self.custom.remove(name).is_some()
    }

    /// The custom operator with that name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn CustomOperator>> {
        self.custom.get(name)
    }

    /// Every operator name a pattern may use: built-in and custom, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut all: Vec<String> = BUILTIN_OPERATORS.iter().map(|s| s.to_string()).collect();
        all.extend(self.custom.keys().cloned());
        all.sort();
        all
    }

    /// Whether `name` is a known operator (built-in or custom).
    pub fn is_operator(&self, name: &str) -> bool {
        BUILTIN_OPERATORS.contains(&name) || self.custom.contains_key(name)
    }
}
