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
//! Invariants: `ids` and the occupied slots agree; a slot is in `free` or
//! occupied, never both; slots are handed out lowest first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use super::hash::FxMap;
use crate::operators::OperatorRegistry;
use crate::pattern::Pattern;

/// Ids, free slots and compact patterns.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    ids: FxMap<Arc<str>, u32>,
    free: BinaryHeap<Reverse<u32>>,
    /// Slots handed out so far (occupied or free).
    slots: u32,
    /// Canonical JSON of the patterns kept without a tree, by slot.
    compact: Vec<Option<Box<str>>>,
}

impl Registry {
    /// The slot of `id`.
    pub(crate) fn slot(&self, id: &str) -> Option<u32> {
        self.ids.get(id).copied()
    }

    /// Every id, sorted.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ids.keys().map(|k| k.to_string()).collect();
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
        if self.compact.len() <= at {
            self.compact.resize_with(at + 1, || None);
        }
        self.compact[at] = compact;
        self.ids.insert(id, slot);
        slot
    }

    /// Frees the slot of `id`; returns it.
    pub(crate) fn release(&mut self, id: &str) -> Option<u32> {
        let slot = self.ids.remove(id)?;
        if let Some(c) = self.compact.get_mut(slot as usize) {
            *c = None;
        }
        self.free.push(Reverse(slot));
        Some(slot)
    }

    /// The pattern kept compact in `slot`, parsed again.
    pub(crate) fn compact(&self, slot: u32) -> Option<Pattern> {
        let text = self.compact.get(slot as usize)?.as_ref()?;
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        Pattern::parse(&json, &OperatorRegistry::default()).ok()
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        super::hash::table_bytes(&self.ids)
            + self.ids.keys().map(|k| 16 + k.len() + 16).sum::<usize>()
            + self.free.capacity() * 4
            + self.compact.capacity() * std::mem::size_of::<Option<Box<str>>>()
            + self
                .compact
                .iter()
                .flatten()
                .map(|t| t.len() + 16)
                .sum::<usize>()
    }
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
