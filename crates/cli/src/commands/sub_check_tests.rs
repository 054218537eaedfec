//! Cases for `sub check`: the shipped examples pass both gates, each bad
//! file fails the schema at the field it names, and on every subscription
//! the tests use the schema and the router's checks agree, except where the
//! router rejects for a reason a schema cannot see (listed below, each with
//! that reason).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde_json::{Value as Json, json};

use super::{model_check, schema_errors};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

fn read_yaml(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path)?;
    serde_yaml::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() -> Result<()> {
    let schema: Json = serde_json::from_str(super::SCHEMA)?;
    jsonschema::draft202012::meta::validate(&schema)
        .map_err(|e| anyhow::anyhow!("schema against its meta-schema: {e}"))?;
    ensure!(
        schema_errors(&json!({}))?
            .iter()
            .any(|e| e.rule == "required")
    );
    Ok(())
}

#[test]
fn every_example_subscription_is_valid() -> Result<()> {
    let files = yaml_files(&root().join("examples/subscriptions"))?;
    ensure!(!files.is_empty(), "no examples found");
    for file in files {
        let doc = read_yaml(&file)?;
        let errors = schema_errors(&doc)?;
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        if let Err(e) = model_check(&doc) {
            panic!("{}: {}: {}", file.display(), e.field, e.rule);
        }
    }
    Ok(())
}

/// Each file in `tests/fixtures/bad-subscriptions` says on its first line
/// which field is wrong (`# field: /action/trigger/subject`, or `# field: (…)`
/// for the document as a whole); the schema must fail it there.
#[test]
fn bad_files_fail_the_schema_at_the_field_they_name() -> Result<()> {
    let files = yaml_files(&root().join("crates/cli/tests/fixtures/bad-subscriptions"))?;
    ensure!(files.len() >= 10, "too few bad files: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let named = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# field: "))
            .and_then(|l| l.split_whitespace().next())
            .with_context(|| format!("{}: no `# field:` line", file.display()))?;
        let pointer = if named.starts_with('(') { "" } else { named };
        let doc: Json = serde_yaml::from_str(&text)?;
        let errors = schema_errors(&doc)?;
        assert!(
            errors.iter().any(|e| e.pointer == pointer),
            "{}: expected an error at {pointer:?}, got {errors:#?}",
            file.display()
        );
    }
    Ok(())
}

/// The subscription documents written in the end-to-end and CLI tests: the
/// string literals that hold a YAML document with `id:` and `action` (format
/// strings left out: their braces are not the document's).
fn documents_in_tests() -> Result<Vec<(String, Json)>> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    for dir in ["tests", "crates/cli/tests"] {
        let dir = root().join(dir);
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        let source = std::fs::read_to_string(&file)?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        for (offset, literal) in string_literals(&source) {
            let before = source[..offset].trim_end();
            if before.ends_with("format!(")
                || !literal.contains("id:")
                || !literal.contains("action")
            {
                continue;
            }
            let Ok(doc) = serde_yaml::from_str::<Json>(&literal) else {
                continue;
            };
            if doc.get("id").is_some() {
                let id = doc["id"].as_str().unwrap_or("?").to_string();
                out.push((format!("{stem}: {id}"), doc));
            }
        }
    }
    Ok(out)
}

/// The string literals of a Rust source (raw `r#"…"#` and plain `"…"` with
/// the usual escapes), each with its byte offset.
fn string_literals(source: &str) -> Vec<(usize, String)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if source[i..].starts_with("//") {
            i += source[i..].find('\n').unwrap_or(source.len() - i);
        } else if source[i..].starts_with("r#\"") {
            let start = i + 3;
            let end = source[start..]
                .find("\"#")
                .map_or(source.len(), |e| start + e);
            out.push((i, source[start..end].to_string()));
            i = end + 2;
        } else if bytes[i] == b'\'' && i + 2 < bytes.len() && bytes[i + 2] == b'\'' {
            i += 3; // a char literal such as '"'
        } else if bytes[i] == b'"' {
            let mut text = String::new();
            let mut chars = source[i + 1..].char_indices();
            let mut end = source.len();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        end = i + 1 + k;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('\n') => {
                            // A line continuation skips the next line's indent.
                            let rest = chars.as_str();
                            let skip = rest.len() - rest.trim_start().len();
                            for _ in 0..rest[..skip].chars().count() {
                                chars.next();
                            }
                        }
                        Some(other) => text.push(other),
                        None => {}
                    },
                    c => text.push(c),
                }
            }
            out.push((i, text));
            i = end + 1;
        } else {
            i += source[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Documents the router rejects for a reason the schema cannot see, by name,
/// with that reason. Any other disagreement fails the case.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "matching/invalid: dotted and nested duplicate",
        "`a.b` and `a: {b}` name the same field twice: a schema checks keys one by one",
    ),
    (
        "matching/or: one branch is an error",
        "a one-item `$or` list reads, to a schema, as a field whose value is a custom operator object",
    ),
    (
        "matching/cidr: bad prefix length",
        "a CIDR block's numbers (prefix length, address) are checked by the router's parser",
    ),
    (
        "matching/cidr: not an address",
        "a CIDR block's numbers (prefix length, address) are checked by the router's parser",
    ),
    (
        "matching/numeric: empty range",
        "comparing the two bounds' values is beyond a schema",
    ),
    (
        "cli: twice",
        "an alias given to two signals: a schema cannot compare the items of a list by one field",
    ),
];

/// Every pattern of `tests/cases/matching`, as the `where` of a
/// subscription, named `matching/<file>: <case>`.
fn documents_from_matching_cases() -> Result<Vec<(String, Json)>> {
    let mut out = Vec::new();
    for file in yaml_files(&root().join("tests/cases/matching"))? {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let cases = read_yaml(&file)?;
        for case in cases.as_array().context("a list of cases")? {
            let name = case["name"].as_str().unwrap_or("?");
            let doc = json!({
                "id": "case",
                "signal": "s",
                "where": case["pattern"],
                "action": {"publish": {"subject": "runs.case"}},
            });
            out.push((format!("matching/{stem}: {name}"), doc));
        }
    }
    Ok(out)
}

#[test]
fn the_schema_and_the_router_agree_on_every_test_subscription() -> Result<()> {
    let mut docs = documents_from_matching_cases()?;
    let from_tests = documents_in_tests()?;
    ensure!(
        from_tests.len() >= 20,
        "found only {} subscriptions in the tests",
        from_tests.len()
    );
    docs.extend(from_tests);
    for file in yaml_files(&root().join("examples/subscriptions"))? {
        docs.push((file.display().to_string(), read_yaml(&file)?));
    }
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut differences = Vec::new();
    let mut seen_known = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for (name, doc) in &docs {
        let schema = schema_errors(doc)?;
        let model = model_check(doc);
        match (schema.is_empty(), &model) {
            (true, Ok(_)) => valid += 1,
            (false, Err(_)) => invalid += 1,
            (schema_ok, _) => {
                if known.contains_key(name.as_str()) {
                    seen_known.push(name.clone());
                } else {
                    let model = model
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| format!("{}: {}", e.field, e.rule));
                    differences.push(format!(
                        "{name}: schema {} {schema:?}, router {model:?}",
                        if schema_ok { "accepts" } else { "rejects" }
                    ));
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "the schema and the router disagree on:\n{}",
        differences.join("\n")
    );
    // Each listed difference still happens (a stale entry is a defect too).
    let mut stale: Vec<&str> = known
        .keys()
        .filter(|k| !seen_known.iter().any(|s| s == *k))
        .copied()
        .collect();
    stale.sort();
    assert!(
        stale.is_empty(),
        "listed differences that no longer differ: {stale:?}"
    );
    eprintln!(
        "{} documents: {valid} valid and {invalid} invalid for both, {} known differences",
        docs.len(),
        seen_known.len()
    );
    ensure!(
        valid > 20 && invalid > 5,
        "{valid} valid, {invalid} invalid"
    );
    Ok(())
}
