//! `sub check`: validates subscription files locally, without a router.
//!
//! Each file goes through two gates, in order:
//! 1. the JSON Schema shipped in `schemas/subscription.schema.json` (draft
//!    2020-12, embedded here, the same file editors validate YAML with): each
//!    error names the field by its JSON pointer and the rule (the schema
//!    keyword) it breaks;
//! 2. when the schema passes, the checks a router runs on `sub.add`: the
//!    model's ([`Subscription::from_json`]) and the matcher's pattern
//!    compilation. Custom operators (WebAssembly plugins) are not known here:
//!    their names are accepted with any argument and listed in the output,
//!    since only a router that has the plugin can check the argument.
//!
//! It prints one JSON line per file (`{"file", "valid", ...}`) and exits 0
//! when every file is valid, 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value as Json, json};
use signalbox_matcher::{CustomOperator, OperatorRegistry, PreparedOperator};
use signalbox_model::{FieldError, Subscription};

/// The schema, as shipped in the repository.
pub(crate) const SCHEMA: &str = include_str!("../../../../schemas/subscription.schema.json");

/// One schema error: where (a JSON pointer into the document), which rule
/// (the schema keyword), and the validator's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaError {
    pub(crate) pointer: String,
    pub(crate) rule: String,
    pub(crate) message: String,
}

/// The compiled schema, once per process.
fn validator() -> Result<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Json = serde_json::from_str(SCHEMA).map_err(|e| e.to_string())?;
            jsonschema::draft202012::new(&schema).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow!("the embedded subscription schema is broken: {e}"))
}

/// The schema's verdict on a document: every error, empty when it passes.
/// An unexpected or a missing field is reported at its own pointer (the
/// validator puts it at the object that holds it).
pub(crate) fn schema_errors(doc: &Json) -> Result<Vec<SchemaError>> {
    let mut out = Vec::new();
    for e in validator()?.iter_errors(doc) {
        let pointer = e.instance_path().as_str().to_string();
        let rule = e
            .schema_path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let message = e.to_string();
        match e.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                for field in unexpected {
                    let token = field.replace('~', "~0").replace('/', "~1");
                    out.push(SchemaError {
                        pointer: format!("{pointer}/{token}"),
                        rule: rule.clone(),
                        message: format!("unknown field {field:?} ({message})"),
                    });
                }
            }
            jsonschema::error::ValidationErrorKind::Required { property } => {
                let field = property.as_str().unwrap_or_default();
                let token = field.replace('~', "~0").replace('/', "~1");
                out.push(SchemaError {
                    pointer: format!("{pointer}/{token}"),
                    rule,
                    message,
                });
            }
            _ => out.push(SchemaError {
                pointer,
                rule,
                message,
            }),
        }
    }
    Ok(out)
}

/// The router's verdict on a document: the subscription and the custom
/// operators it uses, or the first error, naming the field.
pub(crate) fn model_check(doc: &Json) -> Result<(Subscription, Vec<String>), FieldError> {
    let sub = Subscription::from_json(doc)?;
    let mut custom = Vec::new();
    for spec in &sub.signals {
        collect_custom(&spec.pattern, &mut custom);
    }
    custom.sort();
    custom.dedup();
    let mut registry = OperatorRegistry::default();
    for name in &custom {
        registry
            .register(Arc::new(Unchecked(name.clone())))
            .map_err(|e| FieldError::new("where", e))?;
    }
    // The router's own compile step, so the errors are the router's.
    signalbox_router::pipeline::catalog::compile_patterns(&sub.signals, &registry)?;
    Ok((sub, custom))
}

/// The operator names in `pattern`'s leaves that are not built in.
fn collect_custom(pattern: &Json, out: &mut Vec<String>) {
    let builtin = OperatorRegistry::default();
    let Some(fields) = pattern.as_object() else {
        return;
    };
    for (key, value) in fields {
        match value {
            Json::Object(_) => collect_custom(value, out),
            // `$or` holds sub-patterns (or, in EventBridge, is a field whose
            // values are operator objects: those are checked either way).
            Json::Array(items) if key == "$or" => {
                for item in items {
                    collect_custom(item, out);
                }
            }
            Json::Array(items) => {
                for ops in items.iter().filter_map(Json::as_object) {
                    out.extend(ops.keys().filter(|k| !builtin.is_operator(k)).cloned());
                }
            }
            _ => {}
        }
    }
}

/// A custom operator known only by name: any argument is taken (the plugin
/// checks it in the router).
struct Unchecked(String);

#[derive(Debug)]
struct NeverTested;

impl CustomOperator for Unchecked {
    fn name(&self) -> &str {
        &self.0
    }
    fn prepare(&self, _arg: &Json) -> Result<Box<dyn PreparedOperator>, String> {
        Ok(Box::new(NeverTested))
    }
}

impl PreparedOperator for NeverTested {
    fn test(&self, _value: &signalbox_model::Value) -> Result<bool, String> {
        Err("a custom operator is not run by `sub check`".into())
    }
}

/// Reads a YAML or JSON document.
fn read_doc(path: &Path) -> Result<std::result::Result<Json, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(serde_yaml::from_str(&text).map_err(|e| format!("not valid YAML or JSON: {e}")))
}

/// The verdict on one file, as printed.
fn verdict(path: &Path) -> Result<Json> {
    let file = path.display().to_string();
    let doc = match read_doc(path)? {
        Ok(doc) => doc,
        Err(message) => {
            return Ok(
                json!({"file": file, "valid": false, "error": {"field": "", "message": message}}),
            );
        }
    };
    let schema = schema_errors(&doc)?;
    if !schema.is_empty() {
        let errors: Vec<Json> = schema
            .iter()
            .map(|e| json!({"pointer": e.pointer, "rule": e.rule, "message": e.message}))
            .collect();
        return Ok(json!({"file": file, "valid": false, "schema_errors": errors}));
    }
    Ok(match model_check(&doc) {
        Ok((sub, custom)) => json!({
            "file": file,
            "valid": true,
            "id": sub.id,
            "custom_operators": custom,
        }),
        Err(e) => json!({
            "file": file,
            "valid": false,
            "error": {"field": e.field, "message": e.rule},
        }),
    })
}

/// `sub check FILE...`.
pub fn run(files: &[PathBuf]) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for file in files {
        let v = verdict(file)?;
        if v["valid"] != true {
            code = ExitCode::from(1);
        }
        println!("{v}");
    }
    Ok(code)
}

#[cfg(test)]
#[path = "sub_check_tests.rs"]
mod tests;
