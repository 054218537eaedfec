//! The index of one field path: every anchor key filed at that path, and the
//! lookup of one leaf value against all of them at once.
//!
//! Lookup cost per leaf value: one hash probe for exact strings/numbers, one
//! probe per distinct prefix (suffix, CIDR) length in use at this path, one
//! range query for numbers; never proportional to the number of patterns.
//! Invariant: a lookup returns every slot whose anchor key the value satisfies.

use std::collections::BTreeMap;

use super::anchor::Key;
use super::hash::{FxMap, table_bytes};
use super::inline_key::InlineKey;
use super::postings::{Lists, Postings};
use super::ranges::RangeIndex;
use crate::casefold::with_folded;
use crate::cidr::{mask, parse_ip};
use crate::numeric::{Num, NumKey, ordered_key};
use crate::view::Leaf;

/// Strings by prefix (or suffix), with the distinct lengths in use.
#[derive(Debug, Default)]
struct AffixMap {
    map: FxMap<InlineKey, Postings>,
    lens: BTreeMap<usize, u32>,
}

impl AffixMap {
    fn insert(&mut self, k: &str, slot: u32, lists: &mut Lists) {
        let p = self.map.entry(InlineKey::new(k)).or_default();
        if p.is_empty() {
            *self.lens.entry(k.len()).or_default() += 1;
        }
        p.insert(slot, lists);
    }

    fn remove(&mut self, k: &str, slot: u32, lists: &mut Lists) {
        if let Some(p) = self.map.get_mut(k.as_bytes()) {
            p.remove(slot, lists);
            if p.is_empty() {
                self.map.remove(k.as_bytes());
                if let Some(n) = self.lens.get_mut(&k.len()) {
                    *n -= 1;
                    if *n == 0 {
                        self.lens.remove(&k.len());
                    }
                }
            }
        }
    }

    fn lookup(&self, s: &str, suffix: bool, lists: &Lists, out: &mut Vec<u32>, probes: &mut u64) {
        for &len in self.lens.keys() {
            if len > s.len() {
                break;
            }
            let part = if suffix {
                let at = s.len() - len;
                if !s.is_char_boundary(at) {
                    continue;
                }
                &s[at..]
            } else {
                if !s.is_char_boundary(len) {
                    continue;
                }
                &s[..len]
            };
            *probes += 1;
            if let Some(p) = self.map.get(part.as_bytes()) {
                p.extend_into(lists, out);
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        table_bytes(&self.map) + self.map.keys().map(InlineKey::heap_bytes).sum::<usize>()
    }
}

/// All anchor keys at one path.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    strs: FxMap<InlineKey, Postings>,
    nums: FxMap<NumKey, Postings>,
    nulls: Postings,
    trues: Postings,
    falses: Postings,
    folded: FxMap<Box<str>, Postings>,
    prefix: AffixMap,
    prefix_folded: AffixMap,
    suffix: AffixMap,
    suffix_folded: AffixMap,
    cidr: FxMap<(bool, u8, u128), Postings>,
    cidr_lens: BTreeMap<(bool, u8), u32>,
    ranges: RangeIndex,
    /// Slots filed under `anything-but` over strings.
    but: Postings,
    /// The same slots by each string they exclude.
    but_strs: FxMap<Box<str>, Postings>,
    /// Slots that only need some leaf value here.
    present: Postings,
    entries: usize,
    /// The posting lists of several slots.
    lists: Lists,
}

fn remove_from<K, Q>(map: &mut FxMap<K, Postings>, k: &Q, slot: u32, lists: &mut Lists)
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(p) = map.get_mut(k) {
        p.remove(slot, lists);
        if p.is_empty() {
            map.remove(k);
        }
    }
}

impl PathIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub(crate) fn insert(&mut self, key: &Key, slot: u32) {
        self.entries += 1;
        let lists = &mut self.lists;
        match key {
            Key::Str(s) => self
                .strs
                .entry(InlineKey::new(s))
                .or_default()
                .insert(slot, lists),
            Key::Num(n) => self.nums.entry(*n).or_default().insert(slot, lists),
            Key::Null => self.nulls.insert(slot, lists),
            Key::Bool(true) => self.trues.insert(slot, lists),
            Key::Bool(false) => self.falses.insert(slot, lists),
            Key::Folded(s) => self
                .folded
                .entry(s.clone())
                .or_default()
                .insert(slot, lists),
            Key::Prefix(s) => self.prefix.insert(s, slot, lists),
            Key::PrefixFolded(s) => self.prefix_folded.insert(s, slot, lists),
            Key::Suffix(s) => self.suffix.insert(s, slot, lists),
            Key::SuffixFolded(s) => self.suffix_folded.insert(s, slot, lists),
            Key::Cidr(v6, len, net) => {
                let p = self.cidr.entry((*v6, *len, *net)).or_default();
                if p.is_empty() {
                    *self.cidr_lens.entry((*v6, *len)).or_default() += 1;
                }
                p.insert(slot, lists);
            }
            Key::Range(lo, hi, flags) => self.ranges.insert(*lo, *hi, *flags, slot),
            Key::But(excluded) => {
                self.but.insert(slot, lists);
                for s in excluded {
                    self.but_strs
                        .entry(s.clone())
                        .or_default()
                        .insert(slot, lists);
                }
            }
            Key::Present => self.present.insert(slot, lists),
        }
    }

    pub(crate) fn remove(&mut self, key: &Key, slot: u32) {
        self.entries = self.entries.saturating_sub(1);
        let lists = &mut self.lists;
        match key {
            Key::Str(s) => remove_from(&mut self.strs, s.as_bytes(), slot, lists),
            Key::Num(n) => remove_from(&mut self.nums, n, slot, lists),
            Key::Null => {
                self.nulls.remove(slot, lists);
            }
            Key::Bool(true) => {
                self.trues.remove(slot, lists);
            }
            Key::Bool(false) => {
                self.falses.remove(slot, lists);
            }
            Key::Folded(s) => remove_from(&mut self.folded, &**s, slot, lists),
            Key::Prefix(s) => self.prefix.remove(s, slot, lists),
            Key::PrefixFolded(s) => self.prefix_folded.remove(s, slot, lists),
            Key::Suffix(s) => self.suffix.remove(s, slot, lists),
            Key::SuffixFolded(s) => self.suffix_folded.remove(s, slot, lists),
            Key::Cidr(v6, len, net) => {
                let k = (*v6, *len, *net);
                if let Some(p) = self.cidr.get_mut(&k) {
                    p.remove(slot, lists);
                    if p.is_empty() {
                        self.cidr.remove(&k);
                        if let Some(n) = self.cidr_lens.get_mut(&(*v6, *len)) {
                            *n -= 1;
                            if *n == 0 {
                                self.cidr_lens.remove(&(*v6, *len));
                            }
                        }
                    }
                }
            }
            Key::Range(lo, hi, flags) => {
                self.ranges.remove(*lo, *hi, *flags, slot);
            }
            Key::But(excluded) => {
                self.but.remove(slot, lists);
                for s in excluded {
                    remove_from(&mut self.but_strs, &**s, slot, lists);
                }
            }
            Key::Present => {
                self.present.remove(slot, lists);
            }
        }
    }

    /// Appends the slots whose key the leaf value `v` satisfies (not `present`).
    pub(crate) fn lookup(&self, v: Leaf<'_>, out: &mut Vec<u32>, probes: &mut u64) {
        *probes += 1;
        let lists = &self.lists;
        match v {
            Leaf::Str(s) => {
                match self.but_strs.get(s) {
                    Some(excluded) => self.but.extend_except(excluded, lists, out),
                    None => self.but.extend_into(lists, out),
                }
                if let Some(p) = self.strs.get(s.as_bytes()) {
                    p.extend_into(lists, out);
                }
                self.prefix.lookup(s, false, lists, out, probes);
                self.suffix.lookup(s, true, lists, out, probes);
                if !self.folded.is_empty()
                    || !self.prefix_folded.map.is_empty()
                    || !self.suffix_folded.map.is_empty()
                {
                    with_folded(s, |f| {
                        if let Some(p) = self.folded.get(f) {
                            p.extend_into(lists, out);
                        }
                        self.prefix_folded.lookup(f, false, lists, out, probes);
                        self.suffix_folded.lookup(f, true, lists, out, probes);
                    });
                }
                if !self.cidr.is_empty()
                    && let Some((v6, bits)) = parse_ip(s)
                {
                    for &(fam, len) in self.cidr_lens.keys() {
                        if fam == v6 {
                            *probes += 1;
                            let net = bits & mask(len, if v6 { 128 } else { 32 });
                            if let Some(p) = self.cidr.get(&(v6, len, net)) {
                                p.extend_into(lists, out);
                            }
                        }
                    }
                }
            }
            Leaf::Int(_) | Leaf::Float(_) => {
                self.but.extend_into(lists, out);
                if let Some(n) = Num::of(v) {
                    if let Some(p) = self.nums.get(&n.key()) {
                        p.extend_into(lists, out);
                    }
                    if !self.ranges.is_empty() {
                        self.ranges.query(ordered_key(n.approx()), n, out);
                    }
                }
            }
            Leaf::Null => {
                self.but.extend_into(lists, out);
                self.nulls.extend_into(lists, out);
            }
            Leaf::Bool(b) => {
                self.but.extend_into(lists, out);
                if b { &self.trues } else { &self.falses }.extend_into(lists, out);
            }
        }
    }

    /// Appends the slots that only need some leaf value here.
    pub(crate) fn present_into(&self, out: &mut Vec<u32>) {
        self.present.extend_into(&self.lists, out);
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let strs = |m: &FxMap<Box<str>, Postings>| {
            table_bytes(m) + m.keys().map(|k| k.len() + 16).sum::<usize>()
        };
        std::mem::size_of::<PathIndex>()
            + table_bytes(&self.strs)
            + self.strs.keys().map(InlineKey::heap_bytes).sum::<usize>()
            + strs(&self.folded)
            + table_bytes(&self.nums)
            + self.prefix.heap_bytes()
            + self.prefix_folded.heap_bytes()
            + self.suffix.heap_bytes()
            + self.suffix_folded.heap_bytes()
            + table_bytes(&self.cidr)
            + self.ranges.heap_bytes()
            + strs(&self.but_strs)
            + self.lists.heap_bytes()
    }
}
