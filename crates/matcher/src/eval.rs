//! Evaluation of one parsed pattern against one signal's params: the semantics
//! of the language, in one place.
//!
//! Semantics (EventBridge's, with the documented extensions):
//! - a node's fields and its `$or` group are ANDed; `$or` branches are ORed;
//! - a leaf's alternatives are ORed; the conditions inside one alternative are
//!   ANDed and must hold for the **same** leaf value;
//! - the leaf values of a field are the field's scalar value (null included), or
//!   the scalars of an array, flattening nested arrays; objects are not leaves;
//! - `exists: true` holds when the field has at least one leaf value,
//!   `exists: false` when it has none (missing, an object, an empty array);
//! - a nested node matched against an array holds if it holds for one element
//!   (array consistency: all its conditions are met inside that element); an
//!   array without object elements, a scalar, or a missing field is matched as an
//!   absent object (so only `exists: false` style conditions can hold).
//!
//! Invariant: evaluation never panics and runs in time linear in the size of the
//! params times the size of the pattern; `steps` counts the work done (one per
//! condition test and per node visit), for linearity tests.

use signalbox_model::{Map, Value};

use crate::casefold::with_folded;
use crate::numeric::Num;
use crate::pattern::ast::{Alt, AnythingBut, Cond, FieldBody, Lit, Node, Step};

/// Whether `node` matches the object `m` (`None`: absent).
pub(crate) fn node_on_map(node: &Node, m: Option<&Map>, steps: &mut u64) -> bool {
    *steps += 1;
    node.order.iter().all(|step| match step {
        Step::Field(i) => {
            let f = &node.fields[*i];
            let v = m.and_then(|m| m.get(&f.name));
            match &f.body {
                FieldBody::Leaf(alts) => leaf_matches(alts, v, steps),
                FieldBody::Nested(child) => node_on_value(child, v, steps),
            }
        }
        Step::Or => node
            .or
            .as_ref()
            .is_some_and(|branches| branches.iter().any(|b| node_on_map(b, m, steps))),
    })
}

/// Whether `node` matches the value of a field (object, array of objects, or absent).
pub(crate) fn node_on_value(node: &Node, v: Option<&Value>, steps: &mut u64) -> bool {
    match v {
        Some(Value::Object(m)) => node_on_map(node, Some(m), steps),
        Some(Value::Array(items)) => {
            if has_structure(items) {
                items.iter().any(|it| {
                    matches!(it, Value::Object(_) | Value::Array(_))
                        && node_on_value(node, Some(it), steps)
                })
            } else {
                node_on_map(node, None, steps)
            }
        }
        _ => node_on_map(node, None, steps),
    }
}

/// Whether an array holds objects or arrays (otherwise it is matched as absent).
pub(crate) fn has_structure(items: &[Value]) -> bool {
    items
        .iter()
        .any(|it| matches!(it, Value::Object(_) | Value::Array(_)))
}

/// Calls `f` on each leaf value of `v` until it returns true; returns whether it did.
pub(crate) fn any_leaf(v: &Value, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().any(|it| any_leaf(it, f)),
        scalar => f(scalar),
    }
}

/// Whether `v` has at least one leaf value.
pub(crate) fn has_leaf(v: Option<&Value>) -> bool {
    v.is_some_and(|v| any_leaf(v, &mut |_| true))
}

/// Whether a leaf field with these alternatives holds for the field value `v`.
pub(crate) fn leaf_matches(alts: &[Alt], v: Option<&Value>, steps: &mut u64) -> bool {
    let mut present: Option<bool> = None;
    for alt in alts {
        if let [Cond::Exists(want)] = alt.conds.as_slice() {
            *steps += 1;
            let p = *present.get_or_insert_with(|| has_leaf(v));
            if p == *want {
                return true;
            }
        }
    }
    let Some(v) = v else { return false };
    any_leaf(v, &mut |lv| {
        alts.iter().any(|alt| {
            !matches!(alt.conds.as_slice(), [Cond::Exists(_)])
                && alt
                    .conds
                    .iter()
                    .all(|c| cond_test(c, lv, steps).unwrap_or(false))
        })
    })
}

/// Whether the literal equals the value (numbers by value).
pub(crate) fn lit_eq(lit: &Lit, v: &Value) -> bool {
    match (lit, v) {
        (Lit::Null, Value::Null) => true,
        (Lit::Bool(a), Value::Bool(b)) => a == b,
        (Lit::Str(a), Value::String(b)) => a == b,
        (Lit::Num(n), v) => Num::of(v).is_some_and(|m| m.eq_exact(*n)),
        _ => false,
    }
}

/// Tests one condition on one leaf value; `Err` only from a custom operator.
pub(crate) fn cond_test(c: &Cond, v: &Value, steps: &mut u64) -> Result<bool, String> {
    *steps += 1;
    let s = v.as_str();
    Ok(match c {
        Cond::Exact(lit) => lit_eq(lit, v),
        Cond::Prefix(a) => s.is_some_and(|s| {
            if a.ignore_case {
                with_folded(s, |f| f.starts_with(&a.key))
            } else {
                s.starts_with(&a.key)
            }
        }),
        Cond::Suffix(a) => s.is_some_and(|s| {
            if a.ignore_case {
                with_folded(s, |f| f.ends_with(&a.key))
            } else {
                s.ends_with(&a.key)
            }
        }),
        Cond::EqualsIgnoreCase(_, folded) => s.is_some_and(|s| with_folded(s, |f| f == folded)),
        Cond::Wildcard(w) => s.is_some_and(|s| w.matches(s)),
        Cond::AnythingBut(ab) => match ab {
            AnythingBut::Values(list) => !list.iter().any(|l| lit_eq(l, v)),
            AnythingBut::Prefix(p) => !s.is_some_and(|s| s.starts_with(p.as_str())),
            AnythingBut::Suffix(p) => !s.is_some_and(|s| s.ends_with(p.as_str())),
            AnythingBut::EqualsIgnoreCase(list) => {
                !s.is_some_and(|s| with_folded(s, |f| list.iter().any(|(_, k)| k == f)))
            }
            AnythingBut::Wildcard(list) => !s.is_some_and(|s| list.iter().any(|w| w.matches(s))),
        },
        Cond::Numeric(n) => Num::of(v).is_some_and(|x| n.test(x)),
        Cond::Exists(want) => *want,
        Cond::Cidr(c) => s.is_some_and(|s| c.matches_str(s)),
        Cond::Custom(c) => return c.prepared.test(v),
    })
}
