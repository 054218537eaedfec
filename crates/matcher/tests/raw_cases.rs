//! The matching case files (`tests/cases/matching/*.yaml` at the repository
//! root) run through the raw-bytes entry points: each case's params, written
//! as JSON bytes, alone and inside a signal body, must match exactly when the
//! case says so, with one engine per pattern and with one engine holding
//! every pattern of every file.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde::Deserialize;
use signalbox_matcher::{Engine, OperatorRegistry, Pattern};
use signalbox_model::Limits;

#[derive(Deserialize)]
struct Entry {
    name: String,
    pattern: serde_json::Value,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Case {
    params: serde_json::Value,
    expected: bool,
}

fn load() -> Vec<(String, Entry)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/matching");
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

#[test]
fn case_files_through_raw_bytes() {
    let entries = load();
    let ops = OperatorRegistry::default();
    let limits = Limits::default();
    let all = Engine::new();
    let mut checked = 0;
    for (i, (_, entry)) in entries.iter().enumerate() {
        if entry.error.is_none() {
            all.add(
                &format!("e{i}"),
                Pattern::parse(&entry.pattern, &ops).unwrap(),
            );
        }
    }
    for (i, (file, entry)) in entries.iter().enumerate() {
        if entry.error.is_some() {
            continue;
        }
        let label = format!("{file}: {}", entry.name);
        let one = Engine::new();
        one.add("p", Pattern::parse(&entry.pattern, &ops).unwrap());
        let id = format!("e{i}");
        for case in &entry.cases {
            let params = serde_json::to_vec(&case.params).unwrap();
            let body = format!(
                r#"{{"name":"case","params":{}}}"#,
                String::from_utf8_lossy(&params)
            );
            let alone = one.matches_params_json(&params, &limits).unwrap();
            assert_eq!(!alone.is_empty(), case.expected, "{label}: {}", case.params);
            let in_body = one.matches_signal_json(body.as_bytes(), &limits).unwrap();
            assert_eq!(in_body, alone, "{label}: {}", case.params);
            let among_all = all.matches_params_json(&params, &limits).unwrap();
            assert_eq!(
                among_all.iter().any(|m| **m == *id),
                case.expected,
                "{label} among all patterns: {}",
                case.params
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases found");
}
