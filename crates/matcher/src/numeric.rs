//! Numbers as patterns see them: exact comparison across integers and floats.
//!
//! A [`Num`] is an `i64` or a finite `f64`. Comparisons are exact (an integer is
//! never rounded to a float before comparing), so `9007199254740993` is greater
//! than `9007199254740992.0`, and `5` equals `5.0`, `-0.0` equals `0`.
//!
//! Invariants: [`Num::key`] gives equal keys exactly to numbers that compare
//! equal, so it can key a hash index; [`ordered_key`] is monotone
//! (non-decreasing) in the numeric value, so a range index over ordered keys
//! never misses a number that lies inside a range (it may over-approximate at
//! the rounding edges of huge integers; the full condition is re-checked).

use std::cmp::Ordering;

use crate::view::Leaf;

/// 2^63: the first float above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// An integer or a finite float, compared exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
}

/// A hash key such that two numbers have equal keys exactly when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum NumKey {
    /// An integral value that fits `i64`.
    Int(i64),
    /// Any other value: the float's bits.
    Bits(u64),
}

impl Num {
    /// The number inside a leaf value, if it is one.
    #[inline]
    pub(crate) fn of(v: Leaf<'_>) -> Option<Num> {
        match v {
            Leaf::Int(i) => Some(Num::Int(i)),
            Leaf::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// A JSON number as a `Num`; `None` if it is not finite.
    pub(crate) fn from_json(n: &serde_json::Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            return Some(Num::Int(i));
        }
        n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
    }

    /// Back to JSON (integers stay integers).
    pub(crate) fn to_json(self) -> serde_json::Value {
        match self {
            Num::Int(i) => serde_json::Value::from(i),
            Num::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Exact three-way comparison.
    pub(crate) fn cmp_exact(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Num::Int(i), Num::Float(f)) => cmp_int_float(i, f),
            (Num::Float(f), Num::Int(i)) => cmp_int_float(i, f).reverse(),
        }
    }

    /// Exact equality.
    pub(crate) fn eq_exact(self, other: Num) -> bool {
        self.cmp_exact(other) == Ordering::Equal
    }

    /// The hash key (equal keys exactly for equal numbers).
    pub(crate) fn key(self) -> NumKey {
        match self {
            Num::Int(i) => NumKey::Int(i),
            Num::Float(f) => {
                if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
                    NumKey::Int(f as i64)
                } else {
                    NumKey::Bits(f.to_bits())
                }
            }
        }
    }

    /// The nearest `f64` (rounds huge integers).
    pub(crate) fn approx(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Compares an integer with a float exactly.
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f >= 9.3e18 {
        return Ordering::Less;
    }
    if f <= -9.3e18 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i128::from(i).cmp(&(t as i128)) {
        Ordering::Equal => {
            if f > t {
                Ordering::Less
            } else if f < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// Maps a finite float to a `u64` whose unsigned order is the float's order
/// (`-0.0` and `0.0` map to the same key).
pub(crate) fn ordered_key(f: f64) -> u64 {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// One bound of a numeric range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    /// The bound's value.
    pub(crate) value: Num,
    /// Whether the bound itself is inside the range (`>=`, `<=`).
    pub(crate) inclusive: bool,
}

/// A `numeric` condition: equality, or a one- or two-sided range.
#[derive(Debug, Clone)]
pub(crate) enum NumericCond {
    /// `["=", n]`.
    Eq(Num),
    /// `[">", a]`, `["<=", b]`, `[">", a, "<=", b]` …; at least one side is set.
    Range {
        /// Lower bound (`>` or `>=`).
        lower: Option<Bound>,
        /// Upper bound (`<` or `<=`).
        upper: Option<Bound>,
    },
}

impl NumericCond {
    /// Whether `n` satisfies the condition.
    pub(crate) fn test(&self, n: Num) -> bool {
        match self {
            NumericCond::Eq(v) => n.eq_exact(*v),
            NumericCond::Range { lower, upper } => {
                let lower_ok = lower.is_none_or(|b| match n.cmp_exact(b.value) {
                    Ordering::Greater => true,
                    Ordering::Equal => b.inclusive,
                    Ordering::Less => false,
                });
                lower_ok
                    && upper.is_none_or(|b| match n.cmp_exact(b.value) {
                        Ordering::Less => true,
                        Ordering::Equal => b.inclusive,
                        Ordering::Greater => false,
                    })
            }
        }
    }

    /// The canonical JSON argument (`[">", 0, "<=", 5]`).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut out = Vec::new();
        match self {
            NumericCond::Eq(v) => {
                out.push("=".into());
                out.push(v.to_json());
            }
            NumericCond::Range { lower, upper } => {
                if let Some(b) = lower {
                    out.push(if b.inclusive { ">=" } else { ">" }.into());
                    out.push(b.value.to_json());
                }
                if let Some(b) = upper {
                    out.push(if b.inclusive { "<=" } else { "<" }.into());
                    out.push(b.value.to_json());
                }
            }
        }
        serde_json::Value::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_comparison_does_not_round_integers() {
        let big = Num::Int(9_007_199_254_740_993);
        assert_eq!(
            big.cmp_exact(Num::Float(9_007_199_254_740_992.0)),
            Ordering::Greater
        );
        assert!(Num::Int(5).eq_exact(Num::Float(5.0)));
        assert!(Num::Float(-0.0).eq_exact(Num::Int(0)));
        assert_eq!(Num::Int(-5).cmp_exact(Num::Float(-5.5)), Ordering::Greater);
        assert_eq!(
            Num::Int(i64::MAX).cmp_exact(Num::Float(1e300)),
            Ordering::Less
        );
    }

    #[test]
    fn keys_agree_with_equality() {
        assert_eq!(Num::Int(35).key(), Num::Float(35.0).key());
        assert_eq!(Num::Float(-0.0).key(), Num::Int(0).key());
        assert_ne!(Num::Float(35.5).key(), Num::Int(35).key());
    }

    #[test]
    fn ordered_key_is_monotone() {
        let xs = [-1e308, -5.5, -1.0, -1e-300, 0.0, 1e-300, 1.0, 5.5, 1e308];
        for w in xs.windows(2) {
            assert!(ordered_key(w[0]) < ordered_key(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(ordered_key(-0.0), ordered_key(0.0));
    }
}
