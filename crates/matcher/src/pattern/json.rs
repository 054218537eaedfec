//! The canonical JSON form of a parsed pattern (what `Pattern::to_json` gives).
//!
//! Invariant: the output parses back into an equivalent pattern; object keys
//! are sorted, so equal patterns give byte-identical JSON.

use serde_json::{Map, Value as Json};

use super::ast::{Affix, Alt, AnythingBut, Cond, FieldBody, Lit, Node};

pub(crate) fn node_to_json(node: &Node) -> Json {
    let mut entries: Vec<(String, Json)> = node
        .fields
        .iter()
        .map(|f| {
            let v = match &f.body {
                FieldBody::Leaf(alts) => leaf_to_json(alts),
                FieldBody::Nested(n) => node_to_json(n),
            };
            (f.name.clone(), v)
        })
        .collect();
    if let Some(branches) = &node.or {
        entries.push((
            "$or".to_string(),
            Json::Array(branches.iter().map(node_to_json).collect()),
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Json::Object(entries.into_iter().collect::<Map<String, Json>>())
}

/// A leaf's condition list as JSON (`["a", {"prefix": "b"}]`).
pub(crate) fn leaf_to_json(alts: &[Alt]) -> Json {
    Json::Array(alts.iter().map(alt_to_json).collect())
}

fn alt_to_json(alt: &Alt) -> Json {
    if let [Cond::Exact(lit)] = alt.conds.as_slice() {
        return lit_to_json(lit);
    }
    let mut m = Map::new();
    let mut conds: Vec<(String, Json)> = alt.conds.iter().map(cond_to_json).collect();
    conds.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in conds {
        m.insert(k, v);
    }
    Json::Object(m)
}

pub(crate) fn lit_to_json(lit: &Lit) -> Json {
    match lit {
        Lit::Null => Json::Null,
        Lit::Bool(b) => Json::Bool(*b),
        Lit::Num(n) => n.to_json(),
        Lit::Str(s) => Json::String(s.clone()),
    }
}

fn affix_to_json(a: &Affix) -> Json {
    if a.ignore_case {
        serde_json::json!({"equals-ignore-case": a.text})
    } else {
        Json::String(a.text.clone())
    }
}

fn one_or_many(items: Vec<Json>) -> Json {
    if items.len() == 1 {
        items.into_iter().next().unwrap_or(Json::Null)
    } else {
        Json::Array(items)
    }
}

/// One condition as `(operator name, argument)`; exact literals use the name "=".
pub(crate) fn cond_to_json(c: &Cond) -> (String, Json) {
    let (name, arg) = match c {
        Cond::Exact(lit) => ("=", lit_to_json(lit)),
        Cond::Prefix(a) => ("prefix", affix_to_json(a)),
        Cond::Suffix(a) => ("suffix", affix_to_json(a)),
        Cond::EqualsIgnoreCase(s, _) => ("equals-ignore-case", Json::String(s.clone())),
        Cond::Wildcard(w) => ("wildcard", Json::String(w.source.clone())),
        Cond::AnythingBut(ab) => (
            "anything-but",
            match ab {
                AnythingBut::Values(v) => one_or_many(v.iter().map(lit_to_json).collect()),
                AnythingBut::Prefix(s) => serde_json::json!({"prefix": s}),
                AnythingBut::Suffix(s) => serde_json::json!({"suffix": s}),
                AnythingBut::EqualsIgnoreCase(v) => {
                    serde_json::json!({"equals-ignore-case": one_or_many(v.iter().map(|(s, _)| Json::String(s.clone())).collect())})
                }
                AnythingBut::Wildcard(v) => {
                    serde_json::json!({"wildcard": one_or_many(v.iter().map(|w| Json::String(w.source.clone())).collect())})
                }
            },
        ),
        Cond::Numeric(n) => ("numeric", n.to_json()),
        Cond::Exists(b) => ("exists", Json::Bool(*b)),
        Cond::Cidr(c) => ("cidr", Json::String(c.source.clone())),
        Cond::Custom(c) => return (c.name.clone(), c.arg.clone()),
    };
    (name.to_string(), arg)
}
