//! `explain`: which conditions of a pattern passed, failed or were not reached
//! for one signal, with the value seen — the answer to "why did (or didn't) this
//! match?".
//!
//! One [`ConditionVerdict`] per leaf field of the pattern, in evaluation order,
//! with its dotted path (`$or[1].` prefixes for `$or` branches). Evaluation stops
//! at the first failing condition of a node (the rest are `not_reached`), as the
//! engine does; custom operators come last so they show `not_reached` when a
//! built-in condition failed. For a nested pattern over an array of objects the
//! verdicts are those of the first element that matched, or else of the element
//! that got furthest. Invariant: `matched` always equals the naive result.

use serde::Serialize;
use signalbox_model::{Map, Value};

use crate::eval::{self, any_leaf, has_structure};
use crate::pattern::Pattern;
use crate::pattern::ast::{Alt, Cond, FieldBody, Node, Step};
use crate::pattern::json::leaf_to_json;

/// The outcome of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The condition held.
    Passed,
    /// The condition did not hold.
    Failed,
    /// Not evaluated: an earlier condition of the same node failed.
    NotReached,
}

/// One leaf field's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionVerdict {
    /// Dotted path of the field in the pattern (`owner.team`, `$or[1].kind`).
    pub path: String,
    /// The field's condition list as written canonically (`["a", {"prefix": "b"}]`).
    pub condition: serde_json::Value,
    /// Passed, failed or not reached.
    pub verdict: Verdict,
    /// The value found at the path (absent: `None`).
    pub seen: Option<serde_json::Value>,
    /// An error reported by a custom operator, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The explanation of one pattern against one signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Whether the pattern matched.
    pub matched: bool,
    /// Every leaf condition's verdict.
    pub conditions: Vec<ConditionVerdict>,
}

/// Explains `pattern` against `params`.
pub fn explain(pattern: &Pattern, params: &Map) -> Explanation {
    let mut conditions = Vec::new();
    let matched = node(&pattern.root, Some(params), "", true, &mut conditions);
    Explanation {
        matched,
        conditions,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Explains a node on an object; `reach` false marks everything not reached.
fn node(
    n: &Node,
    m: Option<&Map>,
    prefix: &str,
    reach: bool,
    out: &mut Vec<ConditionVerdict>,
) -> bool {
    let mut ok = reach;
    for step in &n.order {
        match step {
            Step::Field(i) => {
                let f = &n.fields[*i];
                let path = join(prefix, &f.name);
                let v = m.and_then(|m| m.get(&f.name));
                let passed = match &f.body {
                    FieldBody::Leaf(alts) => leaf(alts, v, path, ok, out),
                    FieldBody::Nested(child) => nested(child, v, &path, ok, out),
                };
                ok = ok && passed;
            }
            Step::Or => {
                let Some(branches) = &n.or else { continue };
                let mut any = false;
                for (b, branch) in branches.iter().enumerate() {
                    let p = join(prefix, &format!("$or[{b}]"));
                    let passed = node(branch, m, &p, ok && !any, out);
                    any = any || passed;
                }
                ok = ok && any;
            }
        }
    }
    ok
}

fn nested(
    child: &Node,
    v: Option<&Value>,
    path: &str,
    reach: bool,
    out: &mut Vec<ConditionVerdict>,
) -> bool {
    if !reach {
        return node(child, None, path, false, out);
    }
    match v {
        Some(Value::Object(m)) => node(child, Some(m), path, true, out),
        Some(Value::Array(items)) if has_structure::<&Value>(items.iter()) => {
            let mut best: Option<(usize, Vec<ConditionVerdict>)> = None;
            for it in items
                .iter()
                .filter(|it| matches!(it, Value::Object(_) | Value::Array(_)))
            {
                let mut local = Vec::new();
                let passed = nested(child, Some(it), path, true, &mut local);
                if passed {
                    out.extend(local);
                    return true;
                }
                let score = local
                    .iter()
                    .filter(|c| c.verdict == Verdict::Passed)
                    .count();
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, local));
                }
            }
            out.extend(best.map(|(_, l)| l).unwrap_or_default());
            false
        }
        _ => node(child, None, path, true, out),
    }
}

fn leaf(
    alts: &[Alt],
    v: Option<&Value>,
    path: String,
    reach: bool,
    out: &mut Vec<ConditionVerdict>,
) -> bool {
    let condition = leaf_to_json(alts);
    let seen = v.map(Value::to_json);
    if !reach {
        out.push(ConditionVerdict {
            path,
            condition,
            verdict: Verdict::NotReached,
            seen,
            error: None,
        });
        return false;
    }
    let passed = eval::leaf_matches(alts, v, &mut 0);
    let mut error = None;
    if !passed && let Some(v) = v {
        any_leaf(v, &mut |lv, leaf| {
            for c in alts
                .iter()
                .flat_map(|a| a.conds.iter())
                .filter(|c| matches!(c, Cond::Custom(_)))
            {
                if let Err(e) = eval::cond_test(c, leaf, lv, &mut 0) {
                    error = Some(e);
                    return true;
                }
            }
            false
        });
    }
    let verdict = if passed {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    out.push(ConditionVerdict {
        path,
        condition,
        verdict,
        seen,
        error,
    });
    passed
}
