//! The writer against serde_json on generated values: the bytes must be equal.

use proptest::prelude::*;

use super::*;

/// Strings heavy in what JSON escapes, next to ASCII and multi-byte text.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('\u{0}', '\u{7f}'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('\u{1f}'),
        1 => Just('é'),
        1 => Just('\u{2028}'),
        1 => Just('😀'),
        1 => any::<char>(),
    ];
    proptest::collection::vec(ch, 0..40).prop_map(|cs| cs.into_iter().collect())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // Not finite too: serde_json writes `null` for those, and so must we.
        any::<f64>().prop_map(Value::Float),
        prop_oneof![Just(0.1), Just(-0.0), Just(1e300), Just(5e-324), Just(3.0)]
            .prop_map(Value::Float),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4).prop_map(Value::Object),
        ]
    })
}

fn map() -> impl Strategy<Value = Map> {
    proptest::collection::btree_map(text(), value(), 0..4)
}

fn payload() -> impl Strategy<Value = Option<serde_json::Value>> {
    proptest::option::of(value().prop_map(|v| v.to_json()))
}

fn signal_ref() -> impl Strategy<Value = SignalRef> {
    (
        text(),
        text(),
        text(),
        any::<u64>(),
        proptest::option::of(map()),
        payload(),
    )
        .prop_map(|(alias, name, id, seq, params, payload)| SignalRef {
            alias,
            name,
            id,
            seq,
            params,
            payload,
        })
}

fn firing() -> impl Strategy<Value = Firing> {
    (
        (text(), text(), any::<u64>(), any::<bool>(), text()),
        map(),
        proptest::collection::vec(signal_ref(), 0..3),
        any::<i64>(),
        proptest::option::of(text()),
    )
        .prop_map(
            |((firing_id, subscription, version, trigger, subject), params, signals, at, tp)| {
                Firing {
                    firing_id,
                    subscription,
                    version,
                    action: if trigger {
                        ActionKind::Trigger
                    } else {
                        ActionKind::Publish
                    },
                    subject,
                    params,
                    signals,
                    created_at_ms: at,
                    traceparent: tp,
                }
            },
        )
}

fn producer() -> impl Strategy<Value = Producer> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(|(workflow, run, step, extra)| Producer {
            workflow,
            run,
            step,
            extra,
        })
}

fn instance() -> impl Strategy<Value = SignalInstance> {
    let signal = (
        text(),
        proptest::option::of(text()),
        map(),
        payload(),
        proptest::option::of(text()),
        proptest::option::of(producer()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(name, id, params, payload, source, producer, occurred_at)| Signal {
                name,
                id,
                params,
                payload,
                source,
                producer,
                occurred_at,
            },
        );
    let origin = (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(|(transport, address, adapter, details)| Origin {
            transport,
            address,
            adapter,
            details,
        });
    (any::<u64>(), text(), any::<i64>(), signal, origin).prop_map(
        |(seq, id, received_at_ms, signal, origin)| SignalInstance {
            seq,
            id,
            received_at_ms,
            signal,
            origin,
        },
    )
}

fn same<T: WriteJson + serde::Serialize>(value: &T) -> Result<(), TestCaseError> {
    let ours = to_vec(value, 0);
    let theirs = serde_json::to_vec(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs)
    );
    prop_assert_eq!(ours, theirs);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn firings_are_written_as_serde_json_writes_them(f in firing()) {
        same(&f)?;
    }

    #[test]
    fn instances_are_written_as_serde_json_writes_them(i in instance()) {
        same(&i)?;
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them(s in text()) {
        same(&Value::String(s))?;
    }
}

#[test]
fn every_byte_in_every_position_of_a_word() {
    // The eight-byte test must flag exactly the words with a byte to escape,
    // wherever in the word that byte is.
    for b in 0u8..=0x7f {
        for pos in 0..8 {
            let mut word = *b"abcdefgh";
            word[pos] = b;
            let expect = ESCAPE[usize::from(b)] != 0;
            assert_eq!(
                needs_escape(u64::from_le_bytes(word)),
                expect,
                "byte {b:#x} at {pos}"
            );
        }
    }
    // Bytes of multi-byte characters (0x80 and up) are copied as they are.
    assert!(!needs_escape(u64::from_le_bytes([
        0x80, 0xff, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80
    ])));
    let s: String = (0u8..=0x7f).map(char::from).collect::<String>() + "é😀\u{7f}";
    let ours = to_vec(&Value::String(s.clone()), 0);
    assert_eq!(ours, serde_json::to_vec(&s).expect("serde_json"));
}
