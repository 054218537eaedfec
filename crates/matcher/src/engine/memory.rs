//! Approximate memory accounting for stored patterns (the figure behind
//! `Engine::memory_bytes`), and the helpers that keep the stored forms small:
//! [`compacted`] (a pattern tree whose vectors and strings hold no spare
//! capacity) and [`grow_by_eighth`] (growth of the engine's large arrays by
//! an eighth instead of doubling). Estimates count allocations by their
//! capacity plus 16 bytes of allocator overhead; they are checked against the
//! process's resident set in the scale benchmark.
//!
//! Invariant: [`compacted`] returns a pattern equal to its input.

use std::mem::size_of;
use std::sync::Arc;

use crate::pattern::Pattern;
use crate::pattern::ast::{Alt, AnythingBut, Cond, FieldBody, Lit, Node};

const ALLOC: usize = 16;

/// `p` with a tree of its own that holds no spare capacity (the parser grows
/// its vectors by pushing, which leaves room for four conditions of 112 bytes
/// where there is one). A clone allocates each vector and string at its
/// length; the copy is made only for trees the index keeps.
pub(crate) fn compacted(p: Pattern) -> Pattern {
    Pattern {
        root: Arc::new(Node::clone(&p.root)),
    }
}

/// Makes room for `extra` more elements in `v`, growing it by an eighth of
/// its length (at least `extra`) rather than doubling: the engine's arrays
/// indexed by slot, and the registry's text, then hold at most about 12%
/// spare capacity at any size. A large block is moved by the allocator's
/// `realloc` (on Linux, a remap of its pages, not a copy).
pub(crate) fn grow_by_eighth<T>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() < extra {
        v.reserve_exact(extra.max(v.len() / 8).max(16));
    }
}

pub(crate) fn pattern_bytes(p: &Pattern) -> usize {
    ALLOC + 16 + node(&p.root)
}

fn node(n: &Node) -> usize {
    let mut b = size_of::<Node>();
    b += ALLOC + n.fields.capacity() * size_of::<crate::pattern::ast::Field>();
    b += ALLOC + n.order.capacity() * 16;
    for f in &n.fields {
        b += ALLOC + f.name.capacity();
        b += match &f.body {
            FieldBody::Leaf(alts) => {
                ALLOC + alts.capacity() * size_of::<Alt>() + alts.iter().map(alt).sum::<usize>()
            }
            FieldBody::Nested(c) => node(c),
        };
    }
    if let Some(branches) = &n.or {
        b += ALLOC + branches.iter().map(node).sum::<usize>();
    }
    b
}

fn alt(a: &Alt) -> usize {
    ALLOC + a.conds.capacity() * size_of::<Cond>() + a.conds.iter().map(cond).sum::<usize>()
}

fn lit(l: &Lit) -> usize {
    match l {
        Lit::Str(s) => ALLOC + s.capacity(),
        _ => 0,
    }
}

fn cond(c: &Cond) -> usize {
    match c {
        Cond::Exact(l) => lit(l),
        Cond::Prefix(a) | Cond::Suffix(a) => 2 * ALLOC + a.text.capacity() + a.key.capacity(),
        Cond::EqualsIgnoreCase(a, b) => 2 * ALLOC + a.capacity() + b.capacity(),
        Cond::Wildcard(w) => {
            ALLOC
                + w.source.capacity()
                + w.pieces
                    .iter()
                    .map(|p| ALLOC + 24 + p.capacity())
                    .sum::<usize>()
        }
        Cond::AnythingBut(ab) => match ab {
            AnythingBut::Values(v) => ALLOC + v.iter().map(|l| 32 + lit(l)).sum::<usize>(),
            AnythingBut::Prefix(s) | AnythingBut::Suffix(s) => ALLOC + s.capacity(),
            AnythingBut::EqualsIgnoreCase(v) => {
                ALLOC
                    + v.iter()
                        .map(|(a, b)| 48 + 2 * ALLOC + a.capacity() + b.capacity())
                        .sum::<usize>()
            }
            AnythingBut::Wildcard(v) => ALLOC + v.len() * 128,
        },
        Cond::Cidr(c) => ALLOC + c.source.capacity(),
        Cond::Custom(c) => ALLOC + c.name.capacity() + 64,
        Cond::Numeric(_) | Cond::Exists(_) => 0,
    }
}
