//! Translation of Netflix Maestro's `match_params` form into pattern JSON.
//!
//! `{"watermark": {"value": 12345, "operator": ">="}}` becomes
//! `{"watermark": [{"numeric": [">=", 12345]}]}`. Operators: `=` (exact value:
//! number, string, boolean), `>`, `>=`, `<`, `<=` (numbers, or strings holding a
//! number), and `!=` (anything-but). The operator defaults to `=`. Keys may be
//! dotted paths. Invariant: the output is ordinary pattern JSON, validated by the
//! same parser as everything else.

use serde_json::{Map, Value as Json};

use super::parse::describe;
use crate::error::PatternError;

pub(crate) fn translate(json: &Json) -> Result<Json, PatternError> {
    let Json::Object(params) = json else {
        return Err(PatternError::new(
            "",
            format!(
                "match_params must be a JSON object, found {}",
                describe(json)
            ),
        ));
    };
    let mut out = Map::new();
    for (key, spec) in params {
        let Json::Object(spec) = spec else {
            return Err(PatternError::new(
                key,
                format!(
                    "expected {{\"value\": ..., \"operator\": ...}}, found {}",
                    describe(spec)
                ),
            ));
        };
        if let Some(extra) = spec.keys().find(|k| *k != "value" && *k != "operator") {
            return Err(PatternError::new(
                key,
                format!("unexpected key \"{extra}\"; expected \"value\" and \"operator\""),
            ));
        }
        let value = spec
            .get("value")
            .ok_or_else(|| PatternError::new(key, "missing \"value\""))?;
        let op = match spec.get("operator") {
            None => "=",
            Some(Json::String(s)) => s.as_str(),
            Some(other) => {
                return Err(PatternError::new(
                    &format!("{key}.operator"),
                    format!("expected a string, found {}", describe(other)),
                ));
            }
        };
        let cond = match op {
            "=" => match value {
                Json::Array(_) | Json::Object(_) => {
                    return Err(PatternError::new(
                        &format!("{key}.value"),
                        format!(
                            "expected a number, string or boolean, found {}",
                            describe(value)
                        ),
                    ));
                }
                v => v.clone(),
            },
            "!=" => serde_json::json!({"anything-but": value}),
            ">" | ">=" | "<" | "<=" => {
                let n = match value {
                    Json::Number(n) => Json::Number(n.clone()),
                    Json::String(s) => s
                        .trim()
                        .parse::<serde_json::Number>()
                        .map(Json::Number)
                        .map_err(|_| {
                            PatternError::new(
                                &format!("{key}.value"),
                                format!("operator \"{op}\" needs a number, found string \"{s}\""),
                            )
                        })?,
                    other => {
                        return Err(PatternError::new(
                            &format!("{key}.value"),
                            format!(
                                "operator \"{op}\" needs a number, found {}",
                                describe(other)
                            ),
                        ));
                    }
                };
                serde_json::json!({"numeric": [op, n]})
            }
            other => {
                return Err(PatternError::new(
                    &format!("{key}.operator"),
                    format!(
                        "unknown operator \"{other}\"; expected one of \"=\", \"!=\", \">\", \">=\", \"<\", \"<=\""
                    ),
                ));
            }
        };
        out.insert(key.clone(), Json::Array(vec![cond]));
    }
    Ok(Json::Object(out))
}
