//! [`Pattern`]: a parsed, validated pattern over a signal's `params`, in the
//! EventBridge language or Maestro's `match_params` form.
//!
//! Invariants: a `Pattern` is immutable and cheap to clone (its tree is shared);
//! `Pattern::parse(&p.to_json(), ops)` gives back an equivalent pattern when
//! `ops` holds the custom operators `p` uses.

pub(crate) mod ast;
pub(crate) mod json;
mod maestro;
pub(crate) mod parse;

use std::sync::Arc;

use crate::error::PatternError;
use crate::operators::OperatorRegistry;

pub use parse::{MAX_DEPTH, MAX_FIELDS, MAX_VALUES};

/// A parsed, validated pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(crate) root: Arc<ast::Node>,
}

impl Pattern {
    /// Parses EventBridge pattern JSON over params, e.g.
    /// `{"table": ["prod.events"], "partition": [{"numeric": [">=", 1]}]}`.
    pub fn parse(
        json: &serde_json::Value,
        ops: &OperatorRegistry,
    ) -> Result<Pattern, PatternError> {
        let root = parse::Parser::new(ops).root(json)?;
        Ok(Pattern {
            root: Arc::new(root),
        })
    }

    /// Parses Maestro's form: `{"watermark": {"value": 12345, "operator": ">="}}`
    /// with operators `=`, `>`, `>=`, `<`, `<=` and `!=` (anything-but).
    pub fn from_match_params(json: &serde_json::Value) -> Result<Pattern, PatternError> {
        let translated = maestro::translate(json)?;
        Pattern::parse(&translated, &OperatorRegistry::default())
    }

    /// The canonical pattern JSON (keys sorted, dotted keys expanded).
    pub fn to_json(&self) -> serde_json::Value {
        json::node_to_json(&self.root)
    }

    /// Number of leaf conditions (fields with a condition list), `$or` branches included.
    pub fn condition_count(&self) -> usize {
        self.root.leaf_count()
    }

    /// Whether the pattern uses a custom operator anywhere.
    pub fn has_custom_operators(&self) -> bool {
        self.root.has_custom()
    }

    /// The names of the custom operators the pattern uses, sorted.
    pub fn custom_operators(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        self.root.collect_custom(&mut out);
        out
    }
}

impl PartialEq for Pattern {
    /// Patterns are equal when their canonical JSON is.
    fn eq(&self, other: &Pattern) -> bool {
        self.to_json() == other.to_json()
    }
}
