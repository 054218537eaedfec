//! The matching case files, `tests/cases/matching/*.yaml` at the repository
//! root: each file is a list of entries `{name, pattern, cases: [{params,
//! expected}]}` or `{name, pattern, error: "<path>"}`. Read by the matcher
//! crate's `raw_cases` test and by the root suite's `matching_cases` (which
//! includes this file by path), so both run the same entries.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use signalbox_model::{Map, Value};

/// One entry of a case file.
#[derive(Deserialize)]
pub struct Entry {
    pub name: String,
    pub pattern: serde_json::Value,
    #[serde(default)]
    pub cases: Vec<Case>,
    /// The path of the error the pattern must be rejected with.
    #[serde(default)]
    pub error: Option<String>,
}

/// Params, and whether the entry's pattern matches them.
#[derive(Deserialize)]
pub struct Case {
    pub params: serde_json::Value,
    pub expected: bool,
}

/// Every entry of every case file, with its file's stem, files in name order.
/// The folder is found above the package being tested (the repository root,
/// or the matcher crate two levels below it).
pub fn load() -> Vec<(String, Entry)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/cases/matching"))
        .find(|d| d.is_dir())
        .expect("tests/cases/matching above the package");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let entries: Vec<Entry> =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        out.extend(entries.into_iter().map(|e| (stem.clone(), e)));
    }
    out
}

/// Params written as JSON (an object) as the model's map.
pub fn to_map(j: &serde_json::Value) -> Map {
    match Value::from_json(j, "params").unwrap() {
        Value::Object(m) => m,
        other => panic!("params must be an object, got {other}"),
    }
}
