//! The writer's side of the engine, kept once (not in each index copy): which
//! slot holds which id, the free slots, and the stored form of the patterns
//! their anchors decide alone.
//!
//! A pattern decided by its anchors ([`super::anchor::decides_alone`]) is
//! never evaluated when matching, so the index copies keep no tree for it:
//! it is kept here as its canonical JSON text, and parsed again when it is
//! asked for (`Engine::get`, `explain`) or removed. Such a pattern has only
//! built-in conditions, and canonical JSON parses back to an equal pattern.
//!
//! The texts share one string (a span per slot), which is compacted when
//! more than half of it belongs to removed patterns.
//!
//! Invariants: `ids` and the occupied slots agree; a slot is in `free` or
//! occupied, never both; slots are handed out lowest first; a slot's span
//! (or its entry in `long`) is set exactly while its pattern is kept compact.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::hash::{FxBuild, FxMap};
use crate::operators::OperatorRegistry;
use crate::pattern::Pattern;

/// Ids, free slots and compact patterns.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Occupied slots, hashed by their ids (4 bytes an entry).
    ids: HashTable<u32>,
    /// The id in each slot.
    names: Vec<Option<Arc<str>>>,
    free: BinaryHeap<Reverse<u32>>,
    /// Slots handed out so far (occupied or free).
    slots: u32,
    /// Canonical JSON of the patterns kept without a tree.
    texts: String,
    /// Where each slot's text is in `texts` ([`Span::NONE`]: none there).
    spans: Vec<Span>,
    /// Texts too long for a span.
    long: FxMap<u32, Box<str>>,
    /// Bytes of `texts` no span points to.
    garbage: usize,
}

/// A text's place in `Registry::texts`: start (40 bits) and length (24 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(u64);

impl Span {
    const NONE: Span = Span(u64::MAX);
    const MAX_LEN: usize = (1 << 24) - 1;

    fn new(start: usize, len: usize) -> Option<Span> {
        (len < Self::MAX_LEN && start < 1 << 40)
            .then_some(Span(((start as u64) << 24) | len as u64))
    }

    fn range(self) -> Option<std::ops::Range<usize>> {
        (self != Span::NONE).then(|| {
            let start = (self.0 >> 24) as usize;
            start..start + (self.0 & Self::MAX_LEN as u64) as usize
        })
    }
}

impl Registry {
    fn name(&self, slot: u32) -> Option<&str> {
        self.names.get(slot as usize)?.as_deref()
    }

    /// The slot of `id`.
    pub(crate) fn slot(&self, id: &str) -> Option<u32> {
        self.ids
            .find(hash(id), |&s| self.name(s) == Some(id))
            .copied()
    }

    /// Every id, sorted.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.iter().flatten().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Takes the lowest free slot for `id`; `compact` is the pattern's JSON
    /// when the index copies keep no tree for it.
    pub(crate) fn take(&mut self, id: Arc<str>, compact: Option<Box<str>>) -> u32 {
        let slot = match self.free.pop() {
            Some(Reverse(s)) => s,
            None => {
                self.slots += 1;
                self.slots - 1
            }
        };
        let at = slot as usize;
        if self.spans.len() <= at {
            self.spans.resize(at + 1, Span::NONE);
            self.names.resize(at + 1, None);
        }
        if let Some(text) = compact {
            match Span::new(self.texts.len(), text.len()) {
                Some(span) => {
                    self.texts.push_str(&text);
                    self.spans[at] = span;
                }
                None => {
                    self.long.insert(slot, text);
                }
            }
        }
        let h = hash(&id);
        self.names[at] = Some(id);
        let names = &self.names;
        self.ids.insert_unique(h, slot, |&s| {
            hash(
                names
                    .get(s as usize)
                    .and_then(Option::as_deref)
                    .unwrap_or(""),
            )
        });
        slot
    }

    /// Frees the slot of `id`; returns it.
    pub(crate) fn release(&mut self, id: &str) -> Option<u32> {
        let names = &self.names;
        let entry = self
            .ids
            .find_entry(hash(id), |&s| {
                names.get(s as usize).and_then(Option::as_deref) == Some(id)
            })
            .ok()?;
        let (slot, _) = entry.remove();
        if let Some(n) = self.names.get_mut(slot as usize) {
            *n = None;
        }
        if let Some(span) = self.spans.get_mut(slot as usize) {
            if let Some(r) = span.range() {
                self.garbage += r.len();
            }
            *span = Span::NONE;
        }
        self.long.remove(&slot);
        self.free.push(Reverse(slot));
        if self.garbage > 1 << 20 && self.garbage > self.texts.len() / 2 {
            self.compact_texts();
        }
        Some(slot)
    }

    /// Rewrites `texts` without the removed patterns' texts.
    fn compact_texts(&mut self) {
        let mut texts = String::with_capacity(self.texts.len() - self.garbage);
        for span in &mut self.spans {
            if let Some(r) = span.range()
                && let Some(text) = self.texts.get(r)
                && let Some(moved) = Span::new(texts.len(), text.len())
            {
                texts.push_str(text);
                *span = moved;
            }
        }
        self.texts = texts;
        self.garbage = 0;
    }

    /// The pattern kept compact in `slot`, parsed again.
    pub(crate) fn compact(&self, slot: u32) -> Option<Pattern> {
        let text = match self.spans.get(slot as usize).and_then(|s| s.range()) {
            Some(r) => self.texts.get(r)?,
            None => self.long.get(&slot)?,
        };
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        Pattern::parse(&json, &OperatorRegistry::default()).ok()
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        super::hash::buckets(self.ids.capacity()) * (std::mem::size_of::<u32>() + 1)
            + self.names.capacity() * std::mem::size_of::<Option<Arc<str>>>()
            + self
                .names
                .iter()
                .flatten()
                .map(|k| 16 + k.len() + 16)
                .sum::<usize>()
            + self.free.capacity() * 4
            + self.texts.capacity()
            + self.spans.capacity() * std::mem::size_of::<Span>()
            + super::hash::table_bytes(&self.long)
            + self.long.values().map(|t| t.len() + 16).sum::<usize>()
    }
}

/// The hash of an id.
fn hash(id: &str) -> u64 {
    FxBuild::default().hash_one(id)
}

/// The canonical JSON text `p` is kept as, when the index copies need no
/// tree for it.
pub(crate) fn compact_text(p: &Pattern) -> Box<str> {
    let text: Box<str> = p.to_json().to_string().into();
    debug_assert!(
        serde_json::from_str(&text)
            .ok()
            .and_then(|j| Pattern::parse(&j, &OperatorRegistry::default()).ok())
            .is_some_and(|again| again == *p),
        "canonical JSON must parse back to the same pattern: {text}"
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(i: usize) -> Pattern {
        let value = format!("{i:0>200}");
        Pattern::parse(
            &serde_json::json!({"k": [value]}),
            &OperatorRegistry::default(),
        )
        .expect("valid pattern")
    }

    /// Texts survive the compaction that follows many removals, and slots
    /// are handed out lowest first.
    #[test]
    fn compact_texts_survive_removals() {
        let mut reg = Registry::default();
        let n = 12_000;
        for i in 0..n {
            let slot = reg.take(Arc::from(format!("s{i}")), Some(compact_text(&pattern(i))));
            assert_eq!(slot as usize, i);
        }
        for i in (0..n).filter(|i| i % 4 != 0) {
            assert_eq!(reg.release(&format!("s{i}")), Some(i as u32));
        }
        assert!(reg.garbage < reg.texts.len(), "compacted");
        for i in (0..n).step_by(4) {
            let slot = reg.slot(&format!("s{i}")).expect("kept");
            assert_eq!(reg.compact(slot), Some(pattern(i)));
        }
        assert_eq!(reg.take(Arc::from("again"), None), 1);
        assert_eq!(reg.compact(1), None);
    }
}
