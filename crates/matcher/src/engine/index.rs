//! One copy of the engine's state: the patterns by slot, the id → slot map,
//! and a trie of field paths whose nodes hold [`PathIndex`]es.
//!
//! Matching walks the signal's params along the trie only (a key no pattern
//! mentions costs one failed hash probe, and a trie node with few children looks
//! its children up instead of scanning the params), looks each leaf value up in
//! the path's index, gathers candidate slots, and verifies each candidate with
//! the pattern evaluator (which enforces array consistency, `$or`, and runs
//! custom operators last).
//!
//! Invariants: every stored pattern is reachable from its anchors (or the
//! always list) and from nothing else; removing a pattern removes exactly the
//! entries its anchors name and prunes trie nodes that become empty, so no
//! ghost entry survives; slot numbers are assigned deterministically (lowest
//! free first), so two copies fed the same operations are identical.

use std::sync::Arc;

use super::MatchStats;
use super::anchor::{Anchors, Key};
use super::hash::FxMap;
use super::needs::NeedNode;
use super::path_index::PathIndex;
use super::postings::Postings;
use crate::eval;
use crate::pattern::Pattern;
use crate::view::{ObjView, Shape, ValueView};

thread_local! {
    /// Per-thread candidate buffer, reused across `matches` calls.
    static SCRATCH: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A stored pattern.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: Arc<str>,
    pub(crate) pattern: Pattern,
    /// The anchors decide this pattern alone ([`super::anchor::decides_alone`]):
    /// selected means matched, no verification.
    decided: bool,
}

/// One node of the path trie.
#[derive(Debug, Default)]
struct TrieNode {
    children: FxMap<Box<str>, TrieNode>,
    index: Option<Box<PathIndex>>,
    /// Anchor entries at or below this node.
    refs: usize,
}

/// The engine state (one of the two copies).
#[derive(Debug, Default)]
pub(crate) struct Index {
    slots: Vec<Option<Slot>>,
    free: std::collections::BinaryHeap<std::cmp::Reverse<u32>>,
    ids: FxMap<Arc<str>, u32>,
    root: TrieNode,
    always: Postings,
    conditions: usize,
    /// Every path the stored patterns read (for the raw-bytes path).
    needs: NeedNode,
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn conditions(&self) -> usize {
        self.conditions
    }

    /// The paths the stored patterns read.
    pub(crate) fn needs(&self) -> &NeedNode {
        &self.needs
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Pattern> {
        let slot = *self.ids.get(id)?;
        self.slots[slot as usize].as_ref().map(|s| &s.pattern)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ids.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Adds (or replaces) a pattern under `id`, filed under `anchors`.
    pub(crate) fn add(&mut self, id: &Arc<str>, pattern: &Pattern, anchors: &Anchors) {
        if self.ids.contains_key(&**id) {
            self.remove(id);
        }
        let slot = match self.free.pop() {
            Some(std::cmp::Reverse(s)) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        match anchors {
            Anchors::Always => self.always.insert(slot),
            Anchors::Keys(keys) => {
                for (path, key) in keys {
                    insert(&mut self.root, path, key, slot);
                }
            }
        }
        self.conditions += pattern.condition_count();
        self.needs.add(pattern);
        self.slots[slot as usize] = Some(Slot {
            id: id.clone(),
            pattern: pattern.clone(),
            decided: super::anchor::decides_alone(pattern),
        });
        self.ids.insert(id.clone(), slot);
    }

    /// Removes the pattern stored under `id`; returns it.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Pattern> {
        let slot = self.ids.remove(id)?;
        let stored = self.slots[slot as usize].take()?;
        match super::anchor::anchors(&stored.pattern) {
            Anchors::Always => {
                self.always.remove(slot);
            }
            Anchors::Keys(keys) => {
                for (path, key) in &keys {
                    remove(&mut self.root, path, key, slot);
                }
            }
        }
        self.conditions -= stored.pattern.condition_count();
        self.needs.remove(&stored.pattern);
        self.free.push(std::cmp::Reverse(slot));
        Some(stored.pattern)
    }

    /// The ids of the patterns matching `params`, sorted.
    pub(crate) fn matches<'v, O: ObjView<'v>>(
        &self,
        params: O,
        stats: &mut MatchStats,
    ) -> Vec<Arc<str>> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                self.matches_with(params, stats, &mut buf)
            }
            Err(_) => self.matches_with(params, stats, &mut Vec::new()),
        })
    }

    fn matches_with<'v, O: ObjView<'v>>(
        &self,
        params: O,
        stats: &mut MatchStats,
        cands: &mut Vec<u32>,
    ) -> Vec<Arc<str>> {
        walk_map(&self.root, params, cands, &mut stats.index_probes);
        self.always.extend_into(cands);
        if cands.len() > 1 {
            cands.sort_unstable();
            cands.dedup();
        }
        stats.candidates += cands.len() as u64;
        let mut out: Vec<Arc<str>> = Vec::new();
        for &slot in cands.iter() {
            if let Some(s) = &self.slots[slot as usize]
                && (s.decided
                    || eval::node_on_map(&s.pattern.root, Some(params), &mut stats.eval_steps))
            {
                out.push(s.id.clone());
            }
        }
        out.sort_unstable();
        out
    }

    /// Approximate heap bytes of the index structures (patterns excluded).
    pub(crate) fn index_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Slot>>()
            + self.free.capacity() * 4
            + self.ids.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1)
            + trie_bytes(&self.root)
            + self.always.heap_bytes()
            + self.needs.heap_bytes()
    }

    /// Approximate heap bytes of the stored patterns and ids (shared by both copies).
    pub(crate) fn pattern_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| 16 + s.id.len() + super::memory::pattern_bytes(&s.pattern))
            .sum()
    }
}

fn trie_bytes(n: &TrieNode) -> usize {
    n.children.capacity() * (std::mem::size_of::<(Box<str>, TrieNode)>() + 1)
        + n.children
            .iter()
            .map(|(k, c)| k.len() + trie_bytes(c))
            .sum::<usize>()
        + n.index.as_ref().map_or(0, |ix| ix.heap_bytes())
}

fn insert(node: &mut TrieNode, path: &[Box<str>], key: &Key, slot: u32) {
    node.refs += 1;
    match path.split_first() {
        None => node
            .index
            .get_or_insert_with(Default::default)
            .insert(key, slot),
        Some((first, rest)) => {
            let child = node.children.entry(first.clone()).or_default();
            insert(child, rest, key, slot);
        }
    }
}

fn remove(node: &mut TrieNode, path: &[Box<str>], key: &Key, slot: u32) {
    node.refs = node.refs.saturating_sub(1);
    match path.split_first() {
        None => {
            if let Some(ix) = &mut node.index {
                ix.remove(key, slot);
                if ix.is_empty() {
                    node.index = None;
                }
            }
        }
        Some((first, rest)) => {
            if let Some(child) = node.children.get_mut(&**first) {
                remove(child, rest, key, slot);
                if child.refs == 0 {
                    node.children.remove(&**first);
                }
            }
        }
    }
}

/// Walks the children of `node` over the object `m`.
fn walk_map<'v, O: ObjView<'v>>(node: &TrieNode, m: O, out: &mut Vec<u32>, probes: &mut u64) {
    if node.children.len() <= m.len() {
        for (k, child) in &node.children {
            *probes += 1;
            if let Some(v) = m.get(k) {
                walk_value(child, v, out, probes);
            }
        }
    } else {
        for (k, v) in m.entries() {
            *probes += 1;
            if let Some(child) = node.children.get(k) {
                walk_value(child, v, out, probes);
            }
        }
    }
}

/// Visits `node` with the value found at its path.
fn walk_value<'v, V: ValueView<'v>>(node: &TrieNode, v: V, out: &mut Vec<u32>, probes: &mut u64) {
    if let Some(ix) = &node.index {
        let mut any = false;
        eval::any_leaf(v, &mut |_, leaf| {
            any = true;
            ix.lookup(leaf, out, probes);
            false
        });
        if any {
            ix.present.extend_into(out);
        }
    }
    if !node.children.is_empty() {
        walk_children(node, v, out, probes);
    }
}

fn walk_children<'v, V: ValueView<'v>>(
    node: &TrieNode,
    v: V,
    out: &mut Vec<u32>,
    probes: &mut u64,
) {
    match v.shape() {
        Shape::Object(m) => walk_map(node, m, out, probes),
        Shape::Array(items) => {
            for it in items {
                if !matches!(it.shape(), Shape::Leaf(_)) {
                    walk_children(node, it, out, probes);
                }
            }
        }
        Shape::Leaf(_) => {}
    }
}
