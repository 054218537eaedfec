//! The one error shape for rejected input: which field, which rule.
//!
//! Every rejection of a signal or a subscription carries the dotted path of the
//! field at fault (`params.partition`, `name`, `action.publish.subject`) and the
//! rule it broke, in words a producer can act on. The wire form of the error reply
//! (docs/DESIGN.md section 2) is this struct serialized under `{"error": …}`.

use serde::{Deserialize, Serialize};

/// A field that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    /// Dotted path of the offending field; empty for the message as a whole.
    pub field: String,
    /// The rule that was broken, e.g. `expected a JSON object`.
    pub rule: String,
}

impl FieldError {
    /// A new error for `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl From<crate::ValueError> for FieldError {
    fn from(e: crate::ValueError) -> Self {
        FieldError::new(e.path, e.rule)
    }
}
