//! The projection of a signal's params that the raw path builds: a small
//! tree in three flat vectors, holding only the fields some pattern reads,
//! with strings borrowed from the input wherever they had no escapes.
//!
//! It implements the params views of [`crate::view`], so the engine's index
//! walk and the evaluator run on it unchanged. Invariants: an object's
//! entries are distinct keys (a repeated key keeps its last value, as the
//! model's parser does); node, entry and item indices always point inside
//! their vectors (they are only created by the builder below, bottom-up).

use std::borrow::Cow;

use signalbox_model::{Map, Value};

use crate::view::{Leaf, ObjView, Shape, ValueView};

/// One node of the tree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TNode<'a> {
    /// A scalar (strings borrowed from the input).
    Leaf(Leaf<'a>),
    /// A string that had escapes, decoded into `owned`.
    Owned(u32),
    /// An object: `entries[start..start + len]`.
    Obj(u32, u32),
    /// An array: `items[start..start + len]`.
    Arr(u32, u32),
}

/// The tree, and the stacks it is built with.
#[derive(Debug, Default)]
pub(crate) struct Tree<'a> {
    nodes: Vec<TNode<'a>>,
    entries: Vec<(&'a str, u32)>,
    items: Vec<u32>,
    owned: Vec<String>,
    /// Entries of the objects being built, innermost last.
    entry_stack: Vec<(&'a str, u32)>,
    /// Items of the arrays being built, innermost last.
    item_stack: Vec<u32>,
}

/// Reuses a vector's allocation for a vector of another lifetime (the
/// in-place collect of the standard library keeps the buffer when the
/// element layouts agree, as they do here).
fn recycle<A, B>(v: Vec<A>) -> Vec<B> {
    v.into_iter().filter_map(|_| None).collect()
}

/// Largest buffers (in elements) kept between calls.
const KEEP_UP_TO: usize = 4096;

/// Spare buffers of a [`Tree`], kept between calls (per thread).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    nodes: Vec<TNode<'static>>,
    entries: Vec<(&'static str, u32)>,
    items: Vec<u32>,
    entry_stack: Vec<(&'static str, u32)>,
    item_stack: Vec<u32>,
}

impl<'a> Tree<'a> {
    /// An empty tree on the spare buffers.
    pub(crate) fn from_spare(s: Spare) -> Tree<'a> {
        Tree {
            nodes: recycle(s.nodes),
            entries: recycle(s.entries),
            items: recycle(s.items),
            owned: Vec::new(),
            entry_stack: recycle(s.entry_stack),
            item_stack: recycle(s.item_stack),
        }
    }

    /// Gives the buffers back for the next call (none after an unusually
    /// large projection, so that a thread does not keep its memory).
    pub(crate) fn into_spare(self) -> Spare {
        if self.nodes.capacity() > KEEP_UP_TO || self.items.capacity() > KEEP_UP_TO {
            return Spare::default();
        }
        let mut items = self.items;
        items.clear();
        let mut item_stack = self.item_stack;
        item_stack.clear();
        Spare {
            nodes: recycle(self.nodes),
            entries: recycle(self.entries),
            items,
            entry_stack: recycle(self.entry_stack),
            item_stack,
        }
    }

    /// Adds a scalar; returns its node.
    #[inline]
    pub(crate) fn leaf(&mut self, l: Leaf<'a>) -> u32 {
        self.nodes.push(TNode::Leaf(l));
        (self.nodes.len() - 1) as u32
    }

    /// Adds a decoded string; returns its node.
    pub(crate) fn owned(&mut self, s: String) -> u32 {
        self.owned.push(s);
        self.nodes.push(TNode::Owned((self.owned.len() - 1) as u32));
        (self.nodes.len() - 1) as u32
    }

    /// Where the entries of a new object start on the stack.
    #[inline]
    pub(crate) fn open_object(&self) -> usize {
        self.entry_stack.len()
    }

    /// Sets `name` to `value` (or removes it, for `None`) in the object
    /// opened at `mark`; a repeated name keeps its last value.
    #[inline]
    pub(crate) fn set(&mut self, mark: usize, name: &'a str, value: Option<u32>) {
        let at = self.entry_stack[mark..]
            .iter()
            .position(|(n, _)| std::ptr::eq(n.as_ptr(), name.as_ptr()) && n.len() == name.len());
        match (at, value) {
            (None, Some(v)) => self.entry_stack.push((name, v)),
            (Some(i), Some(v)) => self.entry_stack[mark + i].1 = v,
            (Some(i), None) => {
                self.entry_stack.swap_remove(mark + i);
            }
            (None, None) => {}
        }
    }

    /// Closes the object opened at `mark`; returns its node.
    pub(crate) fn close_object(&mut self, mark: usize) -> u32 {
        let start = self.entries.len() as u32;
        self.entries.extend(self.entry_stack.drain(mark..));
        let len = self.entries.len() as u32 - start;
        self.nodes.push(TNode::Obj(start, len));
        (self.nodes.len() - 1) as u32
    }

    /// Where the items of a new array start on the stack.
    #[inline]
    pub(crate) fn open_array(&self) -> usize {
        self.item_stack.len()
    }

    /// Appends an item to the array being built.
    #[inline]
    pub(crate) fn push_item(&mut self, v: u32) {
        self.item_stack.push(v);
    }

    /// Closes the array opened at `mark`; returns its node.
    pub(crate) fn close_array(&mut self, mark: usize) -> u32 {
        let start = self.items.len() as u32;
        self.items.extend(self.item_stack.drain(mark..));
        let len = self.items.len() as u32 - start;
        self.nodes.push(TNode::Arr(start, len));
        (self.nodes.len() - 1) as u32
    }

    /// The object at node `id` as a view (an empty object if `id` is not one).
    pub(crate) fn object(&self, id: u32) -> TObj<'_> {
        match self.nodes.get(id as usize) {
            Some(TNode::Obj(start, len)) => TObj {
                t: self,
                start: *start,
                len: *len,
            },
            _ => TObj {
                t: self,
                start: 0,
                len: 0,
            },
        }
    }
}

/// A value of the tree.
#[derive(Clone, Copy)]
pub(crate) struct TVal<'t> {
    t: &'t Tree<'t>,
    id: u32,
}

/// An object of the tree.
#[derive(Clone, Copy)]
pub(crate) struct TObj<'t> {
    t: &'t Tree<'t>,
    start: u32,
    len: u32,
}

/// The elements of an array of the tree.
#[derive(Clone)]
pub(crate) struct TItems<'t> {
    t: &'t Tree<'t>,
    ids: std::slice::Iter<'t, u32>,
}

impl<'t> Iterator for TItems<'t> {
    type Item = TVal<'t>;

    #[inline]
    fn next(&mut self) -> Option<TVal<'t>> {
        self.ids.next().map(|&id| TVal { t: self.t, id })
    }
}

/// The entries of an object of the tree.
pub(crate) struct TEntries<'t> {
    t: &'t Tree<'t>,
    entries: std::slice::Iter<'t, (&'t str, u32)>,
}

impl<'t> Iterator for TEntries<'t> {
    type Item = (&'t str, TVal<'t>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .next()
            .map(|&(k, id)| (k, TVal { t: self.t, id }))
    }
}

impl<'t> TObj<'t> {
    fn slice(self) -> &'t [(&'t str, u32)] {
        let (s, l) = (self.start as usize, self.len as usize);
        self.t.entries.get(s..s + l).unwrap_or(&[])
    }
}

impl<'t> ValueView<'t> for TVal<'t> {
    type Obj = TObj<'t>;
    type Items = TItems<'t>;

    #[inline]
    fn shape(self) -> Shape<'t, Self> {
        match self.t.nodes.get(self.id as usize) {
            Some(TNode::Leaf(l)) => Shape::Leaf(*l),
            Some(TNode::Owned(k)) => Shape::Leaf(Leaf::Str(
                self.t.owned.get(*k as usize).map_or("", String::as_str),
            )),
            Some(TNode::Obj(start, len)) => Shape::Object(TObj {
                t: self.t,
                start: *start,
                len: *len,
            }),
            Some(TNode::Arr(start, len)) => {
                let (s, l) = (*start as usize, *len as usize);
                Shape::Array(TItems {
                    t: self.t,
                    ids: self.t.items.get(s..s + l).unwrap_or(&[]).iter(),
                })
            }
            None => Shape::Leaf(Leaf::Null),
        }
    }

    fn to_value(self) -> Cow<'t, Value> {
        Cow::Owned(match self.shape() {
            Shape::Leaf(l) => l.to_value(),
            Shape::Object(o) => Value::Object(
                o.entries()
                    .map(|(k, v)| (k.to_string(), v.to_value().into_owned()))
                    .collect::<Map>(),
            ),
            Shape::Array(items) => Value::Array(items.map(|v| v.to_value().into_owned()).collect()),
        })
    }
}

impl<'t> ObjView<'t> for TObj<'t> {
    type Val = TVal<'t>;
    type Entries = TEntries<'t>;

    #[inline]
    fn get(self, key: &str) -> Option<TVal<'t>> {
        self.slice()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, id)| TVal { t: self.t, id })
    }

    #[inline]
    fn len(self) -> usize {
        self.len as usize
    }

    fn entries(self) -> TEntries<'t> {
        TEntries {
            t: self.t,
            entries: self.slice().iter(),
        }
    }
}
