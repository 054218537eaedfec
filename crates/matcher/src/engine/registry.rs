//! The writer's side of the engine, kept once (not in each index copy): which
//! slot holds which id, the free slots, and the stored form of the patterns
//! their anchors decide alone.
//!
//! The ids themselves live in the index copies (each slot there holds its
//! id, which readers return); the registry keeps only a hash table of slot
//! numbers, hashed by their ids, and is handed a way to read a slot's id
//! (`name`) when it needs one, so an id's pointer is stored twice, not
//! three times.
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
//! Invariants: `ids` holds exactly the slots bound by [`Registry::bind`] and
//! not yet released, each under the hash of the id `name` gives for it (the
//! engine binds a slot after the index copies hold its id and releases it
//! before they drop it); a slot is in `free` or
//! occupied, never both; slots are handed out lowest first; a slot's span
//! (or its entry in `long`) is set exactly while its pattern is kept compact.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::hash::{FxBuild, FxMap};
use super::memory::grow_by_eighth;
use crate::operators::OperatorRegistry;
use crate::pattern::Pattern;

/// Ids, free slots and compact patterns.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Occupied slots, hashed by their ids (4 bytes an entry).
    ids: HashTable<u32>,
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
    /// The slot of `id`; `name` gives the id in a slot.
    pub(crate) fn slot<'a>(&self, id: &str, name: impl Fn(u32) -> Option<&'a str>) -> Option<u32> {
        self.ids.find(hash(id), |&s| name(s) == Some(id)).copied()
    }

    /// Takes the lowest free slot; `compact` is the pattern's JSON when the
    /// index copies keep no tree for it. The slot is found by its id once
    /// [`bind`](Registry::bind) has filed it.
    pub(crate) fn take(&mut self, compact: Option<Box<str>>) -> u32 {
        let slot = match self.free.pop() {
            Some(Reverse(s)) => s,
            None => {
                self.slots += 1;
                self.slots - 1
            }
        };
        let at = slot as usize;
        if self.spans.len() <= at {
            let extra = at + 1 - self.spans.len();
            grow_by_eighth(&mut self.spans, extra);
            self.spans.resize(at + 1, Span::NONE);
        }
        if let Some(text) = compact {
            match Span::new(self.texts.len(), text.len()) {
                Some(span) => {
                    // Grown by an eighth, as the slot arrays: doubling would
                    // leave up to half of the largest allocation unused.
                    if self.texts.capacity() - self.texts.len() < text.len() {
                        self.texts
                            .reserve_exact(text.len().max(self.texts.len() / 8));
                    }
                    self.texts.push_str(&text);
                    self.spans[at] = span;
                }
                None => {
                    self.long.insert(slot, text);
                }
            }
        }
        slot
    }

    /// Files `slot` (taken, and now holding `id` in the index copies) under
    /// `id`; `name` gives the id in each slot already filed.
    pub(crate) fn bind<'a>(&mut self, slot: u32, id: &str, name: impl Fn(u32) -> Option<&'a str>) {
        self.ids
            .insert_unique(hash(id), slot, |&s| hash(name(s).unwrap_or("")));
    }

    /// Frees the slot of `id` (its id still readable through `name`);
    /// returns it.
    pub(crate) fn release<'a>(
        &mut self,
        id: &str,
        name: impl Fn(u32) -> Option<&'a str>,
    ) -> Option<u32> {
        let entry = self
            .ids
            .find_entry(hash(id), |&s| name(s) == Some(id))
            .ok()?;
        let (slot, _) = entry.remove();
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
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let name = |s: u32| names.get(s as usize).map(String::as_str);
        for (i, id) in names.iter().enumerate() {
            let slot = reg.take(Some(compact_text(&pattern(i))));
            assert_eq!(slot as usize, i);
            reg.bind(slot, id, name);
        }
        for i in (0..n).filter(|i| i % 4 != 0) {
            assert_eq!(reg.release(&names[i], name), Some(i as u32));
        }
        assert!(reg.garbage < reg.texts.len(), "compacted");
        for i in (0..n).step_by(4) {
            let slot = reg.slot(&names[i], name).expect("kept");
            assert_eq!(reg.compact(slot), Some(pattern(i)));
        }
        assert_eq!(reg.take(None), 1);
        assert_eq!(reg.compact(1), None);
    }
}
