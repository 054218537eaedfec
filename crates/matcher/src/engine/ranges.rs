//! The numeric range index: which ranges contain a number, in time
//! logarithmic in the number of ranges plus the number of hits.
//!
//! Numbers are mapped to order-preserving `u64` keys ([`ordered_key`](crate::numeric::ordered_key));
//! bounds are stored inclusive (the index may over-approximate at a bound; the
//! engine re-checks the exact condition). One-sided ranges sit in two ordered
//! sets (every entry a range query returns is a hit). Two-sided ranges are
//! grouped by the bit length of their width: in class `c` every range is at most
//! `2^c - 1` wide, so only ranges whose lower bound lies in `[x - 2^c + 1, x]` can
//! contain `x`, and for ranges of similar width most of those do.
//!
//! Invariant: every stored `(lo, hi, slot)` is returned by [`RangeIndex::query`]
//! for every `x` with `lo <= x <= hi`.

use std::collections::BTreeSet;

/// Ranges over ordered keys, inclusive.
#[derive(Debug, Default)]
pub(crate) struct RangeIndex {
    lower_only: BTreeSet<(u64, u32)>,
    upper_only: BTreeSet<(u64, u32)>,
    classes: Vec<BTreeSet<(u64, u64, u32)>>,
    nonempty: u128,
    len: usize,
}

fn class_of(lo: u64, hi: u64) -> usize {
    (64 - (hi - lo).leading_zeros()) as usize
}

impl RangeIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn insert(&mut self, lo: Option<u64>, hi: Option<u64>, slot: u32) {
        let fresh = match (lo, hi) {
            (Some(lo), None) => self.lower_only.insert((lo, slot)),
            (None, Some(hi)) => self.upper_only.insert((hi, slot)),
            (lo, hi) => {
                let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(u64::MAX));
                let c = class_of(lo, hi);
                if self.classes.len() <= c {
                    self.classes.resize_with(c + 1, BTreeSet::new);
                }
                self.nonempty |= 1 << c;
                self.classes[c].insert((lo, hi, slot))
            }
        };
        if fresh {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, lo: Option<u64>, hi: Option<u64>, slot: u32) -> bool {
        let removed = match (lo, hi) {
            (Some(lo), None) => self.lower_only.remove(&(lo, slot)),
            (None, Some(hi)) => self.upper_only.remove(&(hi, slot)),
            (lo, hi) => {
                let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(u64::MAX));
                let c = class_of(lo, hi);
                let removed = self
                    .classes
                    .get_mut(c)
                    .is_some_and(|set| set.remove(&(lo, hi, slot)));
                if removed && self.classes[c].is_empty() {
                    self.nonempty &= !(1 << c);
                }
                removed
            }
        };
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Appends the slots of every range that may contain `x`.
    pub(crate) fn query(&self, x: u64, out: &mut Vec<u32>) {
        if !self.lower_only.is_empty() {
            out.extend(self.lower_only.range(..=(x, u32::MAX)).map(|(_, s)| *s));
        }
        if !self.upper_only.is_empty() {
            out.extend(self.upper_only.range((x, 0)..).map(|(_, s)| *s));
        }
        let mut mask = self.nonempty;
        while mask != 0 {
            let c = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let width = if c >= 64 { u64::MAX } else { (1u64 << c) - 1 };
            let from = x.saturating_sub(width);
            out.extend(
                self.classes[c]
                    .range((from, 0, 0)..=(x, u64::MAX, u32::MAX))
                    .filter(|(_, hi, _)| *hi >= x)
                    .map(|(_, _, s)| *s),
            );
        }
    }

    /// Approximate heap bytes (B-tree entries at ~70% fill).
    pub(crate) fn heap_bytes(&self) -> usize {
        let two = (self.lower_only.len() + self.upper_only.len()) * 16;
        let three: usize = self.classes.iter().map(|c| c.len() * 24).sum();
        (two + three) * 10 / 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_containing_ranges() {
        let mut ix = RangeIndex::default();
        let ranges: Vec<(Option<u64>, Option<u64>)> = vec![
            (Some(10), Some(20)),
            (Some(15), Some(15)),
            (Some(0), Some(1000)),
            (Some(18), None),
            (None, Some(12)),
            (Some(30), Some(31)),
        ];
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            ix.insert(*lo, *hi, i as u32);
        }
        for x in 0..1100u64 {
            let mut got = Vec::new();
            ix.query(x, &mut got);
            got.sort_unstable();
            let want: Vec<u32> = ranges
                .iter()
                .enumerate()
                .filter(|(_, (lo, hi))| lo.is_none_or(|l| l <= x) && hi.is_none_or(|h| x <= h))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "x = {x}");
        }
        assert!(ix.remove(Some(10), Some(20), 0));
        assert!(!ix.remove(Some(10), Some(20), 0));
    }
}
