//! The parsed form of a pattern: a tree of object nodes whose fields are either
//! leaf condition lists (alternatives, ORed) or nested nodes, plus an optional
//! `$or` group per node.
//!
//! Invariants (established by the parser, relied on by the evaluator and the
//! engine): dotted keys are already expanded into nested nodes; a leaf has at
//! least one alternative; `exists` is alone in its alternative; in each
//! alternative custom conditions come after built-in ones; a node's `order`
//! lists every field and its `$or` group exactly once, cheapest first and
//! anything with a custom operator last; an `$or` group has at least two
//! branches.

use std::sync::Arc;

use crate::cidr::Cidr;
use crate::numeric::{Num, NumericCond};
use crate::operators::PreparedOperator;
use crate::wildcard::Wildcard;

/// An object-level pattern: fields ANDed, plus an optional `$or` group.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Fields in the order they were written.
    pub(crate) fields: Vec<Field>,
    /// The `$or` group, if any.
    pub(crate) or: Option<Vec<Node>>,
    /// Evaluation order.
    pub(crate) order: Vec<Step>,
}

/// One item of a node's evaluation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `fields[i]`.
    Field(usize),
    /// The `$or` group.
    Or,
}

/// A named field of a node.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The key (one path segment).
    pub(crate) name: String,
    /// Conditions on it, or a nested node.
    pub(crate) body: FieldBody,
}

/// What a field holds.
#[derive(Debug, Clone)]
pub(crate) enum FieldBody {
    /// A list of alternatives on the field's leaf values.
    Leaf(Vec<Alt>),
    /// A nested object pattern.
    Nested(Node),
}

/// One alternative of a leaf: conditions ANDed on the same leaf value.
#[derive(Debug, Clone)]
pub(crate) struct Alt {
    /// The conditions (built-in first, custom last).
    pub(crate) conds: Vec<Cond>,
}

/// A literal value in a pattern.
#[derive(Debug, Clone)]
pub(crate) enum Lit {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (compared by value).
    Num(Num),
    /// A string.
    Str(String),
}

/// `prefix` / `suffix` argument.
#[derive(Debug, Clone)]
pub(crate) struct Affix {
    /// As written.
    pub(crate) text: String,
    /// `{"equals-ignore-case": ...}` form.
    pub(crate) ignore_case: bool,
    /// The case-folded text when `ignore_case`, else the text.
    pub(crate) key: String,
}

/// The forms of `anything-but`.
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    /// Single value or list (`"x"`, `[1, 2]`).
    Values(Vec<Lit>),
    /// `{"prefix": "x"}`.
    Prefix(String),
    /// `{"suffix": "x"}`.
    Suffix(String),
    /// `{"equals-ignore-case": "x" | [...]}`: (as written, folded).
    EqualsIgnoreCase(Vec<(String, String)>),
    /// `{"wildcard": "x*" | [...]}`.
    Wildcard(Vec<Wildcard>),
}

/// A custom operator condition.
#[derive(Debug, Clone)]
pub(crate) struct CustomCond {
    /// Operator name.
    pub(crate) name: String,
    /// The argument as written.
    pub(crate) arg: serde_json::Value,
    /// The prepared operator.
    pub(crate) prepared: Arc<dyn PreparedOperator>,
}

/// One condition on a leaf value.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// An exact literal.
    Exact(Lit),
    /// `prefix`.
    Prefix(Affix),
    /// `suffix`.
    Suffix(Affix),
    /// `equals-ignore-case`: (as written, folded).
    EqualsIgnoreCase(String, String),
    /// `wildcard`.
    Wildcard(Wildcard),
    /// `anything-but`.
    AnythingBut(AnythingBut),
    /// `numeric`.
    Numeric(NumericCond),
    /// `exists` (always alone in its alternative).
    Exists(bool),
    /// `cidr`.
    Cidr(Cidr),
    /// A custom operator.
    Custom(CustomCond),
}

impl Cond {
    /// Whether this is a custom operator condition.
    pub(crate) fn is_custom(&self) -> bool {
        matches!(self, Cond::Custom(_))
    }
}

impl Node {
    /// Whether any condition below this node is a custom operator.
    pub(crate) fn has_custom(&self) -> bool {
        self.fields.iter().any(Field::has_custom)
            || self
                .or
                .as_ref()
                .is_some_and(|b| b.iter().any(Node::has_custom))
    }

    /// Adds the names of the custom operators below this node to `out`.
    pub(crate) fn collect_custom(&self, out: &mut std::collections::BTreeSet<String>) {
        for f in &self.fields {
            f.collect_custom(out);
        }
        for branch in self.or.iter().flatten() {
            branch.collect_custom(out);
        }
    }

    /// Number of leaf fields below this node (a measure of conditions).
    pub(crate) fn leaf_count(&self) -> usize {
        self.fields
            .iter()
            .map(|f| match &f.body {
                FieldBody::Leaf(_) => 1,
                FieldBody::Nested(n) => n.leaf_count(),
            })
            .sum::<usize>()
            + self
                .or
                .as_ref()
                .map_or(0, |b| b.iter().map(Node::leaf_count).sum())
    }

    /// Computes `order`: plain fields, nested fields, the `$or` group, then
    /// anything holding a custom operator (in that same order).
    pub(crate) fn compute_order(&mut self) {
        let rank = |has_custom: bool, base: u8| if has_custom { 10 + base } else { base };
        let mut steps: Vec<(u8, Step)> = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let base = if matches!(f.body, FieldBody::Leaf(_)) {
                    0
                } else {
                    1
                };
                (rank(f.has_custom(), base), Step::Field(i))
            })
            .collect();
        if let Some(branches) = &self.or {
            steps.push((rank(branches.iter().any(Node::has_custom), 2), Step::Or));
        }
        steps.sort_by_key(|(r, _)| *r);
        self.order = steps.into_iter().map(|(_, s)| s).collect();
    }
}

impl Field {
    /// Whether any condition in this field is a custom operator.
    pub(crate) fn has_custom(&self) -> bool {
        match &self.body {
            FieldBody::Leaf(alts) => alts.iter().any(|a| a.conds.iter().any(Cond::is_custom)),
            FieldBody::Nested(n) => n.has_custom(),
        }
    }

    /// Adds the names of the custom operators in this field to `out`.
    pub(crate) fn collect_custom(&self, out: &mut std::collections::BTreeSet<String>) {
        match &self.body {
            FieldBody::Leaf(alts) => {
                for cond in alts.iter().flat_map(|a| &a.conds) {
                    if let Cond::Custom(c) = cond {
                        out.insert(c.name.clone());
                    }
                }
            }
            FieldBody::Nested(n) => n.collect_custom(out),
        }
    }
}
