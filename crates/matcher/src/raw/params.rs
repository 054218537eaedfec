//! Reading a signal's `params` from raw bytes: every byte checked, the
//! model's limits enforced, and only the fields some pattern reads put in the
//! [`Tree`].
//!
//! The limits are those of `Signal::parse` (the params object is level 1;
//! every object or array inside adds a level; every key and every array
//! element is a field), counted over every occurrence of a repeated key, so
//! this path refuses at least what the model refuses. A field is projected
//! when the engine's need trie names its path; below a path that only
//! nested patterns read, scalars are dropped (the evaluator treats a scalar
//! there as absent), and below a path no pattern reads, values are only
//! checked.

use super::scan::{Bail, Budget, Cursor, MAX_NESTING, Scan, StrToken};
use super::tree::Tree;
use crate::engine::NeedNode;
use crate::view::Leaf;

/// The reader of one params object.
pub(crate) struct Params<'a, 'c> {
    pub(crate) cur: &'c mut Cursor<'a>,
    pub(crate) tree: &'c mut Tree<'a>,
    /// The field and depth limits, and the fields counted so far.
    pub(crate) budget: Budget,
}

impl<'a> Params<'a, '_> {
    /// Reads the params object at the cursor (`{` next, after whitespace),
    /// projecting the paths under `need`; returns the object's node.
    /// `nesting` counts the containers around it in the whole document.
    pub(crate) fn root(&mut self, need: &'a NeedNode, nesting: usize) -> Scan<u32> {
        if self.cur.ws() != Some(b'{') {
            return Err(Bail);
        }
        self.object(need, 1, nesting)
    }

    /// Reads an object (`{` at the cursor) at `level`, projected under `need`.
    fn object(&mut self, need: &'a NeedNode, level: usize, nesting: usize) -> Scan<u32> {
        if level > self.budget.max_depth || nesting >= MAX_NESTING {
            return Err(Bail);
        }
        self.cur.i += 1;
        let mark = self.tree.open_object();
        if self.cur.ws() == Some(b'}') {
            self.cur.i += 1;
            return Ok(self.tree.close_object(mark));
        }
        loop {
            if self.cur.ws() != Some(b'"') {
                return Err(Bail);
            }
            let key = self.cur.string()?;
            self.cur.expect(b':')?;
            self.budget.field()?;
            match child(self.cur.b, key, need)? {
                Some(c) => {
                    let v = self.value(c, level, nesting + 1)?;
                    self.tree.set(mark, c.name(), v);
                }
                None => self.cur.skip_member(&mut self.budget, level, nesting + 1)?,
            }
            match self.cur.ws() {
                Some(b',') => self.cur.i += 1,
                Some(b'}') => {
                    self.cur.i += 1;
                    return Ok(self.tree.close_object(mark));
                }
                _ => return Err(Bail),
            }
        }
    }

    /// Reads a value inside a container at `parent` level, projected under
    /// `need`; `None` when nothing of it is read by any pattern.
    fn value(&mut self, need: &'a NeedNode, parent: usize, nesting: usize) -> Scan<Option<u32>> {
        match self.cur.ws() {
            Some(b'{') => {
                if need.has_children() {
                    self.object(need, parent + 1, nesting).map(Some)
                } else {
                    self.cur
                        .skip(&mut self.budget, parent, nesting)
                        .map(|()| None)
                }
            }
            Some(b'[') => {
                let level = parent + 1;
                if level > self.budget.max_depth || nesting >= MAX_NESTING {
                    return Err(Bail);
                }
                self.cur.i += 1;
                let mark = self.tree.open_array();
                if self.cur.ws() == Some(b']') {
                    self.cur.i += 1;
                    return Ok(Some(self.tree.close_array(mark)));
                }
                loop {
                    self.budget.field()?;
                    if let Some(v) = self.value(need, level, nesting + 1)? {
                        self.tree.push_item(v);
                    }
                    match self.cur.ws() {
                        Some(b',') => self.cur.i += 1,
                        Some(b']') => {
                            self.cur.i += 1;
                            return Ok(Some(self.tree.close_array(mark)));
                        }
                        _ => return Err(Bail),
                    }
                }
            }
            Some(b'"') => {
                let s = self.cur.string()?;
                if !need.reads_leaves() {
                    return Ok(None);
                }
                Ok(Some(string_leaf(self.cur.b, s, self.tree)?))
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = self.cur.number()?;
                if !need.reads_leaves() {
                    return Ok(None);
                }
                let leaf = match n.small_int {
                    Some(i) => Leaf::Int(i),
                    None => number_leaf(&self.cur.b[n.start..n.end])?,
                };
                Ok(Some(self.tree.leaf(leaf)))
            }
            Some(b't' | b'f' | b'n') => {
                let l = self.cur.literal()?;
                Ok(need.reads_leaves().then(|| self.tree.leaf(l)))
            }
            _ => Err(Bail),
        }
    }
}

/// The child of `need` named by the key token, if some pattern reads it.
#[inline]
fn child<'a>(b: &[u8], key: StrToken, need: &'a NeedNode) -> Scan<Option<&'a NeedNode>> {
    if !need.has_children() {
        return Ok(None);
    }
    if key.escaped {
        let name = decode(b, key)?;
        return Ok(need.child(name.as_bytes()));
    }
    Ok(need.child(&b[key.start..key.end]))
}

/// Decodes a string token with escapes, exactly as the model's parser does.
#[cold]
pub(crate) fn decode(b: &[u8], s: StrToken) -> Scan<String> {
    serde_json::from_slice::<String>(&b[s.start - 1..s.end + 1]).map_err(|_| Bail)
}

/// A string scalar: borrowed from the input, or decoded when it had escapes.
#[inline]
fn string_leaf<'a>(b: &'a [u8], s: StrToken, tree: &mut Tree<'a>) -> Scan<u32> {
    if s.escaped {
        return Ok(tree.owned(decode(b, s)?));
    }
    let text = std::str::from_utf8(&b[s.start..s.end]).map_err(|_| Bail)?;
    Ok(tree.leaf(Leaf::Str(text)))
}

/// A number the scanner could not convert itself (see [`super::number`]).
fn number_leaf(text: &[u8]) -> Scan<Leaf<'static>> {
    super::number::leaf(text).ok_or(Bail)
}
