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

use crate::casefold::with_folded;
use crate::numeric::Num;
use crate::pattern::ast::{Alt, AnythingBut, Cond, FieldBody, Lit, Node, Step};
use crate::view::{Leaf, ObjView, Shape, ValueView};

/// Whether `node` matches the object `m` (`None`: absent).
pub(crate) fn node_on_map<'v, O: ObjView<'v>>(node: &Node, m: Option<O>, steps: &mut u64) -> bool {
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
pub(crate) fn node_on_value<'v, V: ValueView<'v>>(
    node: &Node,
    v: Option<V>,
    steps: &mut u64,
) -> bool {
    match v.map(ValueView::shape) {
        Some(Shape::Object(m)) => node_on_map(node, Some(m), steps),
        Some(Shape::Array(items)) => {
            if has_structure::<V>(items.clone()) {
                items.into_iter().any(|it| {
                    !matches!(it.shape(), Shape::Leaf(_)) && node_on_value(node, Some(it), steps)
                })
            } else {
                node_on_map::<V::Obj>(node, None, steps)
            }
        }
        _ => node_on_map::<V::Obj>(node, None, steps),
    }
}

/// Whether an array holds objects or arrays (otherwise it is matched as absent).
pub(crate) fn has_structure<'v, V: ValueView<'v>>(mut items: V::Items) -> bool {
    items.any(|it| !matches!(it.shape(), Shape::Leaf(_)))
}

/// Calls `f` on each leaf value of `v` (with its view) until it returns true;
/// returns whether it did.
#[inline]
pub(crate) fn any_leaf<'v, V: ValueView<'v>>(
    v: V,
    f: &mut impl FnMut(V, Leaf<'v>) -> bool,
) -> bool {
    match v.shape() {
        Shape::Leaf(l) => f(v, l),
        Shape::Object(_) => false,
        Shape::Array(items) => any_leaf_in(items, f),
    }
}

/// [`any_leaf`] over the elements of an array (scalars without a call each).
fn any_leaf_in<'v, V: ValueView<'v>>(
    items: V::Items,
    f: &mut impl FnMut(V, Leaf<'v>) -> bool,
) -> bool {
    for it in items {
        let hit = match it.shape() {
            Shape::Leaf(l) => f(it, l),
            Shape::Object(_) => false,
            Shape::Array(inner) => any_leaf_in(inner, f),
        };
        if hit {
            return true;
        }
    }
    false
}

/// Whether `v` has at least one leaf value.
pub(crate) fn has_leaf<'v, V: ValueView<'v>>(v: Option<V>) -> bool {
    v.is_some_and(|v| any_leaf(v, &mut |_, _| true))
}

/// Whether a leaf field with these alternatives holds for the field value `v`.
pub(crate) fn leaf_matches<'v, V: ValueView<'v>>(
    alts: &[Alt],
    v: Option<V>,
    steps: &mut u64,
) -> bool {
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
    any_leaf(v, &mut |lv, leaf| {
        alts.iter().any(|alt| {
            !matches!(alt.conds.as_slice(), [Cond::Exists(_)])
                && alt
                    .conds
                    .iter()
                    .all(|c| cond_test(c, leaf, lv, steps).unwrap_or(false))
        })
    })
}

/// Whether the literal equals the leaf value (numbers by value).
pub(crate) fn lit_eq(lit: &Lit, v: Leaf<'_>) -> bool {
    match (lit, v) {
        (Lit::Null, Leaf::Null) => true,
        (Lit::Bool(a), Leaf::Bool(b)) => *a == b,
        (Lit::Str(a), Leaf::Str(b)) => a == b,
        (Lit::Num(n), v) => Num::of(v).is_some_and(|m| m.eq_exact(*n)),
        _ => false,
    }
}

/// Tests one condition on one leaf value `leaf` (the scalar of `v`); `Err`
/// only from a custom operator.
pub(crate) fn cond_test<'v, V: ValueView<'v>>(
    c: &Cond,
    leaf: Leaf<'v>,
    v: V,
    steps: &mut u64,
) -> Result<bool, String> {
    *steps += 1;
    let s = leaf.as_str();
    Ok(match c {
        Cond::Exact(lit) => lit_eq(lit, leaf),
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
            AnythingBut::Values(list) => !list.iter().any(|l| lit_eq(l, leaf)),
            AnythingBut::Prefix(p) => !s.is_some_and(|s| s.starts_with(p.as_str())),
            AnythingBut::Suffix(p) => !s.is_some_and(|s| s.ends_with(p.as_str())),
            AnythingBut::EqualsIgnoreCase(list) => {
                !s.is_some_and(|s| with_folded(s, |f| list.iter().any(|(_, k)| k == f)))
            }
            AnythingBut::Wildcard(list) => !s.is_some_and(|s| list.iter().any(|w| w.matches(s))),
        },
        Cond::Numeric(n) => Num::of(leaf).is_some_and(|x| n.test(x)),
        Cond::Exists(want) => *want,
        Cond::Cidr(c) => s.is_some_and(|s| c.matches_str(s)),
        Cond::Custom(c) => return c.prepared.test(&v.to_value()),
    })
}
