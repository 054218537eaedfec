//! One copy of the engine's index: the patterns by slot (their ids, and the
//! trees of those that need verifying), and a trie of field paths whose
//! nodes hold [`PathIndex`]es. Which slot holds which id is the writer's
//! business ([`super::registry`]); both copies get the same slots.
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
//! ghost entry survives; a slot has a tree exactly when its pattern is not
//! decided by its anchors alone, and that tree is the pattern or its
//! residual (which a candidate of that slot satisfies exactly when it
//! satisfies the pattern).

use std::sync::Arc;

use super::MatchStats;
use super::anchor::{Anchors, Key};
use super::hash::FxMap;
use super::needs::NeedNode;
use super::path_index::PathIndex;
use super::postings::{Lists, Postings};
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
    /// The tree to verify candidates with: the pattern, or its residual
    /// ([`super::anchor::residual`]) when the anchor decides one of its
    /// fields; `None` when its anchors decide it alone
    /// ([`super::anchor::decides_alone`]): selected means matched, no
    /// verification. The registry keeps the compact form of every pattern
    /// not held whole here.
    pub(crate) pattern: Option<Pattern>,
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
    /// Occupied slots.
    count: usize,
    root: TrieNode,
    always: Postings,
    /// The arena of `always` when it holds several slots.
    always_lists: Lists,
    conditions: usize,
    /// Every path the stored patterns read (for the raw-bytes path).
    needs: NeedNode,
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn conditions(&self) -> usize {
        self.conditions
    }

    /// The paths the stored patterns read.
    pub(crate) fn needs(&self) -> &NeedNode {
        &self.needs
    }

    /// The id in `slot`.
    pub(crate) fn id(&self, slot: u32) -> Option<&str> {
        self.slots.get(slot as usize)?.as_ref().map(|s| &*s.id)
    }

    /// Every id, sorted.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .slots
            .iter()
            .flatten()
            .map(|s| s.id.to_string())
            .collect();
        v.sort();
        v
    }

    /// The tree kept in `slot` (none for patterns decided by their anchors).
    pub(crate) fn tree(&self, slot: u32) -> Option<&Pattern> {
        self.slots.get(slot as usize)?.as_ref()?.pattern.as_ref()
    }

    /// Adds `pattern` under `id` in `slot` (free in this copy), filed under
    /// `anchors`; `tree` is what candidates are verified with (none when the
    /// anchors decide the pattern alone).
    pub(crate) fn add(
        &mut self,
        slot: u32,
        id: &Arc<str>,
        pattern: &Pattern,
        tree: Option<&Pattern>,
        anchors: &Anchors,
    ) {
        match anchors {
            Anchors::Always => self.always.insert(slot, &mut self.always_lists),
            Anchors::Keys(keys) => {
                for (path, key) in keys {
                    insert(&mut self.root, path, key, slot);
                }
            }
        }
        self.conditions += pattern.condition_count();
        self.needs.add(pattern);
        let at = slot as usize;
        if self.slots.len() <= at {
            let extra = at + 1 - self.slots.len();
            super::memory::grow_by_eighth(&mut self.slots, extra);
            self.slots.resize_with(at + 1, || None);
        }
        self.slots[at] = Some(Slot {
            id: id.clone(),
            pattern: tree.cloned(),
        });
        self.count += 1;
    }

    /// Removes `pattern` (filed under `anchors`) from `slot`.
    pub(crate) fn remove(&mut self, slot: u32, pattern: &Pattern, anchors: &Anchors) {
        let Some(Some(_)) = self.slots.get_mut(slot as usize).map(Option::take) else {
            return;
        };
        match anchors {
            Anchors::Always => {
                self.always.remove(slot, &mut self.always_lists);
            }
            Anchors::Keys(keys) => {
                for (path, key) in keys {
                    remove(&mut self.root, path, key, slot);
                }
            }
        }
        self.conditions -= pattern.condition_count();
        self.needs.remove(pattern);
        self.count -= 1;
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
        self.always.extend_into(&self.always_lists, cands);
        if cands.len() > 1 {
            cands.sort_unstable();
            cands.dedup();
        }
        stats.candidates += cands.len() as u64;
        let mut out: Vec<Arc<str>> = Vec::new();
        for &slot in cands.iter() {
            if let Some(s) = &self.slots[slot as usize]
                && s.pattern
                    .as_ref()
                    .is_none_or(|p| eval::node_on_map(&p.root, Some(params), &mut stats.eval_steps))
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
            + trie_bytes(&self.root)
            + self.always_lists.heap_bytes()
            + self.needs.heap_bytes()
    }

    /// Approximate heap bytes of what both copies share: the ids (each an
    /// `Arc<str>`: two counts, the text, the allocator's overhead) and the
    /// pattern trees.
    pub(crate) fn shared_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| {
                16 + s.id.len() + 16 + s.pattern.as_ref().map_or(0, super::memory::pattern_bytes)
            })
            .sum()
    }
}

fn trie_bytes(n: &TrieNode) -> usize {
    super::hash::table_bytes(&n.children)
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
            ix.present_into(out);
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
