//! Runs the matching case files `tests/cases/matching/*.yaml`.
//!
//! Each file is a list of entries `{name, pattern, cases: [{params, expected}]}`
//! or `{name, pattern, error: "<path>"}` for patterns that must be rejected
//! with an error at that path. Every case is checked three ways: the naive
//! evaluator, an engine holding only that pattern, and an engine holding every
//! pattern of every file (so the index cannot be fooled by neighbours); and
//! `explain` must agree on `matched`.

#![allow(clippy::unwrap_used)]

// The case files' entries and loader, shared with the matcher crate's
// `raw_cases` test.
#[path = "../crates/matcher/tests/support/cases.rs"]
mod cases;

use cases::{load, to_map};
use signalbox_matcher::{Engine, OperatorRegistry, Pattern, explain, naive};

#[test]
fn case_files() {
    let entries = load();
    let ops = OperatorRegistry::default();
    let all = Engine::new();
    let mut parsed = Vec::new();
    let mut checked = 0;
    for (i, (file, entry)) in entries.iter().enumerate() {
        let label = format!("{file}: {}", entry.name);
        match (&entry.error, Pattern::parse(&entry.pattern, &ops)) {
            (Some(path), Err(e)) => {
                assert_eq!(&e.path, path, "{label}: wrong error path: {e}");
                assert!(!e.problem.is_empty());
                checked += 1;
            }
            (Some(path), Ok(_)) => {
                panic!("{label}: expected an error at {path}, but the pattern parsed")
            }
            (None, Err(e)) => panic!("{label}: pattern rejected: {e}"),
            (None, Ok(p)) => {
                let again = Pattern::parse(&p.to_json(), &ops)
                    .unwrap_or_else(|e| panic!("{label}: to_json does not re-parse: {e}"));
                assert_eq!(
                    again.to_json(),
                    p.to_json(),
                    "{label}: to_json is not canonical"
                );
                let id = format!("{i:04}");
                all.add(&id, p.clone());
                parsed.push((label, id, p, &entry.cases));
            }
        }
    }
    for (label, id, p, cases) in &parsed {
        let single = Engine::new();
        single.add(id, p.clone());
        for (k, case) in cases.iter().enumerate() {
            let params = to_map(&case.params);
            let what = format!("{label} case {k} {}", case.params);
            assert_eq!(naive::matches(p, &params), case.expected, "naive: {what}");
            assert_eq!(
                !single.matches(&params).is_empty(),
                case.expected,
                "engine: {what}"
            );
            assert_eq!(
                all.matches(&params).contains(id),
                case.expected,
                "shared engine: {what}"
            );
            assert_eq!(
                explain(p, &params).matched,
                case.expected,
                "explain: {what}"
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} checks ran");
}
