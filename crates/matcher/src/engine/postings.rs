//! Posting lists: the set of pattern slots filed under one index key.
//!
//! Invariants: a slot appears at most once (the engine deduplicates anchors
//! before inserting); insert and remove are O(1) (large lists keep a position
//! map, so removing one of a million entries does not scan); the common case of
//! a single slot takes no heap allocation.

use super::hash::FxMap;

/// Lists longer than this keep a slot → position map.
const POSITION_MAP_AT: usize = 32;

/// A set of slots.
#[derive(Debug, Default)]
pub(crate) enum Postings {
    /// No slots.
    #[default]
    Empty,
    /// Exactly one slot.
    One(u32),
    /// Several slots.
    Many(Box<Many>),
}

/// The heap form of a posting list.
#[derive(Debug, Default)]
pub(crate) struct Many {
    items: Vec<u32>,
    pos: Option<FxMap<u32, u32>>,
}

impl Postings {
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Postings::Empty)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Postings::Empty => 0,
            Postings::One(_) => 1,
            Postings::Many(m) => m.items.len(),
        }
    }

    pub(crate) fn insert(&mut self, slot: u32) {
        match self {
            Postings::Empty => *self = Postings::One(slot),
            Postings::One(s) => {
                let first = *s;
                *self = Postings::Many(Box::new(Many {
                    items: vec![first, slot],
                    pos: None,
                }));
            }
            Postings::Many(m) => {
                m.items.push(slot);
                if let Some(pos) = &mut m.pos {
                    pos.insert(slot, (m.items.len() - 1) as u32);
                } else if m.items.len() > POSITION_MAP_AT {
                    m.pos = Some(
                        m.items
                            .iter()
                            .enumerate()
                            .map(|(i, s)| (*s, i as u32))
                            .collect(),
                    );
                }
            }
        }
    }

    /// Removes `slot`; returns whether it was there.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        match self {
            Postings::Empty => false,
            Postings::One(s) => {
                if *s == slot {
                    *self = Postings::Empty;
                    true
                } else {
                    false
                }
            }
            Postings::Many(m) => {
                let at = match &mut m.pos {
                    Some(pos) => match pos.remove(&slot) {
                        Some(i) => i as usize,
                        None => return false,
                    },
                    None => match m.items.iter().position(|s| *s == slot) {
                        Some(i) => i,
                        None => return false,
                    },
                };
                m.items.swap_remove(at);
                if let (Some(pos), Some(moved)) = (&mut m.pos, m.items.get(at)) {
                    pos.insert(*moved, at as u32);
                }
                if m.items.len() == 1 {
                    *self = Postings::One(m.items[0]);
                } else if m.items.len() < POSITION_MAP_AT / 2 {
                    m.pos = None;
                }
                true
            }
        }
    }

    /// Whether `slot` is in the set.
    pub(crate) fn contains(&self, slot: u32) -> bool {
        match self {
            Postings::Empty => false,
            Postings::One(s) => *s == slot,
            Postings::Many(m) => match &m.pos {
                Some(pos) => pos.contains_key(&slot),
                None => m.items.contains(&slot),
            },
        }
    }

    /// Appends every slot that is not in `except` to `out`.
    pub(crate) fn extend_except(&self, except: &Postings, out: &mut Vec<u32>) {
        match self {
            Postings::Empty => {}
            Postings::One(s) => {
                if !except.contains(*s) {
                    out.push(*s);
                }
            }
            Postings::Many(m) => out.extend(m.items.iter().filter(|s| !except.contains(**s))),
        }
    }

    /// Appends every slot to `out`.
    #[inline]
    pub(crate) fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            Postings::Empty => {}
            Postings::One(s) => out.push(*s),
            Postings::Many(m) => out.extend_from_slice(&m.items),
        }
    }

    /// Approximate heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Postings::Many(m) => {
                std::mem::size_of::<Many>()
                    + m.items.capacity() * 4
                    + m.pos.as_ref().map_or(0, super::hash::table_bytes)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_large_and_small() {
        let mut p = Postings::default();
        for i in 0..100 {
            p.insert(i);
        }
        assert_eq!(p.len(), 100);
        for i in (0..100).step_by(2) {
            assert!(p.remove(i));
        }
        assert!(!p.remove(0));
        let mut out = Vec::new();
        p.extend_into(&mut out);
        out.sort_unstable();
        assert_eq!(out, (1..100).step_by(2).collect::<Vec<_>>());
        for i in (1..100).step_by(2) {
            assert!(p.remove(i));
        }
        assert!(p.is_empty());
    }
}
