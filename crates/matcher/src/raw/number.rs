//! The value of a JSON number, exactly as the model's parser (`serde_json`
//! into a `Value`) computes it, for the numbers some pattern reads.
//!
//! Integers are converted as `serde_json` does (a `u64` that is no `i64`
//! becomes a float, `-0` is the float `-0.0`). Decimals with at most 19
//! significant digits are computed with `serde_json`'s default algorithm
//! (the significand as an `f64`, then one multiplication or division by a
//! power of ten), which is not always correctly rounded; so that path is
//! only used once a self-check has seen the `serde_json` in this build
//! agree with it on inputs where that algorithm and correct rounding
//! differ (a build with its `float_roundtrip` feature would not). Every
//! other number, and every number when the check fails, is converted by
//! `serde_json` itself.

use std::sync::OnceLock;

use signalbox_model::Value;

use crate::view::Leaf;

/// Inputs on which `serde_json`'s default float algorithm and correct
/// rounding disagree, and plain ones.
const PROBES: [&str; 6] = [
    "23565.570606665771",
    "940187069899383.57",
    "-122.43463064933286",
    "37.779506609579194",
    "1.5e-7",
    "4.9e300",
];

/// The powers of ten `serde_json` divides or multiplies by, when the
/// self-check passed.
fn pow10() -> Option<&'static [f64; 309]> {
    static TABLE: OnceLock<Option<[f64; 309]>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut table = [0f64; 309];
            for (k, slot) in table.iter_mut().enumerate() {
                *slot = format!("1e{k}").parse().ok()?;
            }
            let agrees = PROBES.iter().all(|p| {
                let ours = decimal(p.as_bytes(), &table);
                let theirs = serde_json::from_str::<f64>(p).ok();
                ours.is_some() && ours.map(f64::to_bits) == theirs.map(f64::to_bits)
            });
            agrees.then_some(table)
        })
        .as_ref()
}

/// The value of a well-formed JSON number (checked by the scanner), as a
/// leaf; `None` if it is not finite or `serde_json` refuses it.
pub(crate) fn leaf(text: &[u8]) -> Option<Leaf<'static>> {
    if let Some(l) = fast(text) {
        return Some(l);
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Int(i)) => Some(Leaf::Int(i)),
        Ok(Value::Float(f)) => Some(Leaf::Float(f)),
        _ => None,
    }
}

/// The common cases, computed here.
fn fast(text: &[u8]) -> Option<Leaf<'static>> {
    let plain = !text.iter().any(|c| matches!(c, b'.' | b'e' | b'E'));
    if plain {
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let mut sig = 0u64;
        for &d in digits {
            sig = sig.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        return Some(if negative {
            let neg = (sig as i64).wrapping_neg();
            if neg >= 0 {
                Leaf::Float(-(sig as f64))
            } else {
                Leaf::Int(neg)
            }
        } else {
            i64::try_from(sig).map_or(Leaf::Float(sig as f64), Leaf::Int)
        });
    }
    decimal(text, pow10()?).map(Leaf::Float)
}

/// A decimal by `serde_json`'s default algorithm; `None` when the
/// significand overflows a `u64` or the exponent is out of the table.
fn decimal(text: &[u8], pow10: &[f64; 309]) -> Option<f64> {
    let (negative, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut sig = 0u64;
    let mut exponent = 0i32;
    let mut fraction = false;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        match c {
            b'0'..=b'9' => {
                sig = sig.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                if fraction {
                    exponent -= 1;
                }
            }
            b'.' => fraction = true,
            _ => break,
        }
        i += 1;
    }
    if let Some(b'e' | b'E') = rest.get(i) {
        let exp = rest.get(i + 1..)?;
        let (minus, digits) = match exp.split_first() {
            Some((b'-', d)) => (true, d),
            Some((b'+', d)) => (false, d),
            _ => (false, exp),
        };
        let mut e = 0i32;
        for &d in digits {
            e = e.checked_mul(10)?.checked_add(i32::from(d - b'0'))?;
        }
        exponent = if minus {
            exponent.checked_sub(e)?
        } else {
            exponent.checked_add(e)?
        };
    }
    let pow = *pow10.get(exponent.unsigned_abs() as usize)?;
    let mut f = sig as f64;
    if exponent >= 0 {
        f *= pow;
        if f.is_infinite() {
            return None;
        }
    } else {
        f /= pow;
    }
    Some(if negative { -f } else { f })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reference(text: &str) -> Option<Leaf<'static>> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Int(i)) => Some(Leaf::Int(i)),
            Ok(Value::Float(f)) => Some(Leaf::Float(f)),
            _ => None,
        }
    }

    fn same(a: Option<Leaf<'static>>, b: Option<Leaf<'static>>) -> bool {
        match (a, b) {
            (Some(Leaf::Float(x)), Some(Leaf::Float(y))) => x.to_bits() == y.to_bits(),
            (a, b) => a == b,
        }
    }

    #[test]
    fn the_self_check_passes_in_this_build() {
        assert!(pow10().is_some());
    }

    /// The first probes tell the two algorithms apart: correct rounding (a
    /// `serde_json` with `float_roundtrip`, or the standard library) gives
    /// another value, so the self-check would fail with such a build.
    #[test]
    fn the_probes_tell_the_algorithms_apart() {
        let table = pow10().expect("self-check passed");
        for p in &PROBES[..2] {
            let ours = decimal(p.as_bytes(), table).map(f64::to_bits);
            let correct = p.parse::<f64>().ok().map(f64::to_bits);
            assert_ne!(ours, correct, "{p}");
        }
    }

    #[test]
    fn edges_agree_with_serde_json() {
        for t in [
            "0",
            "-0",
            "-0.0",
            "0.0",
            "1",
            "-1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "1e308",
            "1.7976931348623157e308",
            "5e-324",
            "1e-400",
            "2.2250738585072014e-308",
            "0.1",
            "123456789.123456789",
            "1E+2",
            "1e-0",
            "9007199254740993",
            "9007199254740993.0",
            "0.30000000000000004",
        ] {
            assert!(same(leaf(t.as_bytes()), reference(t)), "{t}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn decimals_agree_with_serde_json(
            negative in any::<bool>(),
            int in "(0|[1-9][0-9]{0,20})",
            frac in proptest::option::of("[0-9]{1,22}"),
            exp in proptest::option::of((any::<bool>(), 0u32..330)),
        ) {
            let mut t = String::new();
            if negative { t.push('-'); }
            t.push_str(&int);
            if let Some(f) = &frac { t.push('.'); t.push_str(f); }
            if let Some((minus, e)) = exp { t.push_str(&format!("e{}{e}", if minus { "-" } else { "+" })); }
            prop_assert!(same(leaf(t.as_bytes()), reference(&t)), "{}", t);
        }
    }
}
