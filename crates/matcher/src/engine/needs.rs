//! The paths the engine's patterns read: a trie of field names over every
//! field of every stored pattern (not only the anchors), so that the raw-bytes
//! path ([`crate::raw`]) materialises those fields and nothing else.
//!
//! A node counts the patterns that read leaf values at its path (`leaf`) and
//! the paths that run through it (`refs`). Invariants: [`paths`] is a pure
//! function of the pattern, so removing a pattern undoes exactly what adding
//! it did; a node whose `refs` drops to zero is pruned, so the trie holds
//! exactly the paths of the stored patterns.

use super::hash::FxMap;
use crate::pattern::Pattern;
use crate::pattern::ast::{FieldBody, Node};

/// Up to this many children, a node finds a child by comparing names (the
/// lengths first) instead of hashing.
const SCAN_UP_TO: usize = 8;

/// One field path: its node in the trie.
#[derive(Debug, Default)]
pub(crate) struct NeedNode {
    /// The field name (the key of this node in its parent).
    name: Box<str>,
    /// Child paths.
    children: Vec<NeedNode>,
    /// Position in `children` by field name (as bytes, the form the raw
    /// scanner has), kept when there are more than [`SCAN_UP_TO`] children.
    by_name: Option<FxMap<Box<[u8]>, usize>>,
    /// Patterns that read leaf values (scalars) at this path.
    leaf: u32,
    /// Paths at or below this node.
    refs: u32,
}

impl NeedNode {
    /// The field name of this node.
    #[inline]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The child for a field name, if some pattern reads it.
    #[inline]
    pub(crate) fn child(&self, name: &[u8]) -> Option<&NeedNode> {
        match &self.by_name {
            None => self
                .children
                .iter()
                .find(|c| c.name.len() == name.len() && c.name.as_bytes() == name),
            Some(map) => map.get(name).and_then(|&i| self.children.get(i)),
        }
    }

    /// The position of the child named `name`, creating it if needed.
    fn child_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.position(name.as_bytes()) {
            return i;
        }
        self.children.push(NeedNode {
            name: name.into(),
            ..NeedNode::default()
        });
        let i = self.children.len() - 1;
        match &mut self.by_name {
            Some(map) => {
                map.insert(Box::from(name.as_bytes()), i);
            }
            None if self.children.len() > SCAN_UP_TO => self.reindex(),
            None => {}
        }
        i
    }

    /// Removes the child at `i` (swapping the last one into its place).
    fn remove_child(&mut self, i: usize) {
        let gone = self.children.swap_remove(i);
        if let Some(map) = &mut self.by_name {
            map.remove(gone.name.as_bytes());
            if let Some(moved) = self.children.get(i) {
                map.insert(Box::from(moved.name.as_bytes()), i);
            }
            if self.children.len() <= SCAN_UP_TO / 2 {
                self.by_name = None;
            }
        }
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        match &self.by_name {
            None => self.children.iter().position(|c| c.name.as_bytes() == name),
            Some(map) => map.get(name).copied(),
        }
    }

    /// Builds `by_name` from `children`.
    fn reindex(&mut self) {
        self.by_name = Some(
            self.children
                .iter()
                .enumerate()
                .map(|(i, c)| (Box::from(c.name.as_bytes()), i))
                .collect(),
        );
    }

    /// Whether some pattern reads fields below this path.
    #[inline]
    pub(crate) fn has_children(&self) -> bool {
        !self.children.is_empty()
    }

    /// Whether some pattern reads leaf values at this path.
    #[inline]
    pub(crate) fn reads_leaves(&self) -> bool {
        self.leaf > 0
    }

    /// Files the paths of `p`.
    pub(crate) fn add(&mut self, p: &Pattern) {
        for (path, leaf) in paths(p) {
            let mut n = &mut *self;
            for name in path {
                n.refs += 1;
                let i = n.child_index(name);
                n = &mut n.children[i];
            }
            n.refs += 1;
            if leaf {
                n.leaf += 1;
            }
        }
    }

    /// Removes the paths of `p` (which must have been added).
    pub(crate) fn remove(&mut self, p: &Pattern) {
        for (path, leaf) in paths(p) {
            remove_path(self, &path, leaf);
        }
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.children.capacity() * std::mem::size_of::<NeedNode>()
            + self.by_name.as_ref().map_or(0, |m| {
                super::hash::table_bytes(m) + m.keys().map(|k| k.len()).sum::<usize>()
            })
            + self
                .children
                .iter()
                .map(|c| c.name.len() + c.heap_bytes())
                .sum::<usize>()
    }
}

fn remove_path(n: &mut NeedNode, path: &[&str], leaf: bool) {
    n.refs = n.refs.saturating_sub(1);
    match path.split_first() {
        None => {
            if leaf {
                n.leaf = n.leaf.saturating_sub(1);
            }
        }
        Some((first, rest)) => {
            if let Some(i) = n.position(first.as_bytes()) {
                let child = &mut n.children[i];
                remove_path(child, rest, leaf);
                if child.refs == 0 {
                    n.remove_child(i);
                }
            }
        }
    }
}

/// Every field path `p` reads, with whether it reads leaf values there
/// (a leaf field) or only fields below it (a nested field).
pub(crate) fn paths(p: &Pattern) -> Vec<(Vec<&str>, bool)> {
    let mut out = Vec::new();
    node_paths(&p.root, &mut Vec::new(), &mut out);
    out
}

fn node_paths<'p>(n: &'p Node, path: &mut Vec<&'p str>, out: &mut Vec<(Vec<&'p str>, bool)>) {
    for f in &n.fields {
        path.push(&f.name);
        match &f.body {
            FieldBody::Leaf(_) => out.push((path.clone(), true)),
            FieldBody::Nested(child) => {
                out.push((path.clone(), false));
                node_paths(child, path, out);
            }
        }
        path.pop();
    }
    for branch in n.or.iter().flatten() {
        node_paths(branch, path, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::OperatorRegistry;

    fn pattern(j: serde_json::Value) -> Pattern {
        Pattern::parse(&j, &OperatorRegistry::default()).expect("valid pattern")
    }

    /// Adding and removing patterns over many names (past the point where a
    /// node indexes its children by hash) leaves exactly the paths of the
    /// patterns still held.
    #[test]
    fn paths_follow_adds_and_removes() {
        let mut root = NeedNode::default();
        let patterns: Vec<Pattern> = (0..40)
            .map(|i| pattern(serde_json::json!({format!("k{i}"): {"x": ["a"]}, "both": ["b"]})))
            .collect();
        for p in &patterns {
            root.add(p);
        }
        for i in (0..40).step_by(3) {
            root.remove(&patterns[i]);
        }
        for i in 0..40 {
            let child = root.child(format!("k{i}").as_bytes());
            assert_eq!(child.is_some(), i % 3 != 0, "k{i}");
            if let Some(c) = child {
                assert!(c.has_children() && !c.reads_leaves());
                assert!(c.child(b"x").is_some_and(NeedNode::reads_leaves));
            }
        }
        assert!(root.child(b"both").is_some_and(NeedNode::reads_leaves));
        for (i, p) in patterns.iter().enumerate() {
            if i % 3 != 0 {
                root.remove(p);
            }
        }
        assert!(!root.has_children());
        assert_eq!(root.refs, 0);
    }
}
