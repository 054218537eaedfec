//! The error a pattern is rejected with: where (the path inside the pattern, e.g.
//! `partition[0].numeric`) and what is wrong.
//!
//! Invariant: `path` is never empty; the pattern's root is called `(pattern)`.

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct PatternError {
    /// Where in the pattern: `field.sub[2].numeric`, `$or[1].field`, or `(pattern)`.
    pub path: String,
    /// What is wrong there.
    pub problem: String,
}

impl PatternError {
    /// A new error at `path` (the root when empty).
    pub(crate) fn new(path: &str, problem: impl Into<String>) -> PatternError {
        PatternError {
            path: if path.is_empty() {
                "(pattern)".to_string()
            } else {
                path.to_string()
            },
            problem: problem.into(),
        }
    }
}
