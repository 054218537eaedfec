//! Parsing and validating EventBridge pattern JSON into the [`ast`](super::ast).
//!
//! Every error names the path inside the pattern (`a.b[0].numeric`,
//! `$or[1].c`) and the problem. Invariants of the output are those listed in the
//! `ast` module; limits ([`MAX_DEPTH`], [`MAX_FIELDS`], [`MAX_VALUES`]) bound the
//! work any one pattern can cause.

use std::sync::Arc;

use serde_json::Value as Json;

use super::ast::{Affix, Alt, AnythingBut, Cond, CustomCond, Field, FieldBody, Lit, Node};
use crate::casefold::fold;
use crate::cidr::Cidr;
use crate::error::PatternError;
use crate::numeric::{Bound, Num, NumericCond};
use crate::operators::OperatorRegistry;
use crate::wildcard::Wildcard;

/// Deepest nesting of objects and `$or` groups in one pattern.
pub const MAX_DEPTH: usize = 16;
/// Most leaf fields in one pattern.
pub const MAX_FIELDS: usize = 256;
/// Most values (alternatives) in one field's list.
pub const MAX_VALUES: usize = 1024;

const NUMERIC_OPS: &str = "(\"<\", \"<=\", \"=\", \">\", \">=\")";

/// Parsing state shared across the recursion.
pub(crate) struct Parser<'a> {
    ops: &'a OperatorRegistry,
    fields: usize,
}

/// Describes a JSON value's kind for error messages (`string "x"`).
pub(crate) fn describe(v: &Json) -> String {
    match v {
        Json::Null => "null".to_string(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) => format!("string {}", Json::String(s.clone())),
        Json::Array(_) => "an array".to_string(),
        Json::Object(_) => "an object".to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Parser<'a> {
    /// A parser that resolves custom operators in `ops`.
    pub(crate) fn new(ops: &'a OperatorRegistry) -> Parser<'a> {
        Parser { ops, fields: 0 }
    }

    /// Parses a whole pattern (a JSON object).
    pub(crate) fn root(&mut self, json: &Json) -> Result<Node, PatternError> {
        match json {
            Json::Object(_) => self.node(json, "", 1),
            other => Err(PatternError::new(
                "",
                format!("a pattern must be a JSON object, found {}", describe(other)),
            )),
        }
    }

    fn node(&mut self, json: &Json, path: &str, depth: usize) -> Result<Node, PatternError> {
        if depth > MAX_DEPTH {
            return Err(PatternError::new(
                path,
                format!("pattern is nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let Json::Object(map) = json else {
            return Err(PatternError::new(
                path,
                format!("expected an object, found {}", describe(json)),
            ));
        };
        let mut node = Node {
            fields: Vec::new(),
            or: None,
            order: Vec::new(),
        };
        for (key, value) in map {
            let key_path = join(path, key);
            if key == "$or" && self.is_or_group(value) {
                let branches = self.or_group(value, &key_path, depth)?;
                if node.or.is_some() {
                    return Err(PatternError::new(
                        &key_path,
                        "more than one $or group at the same level",
                    ));
                }
                node.or = Some(branches);
                continue;
            }
            if key.is_empty() {
                return Err(PatternError::new(
                    &key_path,
                    "field names must not be empty",
                ));
            }
            let segments: Vec<&str> = if key == "$or" {
                vec![key.as_str()]
            } else {
                key.split('.').collect()
            };
            if segments.iter().any(|s| s.is_empty()) {
                return Err(PatternError::new(
                    &key_path,
                    format!("field name \"{key}\" has an empty segment"),
                ));
            }
            let body = match value {
                Json::Array(items) => FieldBody::Leaf(self.leaf(items, &key_path)?),
                Json::Object(_) => {
                    FieldBody::Nested(self.node(value, &key_path, depth + segments.len())?)
                }
                other => {
                    return Err(PatternError::new(
                        &key_path,
                        format!(
                            "expected an array of values or an object of fields, found {}",
                            describe(other)
                        ),
                    ));
                }
            };
            insert_field(&mut node, &segments, body, &key_path)?;
        }
        finish(&mut node);
        Ok(node)
    }

    /// `"$or": [...]` is an or-group unless every element is an operator object
    /// (then `$or` is an ordinary field name, as in EventBridge).
    fn is_or_group(&self, value: &Json) -> bool {
        match value {
            Json::Array(items) => {
                !items.iter().all(|item| match item {
                    Json::Object(m) => !m.is_empty() && m.keys().all(|k| self.ops.is_operator(k)),
                    _ => false,
                }) || items.is_empty()
            }
            _ => false,
        }
    }

    fn or_group(
        &mut self,
        value: &Json,
        path: &str,
        depth: usize,
    ) -> Result<Vec<Node>, PatternError> {
        let Json::Array(items) = value else {
            return Err(PatternError::new(
                path,
                "$or must be an array of at least two sub-patterns",
            ));
        };
        if items.len() < 2 {
            return Err(PatternError::new(
                path,
                format!(
                    "$or must be an array of at least two sub-patterns, found {}",
                    items.len()
                ),
            ));
        }
        let mut branches = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match item {
                Json::Object(m) if !m.is_empty() => {
                    branches.push(self.node(item, &p, depth + 1)?)
                }
                Json::Object(_) => {
                    return Err(PatternError::new(&p, "a $or sub-pattern must not be empty"));
                }
                other => {
                    return Err(PatternError::new(
                        &p,
                        format!(
                            "expected an object (a sub-pattern), found {}",
                            describe(other)
                        ),
                    ));
                }
            }
        }
        Ok(branches)
    }

    fn leaf(&mut self, items: &[Json], path: &str) -> Result<Vec<Alt>, PatternError> {
        self.fields += 1;
        if self.fields > MAX_FIELDS {
            return Err(PatternError::new(
                path,
                format!("pattern has more than {MAX_FIELDS} fields"),
            ));
        }
        if items.is_empty() {
            return Err(PatternError::new(
                path,
                "expected at least one value or operator, found an empty array",
            ));
        }
        if items.len() > MAX_VALUES {
            return Err(PatternError::new(
                path,
                format!("more than {MAX_VALUES} values for one field"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.alt(item, &format!("{path}[{i}]")))
            .collect()
    }

    fn alt(&mut self, item: &Json, path: &str) -> Result<Alt, PatternError> {
        let map = match item {
            Json::Object(m) => m,
            Json::Array(_) => {
                return Err(PatternError::new(
                    path,
                    "nested arrays are not allowed in a value list",
                ));
            }
            other => {
                return Ok(Alt {
                    conds: vec![Cond::Exact(literal(other, path)?)],
                });
            }
        };
        if map.is_empty() {
            return Err(PatternError::new(
                path,
                "expected an operator object such as {\"prefix\": \"a\"}, found {}",
            ));
        }
        let mut conds = Vec::with_capacity(map.len());
        for (name, arg) in map {
            let p = join(path, name);
            conds.push(self.operator(name, arg, &p)?);
        }
        if conds.len() > 1 && conds.iter().any(|c| matches!(c, Cond::Exists(_))) {
            return Err(PatternError::new(
                path,
                "\"exists\" cannot be combined with other operators in one object",
            ));
        }
        conds.sort_by_key(Cond::is_custom);
        Ok(Alt { conds })
    }

    fn operator(&mut self, name: &str, arg: &Json, path: &str) -> Result<Cond, PatternError> {
        let err = |problem: String| PatternError::new(path, problem);
        Ok(match name {
            "prefix" => Cond::Prefix(affix(arg, path)?),
            "suffix" => Cond::Suffix(affix(arg, path)?),
            "equals-ignore-case" => {
                let s = string_arg(arg, path)?;
                Cond::EqualsIgnoreCase(s.to_string(), fold(s))
            }
            "wildcard" => Cond::Wildcard(Wildcard::parse(string_arg(arg, path)?).map_err(err)?),
            "anything-but" => Cond::AnythingBut(anything_but(arg, path)?),
            "numeric" => Cond::Numeric(numeric(arg, path)?),
            "exists" => match arg {
                Json::Bool(b) => Cond::Exists(*b),
                other => {
                    return Err(err(format!(
                        "expected true or false, found {}",
                        describe(other)
                    )));
                }
            },
            "cidr" => Cond::Cidr(Cidr::parse(string_arg(arg, path)?).map_err(err)?),
            other => match self.ops.get(other) {
                Some(op) => {
                    let prepared = op.prepare(arg).map_err(|e| {
                        err(format!("operator \"{other}\" rejected its argument: {e}"))
                    })?;
                    Cond::Custom(CustomCond {
                        name: other.to_string(),
                        arg: arg.clone(),
                        prepared: Arc::from(prepared),
                    })
                }
                None => {
                    let names = self
                        .ops
                        .names()
                        .iter()
                        .map(|n| format!("\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(err(format!(
                        "unknown operator \"{other}\"; the operators are {names}"
                    )));
                }
            },
        })
    }
}

/// Inserts a field at a dotted path, merging nested nodes.
fn insert_field(
    node: &mut Node,
    segments: &[&str],
    body: FieldBody,
    full: &str,
) -> Result<(), PatternError> {
    let (first, rest) = segments
        .split_first()
        .ok_or_else(|| PatternError::new(full, "empty field name"))?;
    let existing = node.fields.iter().position(|f| f.name == *first);
    if rest.is_empty() {
        match (existing, body) {
            (None, body) => node.fields.push(Field {
                name: first.to_string(),
                body,
            }),
            (Some(i), FieldBody::Nested(new)) => match &mut node.fields[i].body {
                FieldBody::Nested(old) => merge(old, new, full)?,
                FieldBody::Leaf(_) => return Err(conflict(full)),
            },
            (Some(_), FieldBody::Leaf(_)) => return Err(conflict(full)),
        }
        return Ok(());
    }
    let i = match existing {
        Some(i) => i,
        None => {
            node.fields.push(Field {
                name: first.to_string(),
                body: FieldBody::Nested(Node {
                    fields: Vec::new(),
                    or: None,
                    order: Vec::new(),
                }),
            });
            node.fields.len() - 1
        }
    };
    match &mut node.fields[i].body {
        FieldBody::Nested(child) => {
            insert_field(child, rest, body, full)?;
            finish(child);
            Ok(())
        }
        FieldBody::Leaf(_) => Err(conflict(full)),
    }
}

fn merge(old: &mut Node, new: Node, full: &str) -> Result<(), PatternError> {
    for f in new.fields {
        insert_field(old, &[f.name.as_str()], f.body, full)?;
    }
    if let Some(or) = new.or {
        if old.or.is_some() {
            return Err(PatternError::new(
                full,
                "more than one $or group at the same level",
            ));
        }
        old.or = Some(or);
    }
    finish(old);
    Ok(())
}

fn conflict(full: &str) -> PatternError {
    PatternError::new(
        full,
        "field is given twice (as conditions and as nested fields, or in dotted and nested form)",
    )
}

fn finish(node: &mut Node) {
    node.compute_order();
}

fn literal(v: &Json, path: &str) -> Result<Lit, PatternError> {
    Ok(match v {
        Json::Null => Lit::Null,
        Json::Bool(b) => Lit::Bool(*b),
        Json::Number(n) => Lit::Num(Num::from_json(n).ok_or_else(|| {
            PatternError::new(path, format!("number {n} is outside the f64 range"))
        })?),
        Json::String(s) => Lit::Str(s.clone()),
        other => {
            return Err(PatternError::new(
                path,
                format!("expected a literal value, found {}", describe(other)),
            ));
        }
    })
}

fn string_arg<'j>(arg: &'j Json, path: &str) -> Result<&'j str, PatternError> {
    arg.as_str().ok_or_else(|| {
        PatternError::new(path, format!("expected a string, found {}", describe(arg)))
    })
}

fn affix(arg: &Json, path: &str) -> Result<Affix, PatternError> {
    match arg {
        Json::String(s) => Ok(Affix {
            text: s.clone(),
            ignore_case: false,
            key: s.clone(),
        }),
        Json::Object(m) if m.len() == 1 && m.contains_key("equals-ignore-case") => {
            let p = join(path, "equals-ignore-case");
            let s = string_arg(&m["equals-ignore-case"], &p)?;
            Ok(Affix {
                text: s.to_string(),
                ignore_case: true,
                key: fold(s),
            })
        }
        other => Err(PatternError::new(
            path,
            format!(
                "expected a string or {{\"equals-ignore-case\": string}}, found {}",
                describe(other)
            ),
        )),
    }
}

fn strings(arg: &Json, path: &str) -> Result<Vec<String>, PatternError> {
    match arg {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| string_arg(v, &format!("{path}[{i}]")).map(str::to_string))
            .collect(),
        other => Err(PatternError::new(
            path,
            format!(
                "expected a string or a non-empty array of strings, found {}",
                describe(other)
            ),
        )),
    }
}

fn anything_but(arg: &Json, path: &str) -> Result<AnythingBut, PatternError> {
    match arg {
        Json::String(_) | Json::Number(_) | Json::Bool(_) | Json::Null => {
            Ok(AnythingBut::Values(vec![literal(arg, path)?]))
        }
        Json::Array(items) => {
            if items.is_empty() {
                return Err(PatternError::new(
                    path,
                    "expected at least one value to exclude, found an empty array",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = format!("{path}[{i}]");
                    match v {
                        Json::String(_) | Json::Number(_) | Json::Bool(_) | Json::Null => {
                            literal(v, &p)
                        }
                        other => Err(PatternError::new(
                            &p,
                            format!("expected a string or number, found {}", describe(other)),
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(AnythingBut::Values)
        }
        Json::Object(m) if m.len() == 1 => {
            let (k, v) = m
                .iter()
                .next()
                .ok_or_else(|| PatternError::new(path, "empty anything-but object"))?;
            let p = join(path, k);
            match k.as_str() {
                "prefix" | "suffix" => {
                    let s = string_arg(v, &p)?;
                    if s.is_empty() {
                        return Err(PatternError::new(
                            &p,
                            format!("the {k} of anything-but must not be empty"),
                        ));
                    }
                    Ok(if k == "prefix" {
                        AnythingBut::Prefix(s.to_string())
                    } else {
                        AnythingBut::Suffix(s.to_string())
                    })
                }
                "equals-ignore-case" => Ok(AnythingBut::EqualsIgnoreCase(
                    strings(v, &p)?
                        .into_iter()
                        .map(|s| {
                            let f = fold(&s);
                            (s, f)
                        })
                        .collect(),
                )),
                "wildcard" => strings(v, &p)?
                    .iter()
                    .map(|s| Wildcard::parse(s).map_err(|e| PatternError::new(&p, e)))
                    .collect::<Result<Vec<_>, _>>()
                    .map(AnythingBut::Wildcard),
                other => Err(PatternError::new(
                    &p,
                    format!(
                        "unknown anything-but form \"{other}\"; expected \"prefix\", \"suffix\", \"equals-ignore-case\" or \"wildcard\""
                    ),
                )),
            }
        }
        other => Err(PatternError::new(
            path,
            format!(
                "expected a value, a list of values, or one of {{prefix, suffix, equals-ignore-case, wildcard}}, found {}",
                describe(other)
            ),
        )),
    }
}

fn numeric(arg: &Json, path: &str) -> Result<NumericCond, PatternError> {
    let Json::Array(items) = arg else {
        return Err(PatternError::new(
            path,
            format!(
                "expected an array such as [\">\", 0, \"<=\", 5], found {}",
                describe(arg)
            ),
        ));
    };
    if items.is_empty() {
        return Err(PatternError::new(
            path,
            format!("expected an operator {NUMERIC_OPS} at position 0, found an empty array"),
        ));
    }
    let mut pairs: Vec<(&str, Num)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let op = match &items[i] {
            Json::String(s) if ["<", "<=", "=", ">", ">="].contains(&s.as_str()) => s.as_str(),
            other => {
                return Err(PatternError::new(
                    path,
                    format!(
                        "expected an operator {NUMERIC_OPS} at position {i}, found {}",
                        show(other)
                    ),
                ));
            }
        };
        let n = match items.get(i + 1) {
            Some(Json::Number(n)) => Num::from_json(n).ok_or_else(|| {
                PatternError::new(
                    path,
                    format!("number at position {} is outside the f64 range", i + 1),
                )
            })?,
            Some(other) => {
                return Err(PatternError::new(
                    path,
                    format!(
                        "expected a number at position {}, found {}",
                        i + 1,
                        describe(other)
                    ),
                ));
            }
            None => {
                return Err(PatternError::new(
                    path,
                    format!("expected a number at position {} after \"{op}\"", i + 1),
                ));
            }
        };
        pairs.push((op, n));
        i += 2;
    }
    if pairs.len() > 2 {
        return Err(PatternError::new(
            path,
            "expected at most two comparisons (a lower and an upper bound)",
        ));
    }
    if pairs.iter().any(|(op, _)| *op == "=") {
        return match pairs.as_slice() {
            [(_, n)] => Ok(NumericCond::Eq(*n)),
            _ => Err(PatternError::new(
                path,
                "\"=\" cannot be combined with another comparison",
            )),
        };
    }
    let mut lower: Option<Bound> = None;
    let mut upper: Option<Bound> = None;
    for (k, (op, n)) in pairs.iter().enumerate() {
        let slot = if op.starts_with('>') {
            &mut lower
        } else {
            &mut upper
        };
        if slot.is_some() {
            let want = if op.starts_with('>') {
                "an upper bound (\"<\" or \"<=\")"
            } else {
                "a lower bound (\">\" or \">=\")"
            };
            return Err(PatternError::new(
                path,
                format!(
                    "unbalanced range: two {} bounds; expected {want} at position {}",
                    if op.starts_with('>') {
                        "lower"
                    } else {
                        "upper"
                    },
                    2 * k
                ),
            ));
        }
        *slot = Some(Bound {
            value: *n,
            inclusive: op.ends_with('='),
        });
    }
    if let (Some(lo), Some(hi)) = (lower, upper) {
        let ord = lo.value.cmp_exact(hi.value);
        let empty = ord == std::cmp::Ordering::Greater
            || (ord == std::cmp::Ordering::Equal && !(lo.inclusive && hi.inclusive));
        if empty {
            return Err(PatternError::new(
                path,
                format!(
                    "empty range: the lower bound {} is not below the upper bound {}",
                    lo.value.to_json(),
                    hi.value.to_json()
                ),
            ));
        }
    }
    Ok(NumericCond::Range { lower, upper })
}

fn show(v: &Json) -> String {
    match v {
        Json::String(s) => Json::String(s.clone()).to_string(),
        other => describe(other),
    }
}
