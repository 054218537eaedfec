//! The reply a producer gets for a signal sent as a request (docs/DESIGN.md section 2).
//!
//! Success: `{"seq": 42, "id": "...", "duplicate": false, "matched": ["sub-a"]}`.
//! Failure: `{"error": {"field": "params.x", "rule": "..."}}` (plus a `message`
//! for humans). For a duplicate, `seq` is the sequence number of the instance
//! stored the first time and `matched` is empty: nothing was processed again.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Acknowledgement of a stored (or duplicate) signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Signal name.
    pub name: String,
    /// Per-name sequence number of the stored instance.
    pub seq: u64,
    /// The signal id (the producer's, or the one assigned).
    pub id: String,
    /// True when `(name, id)` was already stored: nothing was processed again.
    pub duplicate: bool,
    /// Ids of the subscriptions this signal matched.
    pub matched: Vec<String>,
}

/// The error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What was wrong.
    pub error: ErrorBody,
}

/// Body of an error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `invalid` (bad input, do not retry) or `unavailable` (retry later).
    pub code: String,
    /// The field at fault, when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
    /// The rule broken or the failure.
    pub rule: String,
    /// `field: rule`, for humans.
    pub message: String,
}

impl ErrorReply {
    /// A reply for bad input.
    pub fn invalid(e: &FieldError) -> Self {
        ErrorReply {
            error: ErrorBody {
                code: "invalid".into(),
                field: e.field.clone(),
                rule: e.rule.clone(),
                message: e.to_string(),
            },
        }
    }

    /// A reply for a failure that is not the producer's fault.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let message = message.into();
        ErrorReply {
            error: ErrorBody {
                code: "unavailable".into(),
                field: String::new(),
                rule: message.clone(),
                message,
            },
        }
    }
}
