//! `pattern test` and `pattern check`: the matcher, locally, on files.
//!
//! `test` prints `{"matches": bool, "explain": [...]}` and exits 0 whether or not
//! the pattern matches; it exits 1 only for invalid input, with the error.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern};
use signalbox_model::{Limits, Signal, Value};

fn read_doc(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not valid JSON or YAML", path.display()))
}

fn invalid(what: &str, message: String) -> ExitCode {
    println!(
        "{}",
        json!({"error": {"code": "invalid", "in": what, "message": message}})
    );
    ExitCode::from(1)
}

/// `pattern test`.
pub fn test(pattern: &Path, signal: &Path) -> Result<ExitCode> {
    let p = match Pattern::parse(&read_doc(pattern)?, &OperatorRegistry::default()) {
        Ok(p) => p,
        Err(e) => return Ok(invalid("pattern", e.to_string())),
    };
    let doc = read_doc(signal)?;
    // A whole signal (with `name`) or just a params object.
    let params = if doc.get("name").is_some_and(serde_json::Value::is_string) {
        match Signal::from_json(doc, &Limits::default()) {
            Ok(s) => s.params,
            Err(e) => return Ok(invalid("signal", e.to_string())),
        }
    } else {
        match Value::from_json(&doc, "params") {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Ok(invalid("signal", "params: expected a JSON object".into())),
            Err(e) => return Ok(invalid("signal", e.to_string())),
        }
    };
    let engine = Engine::new();
    engine.add("pattern", p);
    let explanation = engine
        .explain("pattern", &params)
        .context("the pattern was just added")?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"matches": explanation.matched, "explain": explanation.conditions})
        )?
    );
    Ok(ExitCode::SUCCESS)
}

/// `pattern check`.
pub fn check(pattern: &Path) -> Result<ExitCode> {
    match Pattern::parse(&read_doc(pattern)?, &OperatorRegistry::default()) {
        Ok(p) => {
            println!("{}", json!({"valid": true, "pattern": p.to_json()}));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(invalid("pattern", e.to_string())),
    }
}
