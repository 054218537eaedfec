//! The `semver` operator: matches a version string against a range.
//!
//! Argument: a JSON string holding a range in npm/cargo style, comparators
//! separated by spaces or commas (`">=2.1.0 <3"`, `"^1.2"`, `"~1.4.2"`), and
//! alternatives separated by `||` (`">=1.0 <2 || >=3"`). Value: a string version
//! (`"2.3.1"`, `"v2.3.1"`; a missing minor or patch counts as 0). A value that is
//! not a string does not match; a string that is not a version is an error.

use exports::signalbox::plugin::conditions::{
    Condition, Guest as ConditionsGuest, GuestCondition, Value,
};
use semver::{Version, VersionReq};

wit_bindgen::generate!({ world: "operator", path: "../../../wit" });

struct Plugin;

impl Guest for Plugin {
    fn describe() -> Description {
        Description {
            name: "semver".into(),
            argument_shape: "a version range string, e.g. \">=2.1.0 <3\" or \"^1.2 || >=3\"; the value is a version string".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl ConditionsGuest for Plugin {
    type Condition = Range;
}

/// A parsed range: any alternative matching is a match.
struct Range {
    alternatives: Vec<VersionReq>,
}

fn parse_req(text: &str) -> Result<VersionReq, String> {
    // Spaces separate comparators in npm style; the semver crate wants commas.
    let mut parts: Vec<String> = Vec::new();
    for token in text.split([',', ' ']).filter(|t| !t.is_empty()) {
        // Join an operator written apart from its version (">= 2.1").
        if let Some(last) = parts.last_mut()
            && last.chars().all(|c| "<>=~^".contains(c))
        {
            last.push_str(token);
            continue;
        }
        parts.push(token.to_string());
    }
    if parts.is_empty() {
        return Err("the range is empty".into());
    }
    VersionReq::parse(&parts.join(", ")).map_err(|e| format!("not a version range ({text:?}): {e}"))
}

fn parse_version(text: &str) -> Result<Version, String> {
    let t = text.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let core_end = t.find(['-', '+']).unwrap_or(t.len());
    let dots = t[..core_end].matches('.').count();
    let padded = match dots {
        0 => format!("{}.0.0{}", &t[..core_end], &t[core_end..]),
        1 => format!("{}.0{}", &t[..core_end], &t[core_end..]),
        _ => t.to_string(),
    };
    Version::parse(&padded).map_err(|e| format!("not a version ({text:?}): {e}"))
}

impl GuestCondition for Range {
    fn prepare(argument: String) -> Result<Condition, String> {
        let arg: serde_json::Value = serde_json::from_str(&argument)
            .map_err(|e| format!("the argument is not JSON: {e}"))?;
        let serde_json::Value::String(text) = arg else {
            return Err("the argument must be a string range like \">=2.1.0 <3\"".into());
        };
        let alternatives = text
            .split("||")
            .map(parse_req)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Condition::new(Range { alternatives }))
    }

    fn test(&self, value: Value) -> Result<bool, String> {
        let Value::Text(text) = value else {
            return Ok(false);
        };
        let version = parse_version(&text)?;
        Ok(self.alternatives.iter().any(|r| r.matches(&version)))
    }
}

export!(Plugin);
