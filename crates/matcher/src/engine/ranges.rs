//! The numeric range index: which ranges contain a number, in time
//! logarithmic in the number of ranges plus the number of hits.
//!
//! Numbers are mapped to order-preserving `u64` keys ([`ordered_key`](crate::numeric::ordered_key));
//! bounds are stored inclusive (the index may over-approximate at a bound; the
//! engine re-checks the exact condition). One-sided ranges sit in two ordered
//! sets (every entry a range query returns is a hit). Two-sided ranges are
//! grouped by their width **in value** (not in key space): class `e` holds the
//! ranges whose width is at most `2^e`, so only ranges whose lower bound lies
//! in `[x - 2^e, x]` can contain `x`, and since a class's ranges are at least
//! half that wide, most of those do. Ranges of one width at any magnitude
//! (`[10i, 10i + 5]` for every `i`) share one class, so a query costs one
//! ordered-set lookup per distinct width class in use, whatever the values.
//!
//! Invariant: every stored `(lo, hi, slot)` is returned by [`RangeIndex::query`]
//! for every `x` with `lo <= x <= hi`. Float rounding is kept on the safe side:
//! a class is an upper bound of the exact width, and the window's start is
//! rounded down.
//!
//! Within a class `e` of finite, non-zero width, ranges are hashed by the
//! bucket of their lower bound, `floor(lo / 2^e)` (clamped to ±2^62): a
//! value `x` can only lie in ranges whose bucket is `floor(x / 2^e)` or the
//! one below, since `x - lo <= 2^e`. So a query costs two hash probes per
//! class in use, whatever the number of ranges, where an ordered set costs
//! one cache miss per tree level. The bucket function is monotone (division
//! by a power of two is exact or rounds monotonically, then floor and clamp),
//! which keeps the two-bucket argument true under rounding. Zero-width
//! ranges (class `-1022`, where the quotient would overflow) and unbounded
//! widths stay in ordered sets.
//!
//! Ranges whose bounds are exactly `f64`s ([`EXACT`]) are answered exactly:
//! each hit is checked against its bounds with exact comparison (so
//! exclusive bounds and integers beyond 2^53, whose ordered keys are
//! rounded, are decided right), and such a range needs no verification.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::hash::FxBuild;
use crate::numeric::{Num, ordered_key};

/// Flag: the lower bound is inclusive (`>=`).
pub(crate) const LO_INCLUSIVE: u8 = 1;
/// Flag: the upper bound is inclusive (`<=`).
pub(crate) const HI_INCLUSIVE: u8 = 2;
/// Flag: every bound is exactly its `f64` (query answers are exact).
pub(crate) const EXACT: u8 = 4;

/// Whether `x` lies within the bounds of an exact entry.
#[inline]
fn within(x: Num, lo: Option<u64>, hi: Option<u64>, flags: u8) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let lo_ok = lo.is_none_or(|k| match x.cmp_exact(Num::Float(key_value(k))) {
        Greater => true,
        Equal => flags & LO_INCLUSIVE != 0,
        Less => false,
    });
    lo_ok
        && hi.is_none_or(|k| match x.cmp_exact(Num::Float(key_value(k))) {
            Less => true,
            Equal => flags & HI_INCLUSIVE != 0,
            Greater => false,
        })
}

/// A two-sided range in the hashed classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hashed {
    lo: u64,
    hi: u64,
    slot: u32,
    class: i16,
    flags: u8,
}

/// Ranges over ordered keys, inclusive.
#[derive(Debug, Default)]
pub(crate) struct RangeIndex {
    /// `(lo, slot, flags)`.
    lower_only: BTreeSet<(u64, u32, u8)>,
    /// `(hi, slot, flags)`.
    upper_only: BTreeSet<(u64, u32, u8)>,
    /// Two-sided ranges of a finite, non-zero width class, by (class, bucket
    /// of `lo`) (see [`bucket`]).
    hashed: HashTable<Hashed>,
    /// The classes in `hashed`, with their number of ranges.
    hashed_classes: BTreeMap<i16, u32>,
    /// Other two-sided ranges `(lo, hi, slot, flags)` by width class (see
    /// [`class_of`]): zero widths and unbounded ones.
    classes: BTreeMap<i16, BTreeSet<(u64, u64, u32, u8)>>,
    len: usize,
}

/// The class of ranges narrower than the smallest normal number (and of
/// zero width): kept in an ordered set.
const TINY: i16 = -1022;

/// Largest bucket magnitude (buckets are clamped to it, which keeps the
/// bucket function monotone).
const BUCKET_LIMIT: f64 = 4_611_686_018_427_387_904.0; // 2^62

/// The bucket of the value `v` in class `e` (`TINY < e < 1024`):
/// `floor(v / 2^e)`, clamped to ±2^62.
fn bucket(v: f64, e: i16) -> i64 {
    let q = (v / 2f64.powi(i32::from(e))).floor();
    q.clamp(-BUCKET_LIMIT, BUCKET_LIMIT) as i64
}

/// Whether ranges of class `e` are hashed.
fn hashed_class(e: i16) -> bool {
    e > TINY && e < 1024
}

/// The hash of a (class, bucket) pair.
fn bucket_hash(e: i16, b: i64) -> u64 {
    FxBuild::default().hash_one((e, b))
}

fn entry_hash(h: &Hashed) -> u64 {
    bucket_hash(h.class, bucket(key_value(h.lo), h.class))
}

/// The class of ranges wider than any finite power of two (or unbounded).
const UNBOUNDED: i16 = i16::MAX;

/// The value of an ordered key (the inverse of [`ordered_key`]).
fn key_value(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// The smallest `e` with `hi - lo <= 2^e` that the f64 exponent gives:
/// `-1022` for widths below the smallest normal number (and for 0),
/// [`UNBOUNDED`] when the width is not a finite number.
fn class_of(lo: u64, hi: u64) -> i16 {
    let width = key_value(hi) - key_value(lo);
    if !width.is_finite() {
        return UNBOUNDED;
    }
    // A normal width w has biased exponent b with 2^(b-1023) <= w < 2^(b-1022);
    // the rounded subtraction is at most half an ulp below the exact width,
    // which stays below 2^(b-1022).
    let biased = ((width.to_bits() >> 52) & 0x7ff) as i16;
    biased.max(0) - 1022
}

/// The key from which a class-`e` window ending at the value `x` starts.
fn window_start(x: f64, e: i16) -> u64 {
    if e >= 1024 {
        return 0;
    }
    let from = (x - 2f64.powi(i32::from(e))).next_down();
    if from.is_finite() {
        ordered_key(from)
    } else {
        0
    }
}

impl RangeIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn insert(&mut self, lo: Option<u64>, hi: Option<u64>, flags: u8, slot: u32) {
        let fresh = match (lo, hi) {
            (Some(lo), None) => self.lower_only.insert((lo, slot, flags)),
            (None, Some(hi)) => self.upper_only.insert((hi, slot, flags)),
            (lo, hi) => {
                let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(u64::MAX));
                let class = class_of(lo, hi);
                if hashed_class(class) {
                    let h = Hashed {
                        lo,
                        hi,
                        slot,
                        class,
                        flags,
                    };
                    let hash = entry_hash(&h);
                    if self.hashed.find(hash, |e| *e == h).is_some() {
                        false
                    } else {
                        self.hashed.insert_unique(hash, h, entry_hash);
                        *self.hashed_classes.entry(class).or_default() += 1;
                        true
                    }
                } else {
                    self.classes
                        .entry(class)
                        .or_default()
                        .insert((lo, hi, slot, flags))
                }
            }
        };
        if fresh {
            self.len += 1;
        }
    }

    pub(crate) fn remove(
        &mut self,
        lo: Option<u64>,
        hi: Option<u64>,
        flags: u8,
        slot: u32,
    ) -> bool {
        let removed = match (lo, hi) {
            (Some(lo), None) => self.lower_only.remove(&(lo, slot, flags)),
            (None, Some(hi)) => self.upper_only.remove(&(hi, slot, flags)),
            (lo, hi) => {
                let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(u64::MAX));
                let c = class_of(lo, hi);
                if hashed_class(c) {
                    let h = Hashed {
                        lo,
                        hi,
                        slot,
                        class: c,
                        flags,
                    };
                    let removed = match self.hashed.find_entry(entry_hash(&h), |e| *e == h) {
                        Ok(entry) => {
                            entry.remove();
                            true
                        }
                        Err(_) => false,
                    };
                    if removed && let Some(n) = self.hashed_classes.get_mut(&c) {
                        *n -= 1;
                        if *n == 0 {
                            self.hashed_classes.remove(&c);
                        }
                    }
                    if removed {
                        self.len -= 1;
                    }
                    return removed;
                }
                let removed = self
                    .classes
                    .get_mut(&c)
                    .is_some_and(|set| set.remove(&(lo, hi, slot, flags)));
                if removed && self.classes.get(&c).is_some_and(BTreeSet::is_empty) {
                    self.classes.remove(&c);
                }
                removed
            }
        };
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Appends the slots of every range that may contain `x` (of ordered
    /// key `xk`): every range that contains it, and for ranges not
    /// [`EXACT`], possibly ranges that end next to it.
    pub(crate) fn query(&self, xk: u64, x: Num, out: &mut Vec<u32>) {
        let keep = |lo: Option<u64>, hi: Option<u64>, flags: u8| {
            flags & EXACT == 0 || within(x, lo, hi, flags)
        };
        if !self.lower_only.is_empty() {
            out.extend(
                self.lower_only
                    .range(..=(xk, u32::MAX, u8::MAX))
                    .filter(|(lo, _, f)| keep(Some(*lo), None, *f))
                    .map(|(_, s, _)| *s),
            );
        }
        if !self.upper_only.is_empty() {
            out.extend(
                self.upper_only
                    .range((xk, 0, 0)..)
                    .filter(|(hi, _, f)| keep(None, Some(*hi), *f))
                    .map(|(_, s, _)| *s),
            );
        }
        let xv = key_value(xk);
        for &e in self.hashed_classes.keys() {
            let b = bucket(xv, e);
            for b in [b, b - 1] {
                out.extend(
                    self.hashed
                        .iter_hash(bucket_hash(e, b))
                        .filter(|h| {
                            h.class == e
                                && h.lo <= xk
                                && xk <= h.hi
                                && keep(Some(h.lo), Some(h.hi), h.flags)
                        })
                        .map(|h| h.slot),
                );
            }
        }
        for (&e, set) in &self.classes {
            let from = if e == UNBOUNDED {
                0
            } else {
                window_start(xv, e)
            };
            out.extend(
                set.range((from, 0, 0, 0)..=(xk, u64::MAX, u32::MAX, u8::MAX))
                    .filter(|(lo, hi, _, f)| *hi >= xk && keep(Some(*lo), Some(*hi), *f))
                    .map(|(_, _, s, _)| *s),
            );
        }
    }

    /// Approximate heap bytes: the hash table by its buckets, B-tree
    /// entries at ~70% fill.
    pub(crate) fn heap_bytes(&self) -> usize {
        let two = (self.lower_only.len() + self.upper_only.len()) * 16;
        let three: usize = self.classes.values().map(|c| c.len() * 32).sum();
        super::hash::buckets(self.hashed.capacity()) * (std::mem::size_of::<Hashed>() + 1)
            + (two + three) * 10 / 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(v: f64) -> u64 {
        ordered_key(v)
    }

    /// Every containing range is found, for values at many magnitudes and
    /// widths, including zero-width, sub-normal, negative and huge ranges.
    #[test]
    fn finds_exactly_the_containing_ranges() {
        let mut ranges: Vec<(Option<f64>, Option<f64>)> = vec![
            (Some(10.0), Some(20.0)),
            (Some(15.0), Some(15.0)),
            (Some(0.0), Some(1000.0)),
            (Some(18.0), None),
            (None, Some(12.0)),
            (Some(30.0), Some(31.0)),
            (Some(-1e308), Some(1e308)),
            (Some(-5.5), Some(-0.0)),
            (Some(0.0), Some(f64::MIN_POSITIVE / 4.0)),
            (Some(1e15), Some(1e15 + 0.25)),
            (Some(0.1), Some(0.30000000000000004)),
        ];
        for i in 0..200 {
            let lo = f64::from(i) * 10.0;
            ranges.push((Some(lo), Some(lo + 5.0)));
            ranges.push((Some(lo * 1e6), Some(lo * 1e6 + 5.0)));
        }
        let mut ix = RangeIndex::default();
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            ix.insert(lo.map(k), hi.map(k), LO_INCLUSIVE | HI_INCLUSIVE, i as u32);
        }
        let mut xs: Vec<f64> = vec![
            -1e308,
            -6.0,
            -5.5,
            -0.0,
            0.0,
            f64::MIN_POSITIVE / 8.0,
            f64::MIN_POSITIVE,
            0.1,
            0.2,
            0.30000000000000004,
            1e15,
            1e15 + 0.25,
            1e15 + 0.5,
            1e308,
        ];
        for x in 0..2100 {
            xs.push(f64::from(x));
            xs.push(f64::from(x) + 0.5);
            xs.push(f64::from(x) * 1e6 + 2.5);
            xs.push(f64::from(x) * 1e6 - 1.0);
        }
        for x in xs {
            let mut got = Vec::new();
            ix.query(k(x), Num::Float(x), &mut got);
            got.sort_unstable();
            let want: Vec<u32> = ranges
                .iter()
                .enumerate()
                .filter(|(_, (lo, hi))| lo.is_none_or(|l| l <= x) && hi.is_none_or(|h| x <= h))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "x = {x}");
        }
        let both = LO_INCLUSIVE | HI_INCLUSIVE;
        assert!(ix.remove(Some(k(10.0)), Some(k(20.0)), both, 0));
        assert!(!ix.remove(Some(k(10.0)), Some(k(20.0)), both, 0));
    }

    /// Exact ranges: exclusive bounds, and integers whose ordered key is
    /// rounded (beyond 2^53) on either side of a bound.
    #[test]
    fn exact_ranges_are_answered_exactly() {
        let big = 2f64.powi(60);
        let ranges: Vec<(Option<f64>, Option<f64>, u8)> = vec![
            (Some(10.0), Some(20.0), 0),
            (Some(10.0), Some(20.0), LO_INCLUSIVE | HI_INCLUSIVE),
            (Some(10.0), None, 0),
            (None, Some(20.0), HI_INCLUSIVE),
            (Some(big), None, 0),
            (Some(big), Some(big * 2.0), LO_INCLUSIVE),
            (None, Some(big), 0),
        ];
        let mut ix = RangeIndex::default();
        for (i, (lo, hi, f)) in ranges.iter().enumerate() {
            ix.insert(lo.map(k), hi.map(k), f | EXACT, i as u32);
        }
        let two60 = 1i64 << 60;
        let xs = [
            Num::Float(10.0),
            Num::Int(10),
            Num::Float(20.0),
            Num::Float(15.5),
            Num::Int(9),
            Num::Int(two60),
            Num::Int(two60 + 1),
            Num::Int(two60 - 1),
            Num::Float(big),
            Num::Int(i64::MAX),
        ];
        for x in xs {
            let mut got = Vec::new();
            ix.query(k(x.approx()), x, &mut got);
            got.sort_unstable();
            let want: Vec<u32> = ranges
                .iter()
                .enumerate()
                .filter(|(_, (lo, hi, f))| {
                    let cond = crate::numeric::NumericCond::Range {
                        lower: lo.map(|v| crate::numeric::Bound {
                            value: Num::Float(v),
                            inclusive: f & LO_INCLUSIVE != 0,
                        }),
                        upper: hi.map(|v| crate::numeric::Bound {
                            value: Num::Float(v),
                            inclusive: f & HI_INCLUSIVE != 0,
                        }),
                    };
                    cond.test(x)
                })
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "x = {x:?}");
        }
    }

    /// Random ranges at many magnitudes and widths (both signs, bucket
    /// edges, tiny and huge widths) against a scan of all of them.
    #[test]
    fn random_ranges_match_a_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut pick = |n: u64| next() % n;
        let scales = [1e-300, 1e-9, 0.5, 1.0, 8.0, 1000.0, 1e15, 1e300];
        let val = |pick: &mut dyn FnMut(u64) -> u64| {
            let s = scales[pick(scales.len() as u64) as usize];
            let sign = if pick(2) == 0 { -1.0 } else { 1.0 };
            sign * s * (pick(64) as f64) / 8.0
        };
        let mut ranges = Vec::new();
        let mut ix = RangeIndex::default();
        for i in 0..3000u32 {
            let a = val(&mut pick);
            let b = if pick(3) == 0 { a } else { val(&mut pick) };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            ranges.push((lo, hi));
            ix.insert(Some(k(lo)), Some(k(hi)), LO_INCLUSIVE | HI_INCLUSIVE, i);
        }
        for _ in 0..3000 {
            let x = val(&mut pick);
            let mut got = Vec::new();
            ix.query(k(x), Num::Float(x), &mut got);
            got.sort_unstable();
            got.dedup();
            let want: Vec<u32> = ranges
                .iter()
                .enumerate()
                .filter(|(_, (lo, hi))| *lo <= x && x <= *hi)
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "x = {x}");
        }
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            assert!(ix.remove(
                Some(k(*lo)),
                Some(k(*hi)),
                LO_INCLUSIVE | HI_INCLUSIVE,
                i as u32
            ));
        }
        assert!(ix.is_empty() && ix.hashed.is_empty() && ix.hashed_classes.is_empty());
    }

    #[test]
    fn key_value_inverts_ordered_key() {
        for v in [-1e308, -5.5, -1e-310, 0.0, 1e-310, 1.0, 3.25, 1e308] {
            assert_eq!(key_value(k(v)), v);
        }
        assert_eq!(key_value(k(-0.0)), 0.0);
    }
}
