//! The direct decode against the checked path on generated messages: when
//! the direct decode gives a signal, the checked path gives the same one; when
//! the checked path accepts an ordinary message, so does the direct decode.

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;
use crate::error::FieldError;

/// Small limits, so that generated params pass and break them.
fn limits() -> Limits {
    Limits {
        max_message_bytes: 600,
        max_params_fields: 6,
        max_depth: 3,
    }
}

fn params_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        prop_oneof![Just(0.5), Just(-2.0), Just(1e300), Just(1e-7)].prop_map(Json::from),
        "[a-z\"\\\\é]{0,6}".prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            proptest::collection::btree_map("[a-c]{1,2}", inner, 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// One field's text, or `None` to leave the field out.
fn field(valid: BoxedStrategy<Json>) -> impl Strategy<Value = Option<Json>> {
    prop_oneof![
        3 => Just(None),
        6 => valid.prop_map(Some),
        1 => Just(Some(Json::Null)),
        1 => Just(Some(json!(7))),
        1 => Just(Some(json!(["x"]))),
    ]
}

fn names() -> BoxedStrategy<Json> {
    prop_oneof![
        Just(json!("orders")),
        Just(json!("table.updated")),
        Just(json!("bad name")),
        Just(json!(".lead")),
        Just(json!("")),
    ]
    .boxed()
}

/// A message: fields in a generated order, sometimes an unknown one, and
/// sometimes a field written twice.
fn message() -> impl Strategy<Value = (String, bool)> {
    let fields = (
        field(names()),
        field(prop_oneof![Just(json!("a-1")), Just(json!("")), Just(json!("x\u{1}"))].boxed()),
        field(
            proptest::collection::btree_map("[a-c]{1,2}", params_value(), 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect()))
                .boxed(),
        ),
        field(params_value().boxed()),
        field(Just(json!("src")).boxed()),
        field(
            prop_oneof![
                Just(json!({"workflow": "w", "run": 3, "k": "v"})),
                Just(json!({"step": true})),
            ]
            .boxed(),
        ),
        field(
            prop_oneof![
                Just(json!("2026-11-26T04:00:00Z")),
                Just(json!("yesterday"))
            ]
            .boxed(),
        ),
    );
    (fields, any::<bool>(), any::<bool>(), any::<u64>()).prop_map(
        |((name, id, params, payload, source, producer, at), unknown, twice, order)| {
            let mut members: Vec<(&str, Json)> = [
                ("name", name),
                ("id", id),
                ("params", params),
                ("payload", payload),
                ("source", source),
                ("producer", producer),
                ("occurred_at", at),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            if unknown {
                members.push(("extra", json!(1)));
            }
            let repeated = twice && !members.is_empty();
            if repeated {
                let first = members[0].clone();
                members.push(first);
            }
            let n = members.len().max(1) as u64;
            members.rotate_left((order % n) as usize);
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", json!(k), v))
                .collect();
            (format!("{{{}}}", body.join(",")), repeated)
        },
    )
}

/// The checked path with a subject's name, as `Signal::parse_for_subject`
/// runs it after the direct decode declines.
fn checked(bytes: &[u8], subject_name: &str) -> Result<Signal, FieldError> {
    let mut json: Json = serde_json::from_slice(bytes)
        .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
    if let Json::Object(obj) = &mut json {
        match obj.get("name") {
            None if !subject_name.is_empty() => {
                obj.insert("name".into(), json!(subject_name));
            }
            Some(Json::String(n)) if !subject_name.is_empty() && n != subject_name => {
                return Err(FieldError::new("name", "differs from the subject's"));
            }
            _ => {}
        }
    }
    Signal::from_json(json, &limits())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_direct_decode_agrees_with_the_checked_path(
        (text, repeated) in message(),
        subject in prop_oneof![Just(""), Just("orders"), Just("other")],
    ) {
        let direct = decode(text.as_bytes(), &limits(), subject);
        let slow = checked(text.as_bytes(), subject);
        if let Some(signal) = &direct {
            prop_assert_eq!(Some(signal), slow.as_ref().ok(), "{}", text);
        }
        if slow.is_ok() && !repeated {
            prop_assert!(direct.is_some(), "declined a valid message: {}", text);
        }
        // Through the public entry point the result is the checked path's.
        if subject.is_empty() {
            prop_assert_eq!(Signal::parse(text.as_bytes(), &limits()), Signal::parse_checked(text.as_bytes(), &limits()));
        }
    }
}

#[test]
fn limits_are_counted_as_the_checked_path_counts_them() {
    let limits = limits();
    for (text, ok) in [
        (
            r#"{"name":"a","params":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}}"#,
            true,
        ),
        (
            r#"{"name":"a","params":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7}}"#,
            false,
        ),
        (r#"{"name":"a","params":{"a":[1,2,3,4,5]}}"#, true),
        (r#"{"name":"a","params":{"a":[1,2,3,4,5,6]}}"#, false),
        (r#"{"name":"a","params":{"a":{"b":{"c":1}}}}"#, true),
        (r#"{"name":"a","params":{"a":{"b":{"c":{"d":1}}}}}"#, false),
        (r#"{"name":"a","params":{"a":{"b":[1]}}}"#, true),
        (r#"{"name":"a","params":{"a":{"b":[[1]]}}}"#, false),
        (r#"{"name":"a","params":{"a":[{"b":1}]}}"#, true),
        (r#"{"name":"a","params":{"a":[{"b":{"c":1}}]}}"#, false),
        (r#"{"name":"a","params":{"a":[[1]]}}"#, true),
        (r#"{"name":"a","params":{"a":[[[1]]]}}"#, false),
        (r#"{"name":"a","params":{"a":1e999}}"#, false),
    ] {
        let slow = Signal::parse_checked(text.as_bytes(), &limits);
        assert_eq!(slow.is_ok(), ok, "checked path on {text}: {slow:?}");
        assert_eq!(decode(text.as_bytes(), &limits, "").is_some(), ok, "{text}");
    }
}
