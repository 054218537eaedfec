//! Approximate memory accounting for stored patterns (the figure behind
//! `Engine::memory_bytes`). Estimates count allocations by their requested size
//! plus 16 bytes of allocator overhead; they are checked against the process's
//! resident set in the scale benchmark.

use std::mem::size_of;

use crate::pattern::Pattern;
use crate::pattern::ast::{Alt, AnythingBut, Cond, FieldBody, Lit, Node};

const ALLOC: usize = 16;

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
