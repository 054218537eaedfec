//! Anchors: for each pattern, a set of index entries such that the pattern can
//! only match a signal that hits at least one of them (a necessary condition).
//!
//! A leaf field's anchor set holds one entry per alternative (the most selective
//! condition of that alternative); a nested field's is its node's; an `$or`
//! group's is the union of its branches'. A node picks, among its fields and its
//! `$or` group, the set whose worst entry is most selective. A pattern with no
//! anchorable part (only `exists: false`, or empty) is checked on every signal
//! ("always" list).
//!
//! Invariants: anchors are a pure function of the pattern (so `remove` recomputes
//! them instead of storing them), not of the order its fields were written in
//! (`remove` may read the pattern back from canonical JSON, keys sorted); they
//! are sorted and deduplicated; a field that
//! can hold without a leaf value (`exists: false`) is never used as an anchor.
//! [`residual`] drops from a pattern only a field that its one anchor decides
//! exactly, so a candidate selected by that anchor matches the pattern exactly
//! when it matches the residual.

use std::sync::Arc;

use super::ranges::{EXACT, HI_INCLUSIVE, LO_INCLUSIVE};
use crate::numeric::{Bound, Num, NumKey, NumericCond, ordered_key};
use crate::pattern::Pattern;
use crate::pattern::ast::{Alt, AnythingBut, Cond, FieldBody, Lit, Node};

/// One index key inside a path's index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    /// Exact string.
    Str(Box<str>),
    /// Exact number.
    Num(NumKey),
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Case-folded exact string.
    Folded(Box<str>),
    /// String prefix.
    Prefix(Box<str>),
    /// Case-folded prefix.
    PrefixFolded(Box<str>),
    /// String suffix.
    Suffix(Box<str>),
    /// Case-folded suffix.
    SuffixFolded(Box<str>),
    /// CIDR block.
    Cidr(bool, u8, u128),
    /// Numeric range over ordered keys, with the flags of
    /// [`super::ranges`] (inclusive bounds, exactness).
    Range(Option<u64>, Option<u64>, u8),
    /// Any leaf value except these strings (sorted, distinct): the anchor of
    /// `anything-but` over a list of strings.
    But(Box<[Box<str>]>),
    /// Any leaf value at the path.
    Present,
}

/// Where a pattern is filed in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Anchors {
    /// Checked on every signal.
    Always,
    /// Filed under these (path, key) entries.
    Keys(Vec<(Vec<Box<str>>, Key)>),
}

type Set = (u8, Vec<(Vec<Box<str>>, Key)>);

/// Computes a pattern's anchors.
pub(crate) fn anchors(p: &Pattern) -> Anchors {
    match node(&p.root, &[]) {
        Some((_, mut keys)) => {
            keys.sort();
            keys.dedup();
            Anchors::Keys(keys)
        }
        None => Anchors::Always,
    }
}

fn node(n: &Node, path: &[Box<str>]) -> Option<Set> {
    let mut best: Option<Set> = None;
    // Ties are broken by the sorted keys, not by the order of the fields:
    // a pattern read back from its canonical JSON (keys sorted) must get
    // the anchors it was filed under.
    let mut consider = |cand: Option<Set>| {
        if let Some(c) = cand
            && best.as_ref().is_none_or(|b| {
                (c.0, c.1.len())
                    .cmp(&(b.0, b.1.len()))
                    .then_with(|| sorted(&c.1).cmp(&sorted(&b.1)))
                    .is_lt()
            })
        {
            best = Some(c);
        }
    };
    for f in &n.fields {
        let mut p = path.to_vec();
        p.push(f.name.as_str().into());
        consider(match &f.body {
            FieldBody::Leaf(alts) => leaf(alts, &p),
            FieldBody::Nested(child) => node(child, &p),
        });
    }
    if let Some(branches) = &n.or {
        let mut score = 0;
        let mut keys = Vec::new();
        let mut all = true;
        for b in branches {
            match node(b, path) {
                Some((s, k)) => {
                    score = score.max(s);
                    keys.extend(k);
                }
                None => {
                    all = false;
                    break;
                }
            }
        }
        if all {
            consider(Some((score, keys)));
        }
    }
    best
}

/// A copy of `keys`, sorted.
fn sorted(keys: &[(Vec<Box<str>>, Key)]) -> Vec<&(Vec<Box<str>>, Key)> {
    let mut v: Vec<_> = keys.iter().collect();
    v.sort();
    v
}

fn leaf(alts: &[Alt], path: &[Box<str>]) -> Option<Set> {
    let mut score = 0;
    let mut keys = Vec::with_capacity(alts.len());
    for alt in alts {
        let (s, k) = alt.conds.iter().filter_map(cond).min_by_key(|(s, _)| *s)?;
        score = score.max(s);
        keys.push((path.to_vec(), k));
    }
    Some((score, keys))
}

fn cond(c: &Cond) -> Option<(u8, Key)> {
    Some(match c {
        Cond::Exact(Lit::Str(s)) => (0, Key::Str(s.as_str().into())),
        Cond::Exact(Lit::Num(n)) => (0, Key::Num(n.key())),
        Cond::Exact(Lit::Null) => (3, Key::Null),
        Cond::Exact(Lit::Bool(b)) => (3, Key::Bool(*b)),
        Cond::EqualsIgnoreCase(_, f) => (1, Key::Folded(f.as_str().into())),
        Cond::Prefix(a) if a.key.is_empty() => (9, Key::Present),
        Cond::Prefix(a) if a.ignore_case => (2, Key::PrefixFolded(a.key.as_str().into())),
        Cond::Prefix(a) => (2, Key::Prefix(a.key.as_str().into())),
        Cond::Suffix(a) if a.key.is_empty() => (9, Key::Present),
        Cond::Suffix(a) if a.ignore_case => (2, Key::SuffixFolded(a.key.as_str().into())),
        Cond::Suffix(a) => (2, Key::Suffix(a.key.as_str().into())),
        Cond::Wildcard(w) if w.is_literal() => (0, Key::Str(w.pieces[0].as_str().into())),
        // The longer literal end is the more selective anchor: `a*cde` is
        // filed under suffix `cde`, not prefix `a`.
        Cond::Wildcard(w) => {
            let (prefix, suffix) = (w.literal_prefix(), w.literal_suffix());
            if prefix.is_empty() && suffix.is_empty() {
                (9, Key::Present)
            } else if prefix.len() >= suffix.len() {
                (3, Key::Prefix(prefix.into()))
            } else {
                (3, Key::Suffix(suffix.into()))
            }
        }
        Cond::Numeric(NumericCond::Eq(n)) => (0, Key::Num(n.key())),
        Cond::Numeric(NumericCond::Range { lower, upper }) => (4, range_key(*lower, *upper)),
        Cond::Cidr(c) => (2, Key::Cidr(c.v6, c.len, c.network)),
        Cond::AnythingBut(AnythingBut::Values(list)) if !list.is_empty() => {
            let mut strs = Vec::with_capacity(list.len());
            for l in list {
                match l {
                    Lit::Str(s) => strs.push(Box::<str>::from(s.as_str())),
                    _ => return Some((9, Key::Present)),
                }
            }
            strs.sort();
            strs.dedup();
            (8, Key::But(strs.into_boxed_slice()))
        }
        Cond::Exists(true) | Cond::AnythingBut(_) | Cond::Custom(_) => (9, Key::Present),
        Cond::Exists(false) => return None,
    })
}

/// The range key of a numeric range: ordered keys of the bounds, their
/// inclusiveness, and whether both are exactly `f64`s.
fn range_key(lower: Option<Bound>, upper: Option<Bound>) -> Key {
    let exact = [lower, upper]
        .iter()
        .flatten()
        .all(|b| exact_f64(b.value).is_some());
    let mut flags = 0;
    if lower.is_some_and(|b| b.inclusive) {
        flags |= LO_INCLUSIVE;
    }
    if upper.is_some_and(|b| b.inclusive) {
        flags |= HI_INCLUSIVE;
    }
    if exact {
        flags |= EXACT;
    }
    Key::Range(
        lower.map(|b| ordered_key(b.value.approx())),
        upper.map(|b| ordered_key(b.value.approx())),
        flags,
    )
}

/// The number as an `f64` when that is exactly its value.
fn exact_f64(n: Num) -> Option<f64> {
    match n {
        Num::Float(f) => Some(f),
        Num::Int(i) => {
            let f = i as f64;
            ((-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
                && f as i64 == i)
                .then_some(f)
        }
    }
}

/// Whether the anchors of `p` decide it alone: `p` is one chain of single
/// fields down to one leaf with one condition, and that condition's anchor
/// key holds for a leaf value exactly when the condition does. Such a pattern
/// matches whenever the index selects it, so it is never verified.
///
/// Only keys whose lookup is the condition's own test qualify: exact strings,
/// `null` and booleans, case-folded equality, prefixes and suffixes (plain or
/// folded), wildcards that are a literal or one literal end (`x*`, `*x`) and
/// `anything-but` over strings, numbers (their hash key is equal exactly
/// for equal numbers) and numeric ranges whose bounds are exactly `f64`s
/// (their index answers exactly). CIDR blocks are always verified.
pub(crate) fn decides_alone(p: &Pattern) -> bool {
    let mut n: &Node = &p.root;
    loop {
        if n.or.is_some() {
            return false;
        }
        let [field] = n.fields.as_slice() else {
            return false;
        };
        match &field.body {
            FieldBody::Nested(child) => n = child,
            FieldBody::Leaf(alts) => {
                let [alt] = alts.as_slice() else { return false };
                let [c] = alt.conds.as_slice() else {
                    return false;
                };
                return key_decides(c);
            }
        }
    }
}

/// Whether the anchor key of `c` holds for a leaf value exactly when `c` does
/// (the conditions [`decides_alone`] lists).
fn key_decides(c: &Cond) -> bool {
    match c {
        Cond::Exact(_) | Cond::EqualsIgnoreCase(..) => true,
        Cond::Numeric(NumericCond::Eq(_)) => true,
        Cond::Numeric(NumericCond::Range { .. }) => {
            matches!(cond(c), Some((_, Key::Range(_, _, f))) if f & EXACT != 0)
        }
        Cond::Prefix(a) | Cond::Suffix(a) => !a.key.is_empty(),
        Cond::Wildcard(w) => w.is_literal() || w.is_single_affix(),
        Cond::AnythingBut(_) => matches!(cond(c), Some((_, Key::But(_)))),
        _ => false,
    }
}

/// What is left to verify of `p` once its anchor has hit, when that is less
/// than `p`: `p` without the top-level field its one anchor decides exactly
/// (a field with one alternative of one condition, [`key_decides`]). A hit on
/// that key means some leaf value of the field satisfies the condition, which
/// is the field's whole test at the top level (no array consistency applies
/// to the params object itself), so the candidate matches `p` exactly when it
/// matches the residual. `None` when no field can be dropped, when nothing
/// would be left to verify ([`decides_alone`] covers that), or when `p` has a
/// custom operator (the registry's canonical text, from which the full
/// pattern is read back, holds built-in operators only).
pub(crate) fn residual(p: &Pattern, anchors: &Anchors) -> Option<Pattern> {
    let Anchors::Keys(keys) = anchors else {
        return None;
    };
    let [(path, key)] = keys.as_slice() else {
        return None;
    };
    let [name] = path.as_slice() else {
        return None;
    };
    let root = &p.root;
    if root.fields.len() + usize::from(root.or.is_some()) < 2 || p.has_custom_operators() {
        return None;
    }
    let at = root.fields.iter().position(|f| *f.name == **name)?;
    let FieldBody::Leaf(alts) = &root.fields[at].body else {
        return None;
    };
    let [alt] = alts.as_slice() else { return None };
    let [c] = alt.conds.as_slice() else {
        return None;
    };
    if !key_decides(c) || cond(c).map(|(_, k)| k).as_ref() != Some(key) {
        return None;
    }
    let mut fields = Vec::with_capacity(root.fields.len() - 1);
    fields.extend(
        root.fields
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, f)| f.clone()),
    );
    let mut node = Node {
        fields,
        or: root.or.clone(),
        order: Vec::new(),
    };
    node.compute_order();
    Some(Pattern {
        root: Arc::new(node),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::OperatorRegistry;

    fn parse(j: serde_json::Value) -> Pattern {
        Pattern::parse(&j, &OperatorRegistry::default()).expect("valid pattern")
    }

    fn residual_of(j: serde_json::Value) -> Option<serde_json::Value> {
        let p = parse(j);
        residual(&p, &anchors(&p)).map(|r| r.to_json())
    }

    /// Only a top-level field of one condition that its key decides is
    /// dropped; nested anchors, several alternatives and inexact keys keep
    /// the whole pattern.
    #[test]
    fn residual_drops_only_a_decided_top_level_field() {
        use serde_json::json;
        assert_eq!(
            residual_of(json!({"id": ["v1"], "region": ["r1"]})),
            Some(json!({"region": ["r1"]}))
        );
        assert_eq!(
            residual_of(json!({"id": ["v1"], "$or": [{"a": [1]}, {"b": [2]}]})),
            Some(json!({"$or": [{"a": [1]}, {"b": [2]}]}))
        );
        assert_eq!(residual_of(json!({"id": ["v1"]})), None);
        // The anchor is the field with one key: that one goes.
        assert_eq!(
            residual_of(json!({"id": ["v1", "v2"], "r": ["x"]})),
            Some(json!({"id": ["v1", "v2"]}))
        );
        assert_eq!(
            residual_of(json!({"id": ["v1", "v2"], "r": [{"exists": false}]})),
            None
        );
        assert_eq!(
            residual_of(json!({"o": {"id": ["v1"]}, "r": [{"exists": false}]})),
            None
        );
        assert_eq!(
            residual_of(json!({"ip": [{"cidr": "10.0.0.0/8"}], "r": [{"exists": false}]})),
            None
        );
    }

    /// Equally selective fields: the anchors do not depend on the order
    /// the fields come in (canonical JSON sorts them).
    #[test]
    fn anchors_do_not_depend_on_field_order() {
        use serde_json::json;
        let p = parse(json!({"kz": [null], "arr": {"k": [null]}}));
        let again = parse(p.to_json());
        assert_eq!(anchors(&p), anchors(&again));
        assert_eq!(
            residual(&p, &anchors(&p)).map(|r| r.to_json()),
            residual(&again, &anchors(&again)).map(|r| r.to_json())
        );
    }
}
