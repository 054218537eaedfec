//! Size limits applied to every incoming signal before anything else looks at it.
//!
//! The limits are configuration (the router reads them from its config file), with
//! the defaults of the design: a message of at most 1 MiB, at most 256 fields in
//! `params` (counted recursively: every key of every nested object, and every
//! array element), and a nesting depth of at most 16.

use serde::{Deserialize, Serialize};

/// Limits on one signal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Most fields in `params`, counted over all nesting levels.
    pub max_params_fields: usize,
    /// Deepest nesting inside `params` (a flat object has depth 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1024 * 1024,
            max_params_fields: 256,
            max_depth: 16,
        }
    }
}
