//! The matching case files (`tests/cases/matching/*.yaml` at the repository
//! root) run through the raw-bytes entry points: each case's params, written
//! as JSON bytes, alone and inside a signal body, must match exactly when the
//! case says so, with one engine per pattern and with one engine holding
//! every pattern of every file.

#![allow(clippy::unwrap_used)]

mod support;

use signalbox_matcher::{Engine, OperatorRegistry, Pattern};
use signalbox_model::Limits;
use support::cases::load;

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
