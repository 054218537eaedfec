//! `docs/SUBSCRIPTIONS.md` as a case file, so the reference stays true.
//!
//! Every fenced block of the page tagged `yaml` or `json` must parse as a
//! subscription, every `yaml wait` block as a wait. Every row of an error table
//! (`| snippet | message |`, after an HTML comment `<!-- errors base: DOC -->` or
//! `<!-- wait errors base: DOC -->`) is the base document with the snippet's
//! top-level keys put in (a `~` value takes the key out), and must be rejected
//! with the message shown (a message ending in `…` is a prefix). Rows whose
//! field is a pattern (`where`, `match_params`, also inside `signals[i]`) are
//! rejected by the matcher when the router compiles the subscription, not by
//! this crate: for those the model must accept the document, and the text is
//! the matcher's to keep.

use serde_json::Value as Json;
use signalbox_model::subscription::SUBSCRIPTION_FIELDS;
use signalbox_model::{FieldError, Subscription, Wait};

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/SUBSCRIPTIONS.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// `carry` (docs/DESIGN.md section 9) is documented with the firing message it
/// shapes; until the model lists it among the subscription fields, an example
/// is checked without it, and its value must still be one the page allows.
fn without_unknown_carry(mut json: Json) -> Result<Json, String> {
    if SUBSCRIPTION_FIELDS.contains(&"carry") {
        return Ok(json);
    }
    if let Some(obj) = json.as_object_mut()
        && let Some(carry) = obj.remove("carry")
        && !matches!(carry.as_str(), Some("full" | "params" | "refs"))
    {
        return Err(format!("carry: {carry} is not full, params or refs"));
    }
    Ok(json)
}

fn yaml(text: &str) -> Result<Json, String> {
    serde_yaml::from_str(text).map_err(|e| format!("not YAML: {e}"))
}

fn subscription(json: Json) -> Result<(), String> {
    let json = without_unknown_carry(json)?;
    Subscription::from_json(&json)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn wait(json: Json) -> Result<(), String> {
    Wait::from_json(&json).map(drop).map_err(|e| e.to_string())
}

/// A fenced block: its info string, its first line number, its text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = page.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut text = String::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            text.push_str(l);
            text.push('\n');
        }
        out.push(Block {
            info: info.trim().to_string(),
            line: n + 1,
            text,
        });
    }
    out
}

/// An error-table row: the line number, its base document (and whether it is
/// a wait), the snippet and the message.
struct Row {
    line: usize,
    wait: bool,
    base: String,
    snippet: String,
    message: String,
}

/// The text of a table cell that is one code span (`x` or ``x``).
fn code(cell: &str) -> Option<String> {
    let cell = cell.trim();
    if let Some(inner) = cell.strip_prefix("``").and_then(|c| c.strip_suffix("``")) {
        return Some(inner.trim().to_string());
    }
    cell.strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .map(str::to_string)
}

fn rows(page: &str) -> Result<Vec<Row>, String> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let line = line.trim();
        let (wait, base) = if let Some(b) = line.strip_prefix("<!-- errors base:") {
            (false, b)
        } else if let Some(b) = line.strip_prefix("<!-- wait errors base:") {
            (true, b)
        } else {
            continue;
        };
        let base = base
            .strip_suffix("-->")
            .ok_or(format!("line {}: base comment not closed", n + 1))?
            .trim()
            .to_string();
        let table: Vec<(usize, &str)> = lines
            .iter()
            .enumerate()
            .skip(n + 1)
            .skip_while(|(_, l)| l.trim().is_empty())
            .take_while(|(_, l)| l.starts_with('|'))
            .skip(2) // the header and the separator
            .map(|(i, l)| (i, *l))
            .collect();
        if table.is_empty() {
            return Err(format!("line {}: no table rows follow the base", n + 1));
        }
        for (i, l) in table {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").collect();
            let [snippet, message] = cells.as_slice() else {
                return Err(format!("line {}: expected two cells", i + 1));
            };
            let (Some(snippet), Some(message)) = (code(snippet), code(message)) else {
                return Err(format!("line {}: each cell must be one code span", i + 1));
            };
            out.push(Row {
                line: i + 1,
                wait,
                base: base.clone(),
                snippet,
                message,
            });
        }
    }
    Ok(out)
}

/// True when the message's field is a pattern, which the matcher checks.
fn is_pattern_field(message: &str) -> bool {
    let field = message.split(": ").next().unwrap_or_default();
    let field = match field.strip_prefix("signals[") {
        Some(rest) => rest.split_once("].").map_or("", |(_, f)| f),
        None => field,
    };
    ["where", "match_params"].iter().any(|p| {
        field == *p || field.starts_with(&format!("{p}.")) || field.starts_with(&format!("{p}["))
    })
}

fn check_row(row: &Row) -> Result<(), String> {
    let mut doc = yaml(&row.base)?;
    let snippet = yaml(&row.snippet)?;
    let (Some(doc_obj), Some(changes)) = (doc.as_object_mut(), snippet.as_object()) else {
        return Err("base and snippet must be mappings".into());
    };
    for (k, v) in changes {
        if v.is_null() {
            doc_obj.remove(k);
        } else {
            doc_obj.insert(k.clone(), v.clone());
        }
    }
    let result = if row.wait {
        Wait::from_json(&doc).map(drop)
    } else {
        Subscription::from_json(&doc).map(drop)
    };
    match result {
        Err(e) => {
            let actual = FieldError::to_string(&e);
            let matches = match row.message.strip_suffix('…') {
                Some(prefix) => actual.starts_with(prefix),
                None => actual == row.message,
            };
            if matches {
                Ok(())
            } else {
                Err(format!(
                    "the page says\n    {}\n  the model says\n    {actual}",
                    row.message
                ))
            }
        }
        Ok(()) if is_pattern_field(&row.message) => Ok(()),
        Ok(()) => Err(format!(
            "the model accepts it, but the page says\n    {}",
            row.message
        )),
    }
}

#[test]
fn every_example_of_the_page_parses() {
    let page = page();
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in blocks(&page) {
        let result = match block.info.as_str() {
            "yaml" => yaml(&block.text).and_then(subscription),
            "json" => serde_json::from_str(&block.text)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(subscription),
            "yaml wait" => yaml(&block.text).and_then(wait),
            _ => continue,
        };
        checked += 1;
        if let Err(e) = result {
            failures.push(format!("block at line {}: {e}", block.line));
        }
    }
    assert!(
        checked >= 10,
        "only {checked} examples found: is the page's format still what this test reads?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_row_of_the_page_is_the_codes_error() {
    let page = page();
    let rows = rows(&page).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rows.len() >= 50,
        "only {} error rows found: is the page's format still what this test reads?",
        rows.len()
    );
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            check_row(row)
                .err()
                .map(|e| format!("row at line {} (`{}`): {e}", row.line, row.snippet))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_row_reader_sees_through_code_spans() {
    assert_eq!(code("`a: 1`").as_deref(), Some("a: 1"));
    assert_eq!(code(" ``x: `y` `` ").as_deref(), Some("x: `y`"));
    assert_eq!(code("plain"), None);
    assert!(is_pattern_field("where.rows[0].numeric: bad"));
    assert!(is_pattern_field("signals[1].where.x: bad"));
    assert!(is_pattern_field("match_params: give either"));
    assert!(!is_pattern_field("signals[1].as: bad"));
    assert!(!is_pattern_field("join.on: bad"));
}
