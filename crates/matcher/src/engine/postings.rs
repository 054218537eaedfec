//! Posting lists: the set of pattern slots filed under one index key.
//!
//! A list is 8 bytes in its map: empty, one slot inline, or the number of a
//! longer list kept in a [`Lists`] arena (one per path index), so that the
//! common single-slot key costs no allocation and a hash table entry stays
//! small. Invariants: a slot appears at most once (the engine deduplicates
//! anchors before inserting); insert and remove are O(1) (long lists keep a
//! position map, so removing one of a million entries does not scan); a list
//! always goes with the arena it was built in.

use super::hash::FxMap;

/// Lists longer than this keep a slot → position map.
const POSITION_MAP_AT: usize = 32;

/// A set of slots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Postings {
    /// No slots.
    #[default]
    Empty,
    /// Exactly one slot.
    One(u32),
    /// Several slots: a list in the arena.
    Many(u32),
}

/// The heap form of a posting list.
#[derive(Debug, Default)]
pub(crate) struct Many {
    items: Vec<u32>,
    pos: Option<FxMap<u32, u32>>,
}

/// The arena of the lists with several slots.
#[derive(Debug, Default)]
pub(crate) struct Lists {
    many: Vec<Many>,
    free: Vec<u32>,
}

impl Lists {
    fn alloc(&mut self, m: Many) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.many[i as usize] = m;
                i
            }
            None => {
                self.many.push(m);
                (self.many.len() - 1) as u32
            }
        }
    }

    fn release(&mut self, i: u32) {
        self.many[i as usize] = Many::default();
        self.free.push(i);
    }

    fn items(&self, i: u32) -> &[u32] {
        self.many
            .get(i as usize)
            .map_or(&[], |m| m.items.as_slice())
    }

    /// Approximate heap bytes of the arena and its lists.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.many.capacity() * std::mem::size_of::<Many>()
            + self.free.capacity() * 4
            + self
                .many
                .iter()
                .map(|m| {
                    (if m.items.capacity() > 0 { 16 } else { 0 })
                        + m.items.capacity() * 4
                        + m.pos.as_ref().map_or(0, super::hash::table_bytes)
                })
                .sum::<usize>()
    }
}

impl Postings {
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Postings::Empty)
    }

    #[cfg(test)]
    pub(crate) fn len(&self, lists: &Lists) -> usize {
        match self {
            Postings::Empty => 0,
            Postings::One(_) => 1,
            Postings::Many(i) => lists.items(*i).len(),
        }
    }

    pub(crate) fn insert(&mut self, slot: u32, lists: &mut Lists) {
        match *self {
            Postings::Empty => *self = Postings::One(slot),
            Postings::One(first) => {
                *self = Postings::Many(lists.alloc(Many {
                    items: vec![first, slot],
                    pos: None,
                }));
            }
            Postings::Many(i) => {
                let m = &mut lists.many[i as usize];
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
    pub(crate) fn remove(&mut self, slot: u32, lists: &mut Lists) -> bool {
        match *self {
            Postings::Empty => false,
            Postings::One(s) => {
                if s == slot {
                    *self = Postings::Empty;
                    true
                } else {
                    false
                }
            }
            Postings::Many(i) => {
                let m = &mut lists.many[i as usize];
                let at = match &mut m.pos {
                    Some(pos) => match pos.remove(&slot) {
                        Some(k) => k as usize,
                        None => return false,
                    },
                    None => match m.items.iter().position(|s| *s == slot) {
                        Some(k) => k,
                        None => return false,
                    },
                };
                m.items.swap_remove(at);
                if let (Some(pos), Some(moved)) = (&mut m.pos, m.items.get(at)) {
                    pos.insert(*moved, at as u32);
                }
                if m.items.len() == 1 {
                    *self = Postings::One(m.items[0]);
                    lists.release(i);
                } else if m.items.len() < POSITION_MAP_AT / 2 {
                    m.pos = None;
                }
                true
            }
        }
    }

    /// Whether `slot` is in the set.
    pub(crate) fn contains(&self, slot: u32, lists: &Lists) -> bool {
        match *self {
            Postings::Empty => false,
            Postings::One(s) => s == slot,
            Postings::Many(i) => match lists.many.get(i as usize) {
                Some(Many { pos: Some(pos), .. }) => pos.contains_key(&slot),
                Some(m) => m.items.contains(&slot),
                None => false,
            },
        }
    }

    /// Appends every slot that is not in `except` to `out`.
    pub(crate) fn extend_except(&self, except: &Postings, lists: &Lists, out: &mut Vec<u32>) {
        match *self {
            Postings::Empty => {}
            Postings::One(s) => {
                if !except.contains(s, lists) {
                    out.push(s);
                }
            }
            Postings::Many(i) => out.extend(
                lists
                    .items(i)
                    .iter()
                    .filter(|s| !except.contains(**s, lists)),
            ),
        }
    }

    /// Appends every slot to `out`.
    #[inline]
    pub(crate) fn extend_into(&self, lists: &Lists, out: &mut Vec<u32>) {
        match *self {
            Postings::Empty => {}
            Postings::One(s) => out.push(s),
            Postings::Many(i) => out.extend_from_slice(lists.items(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_large_and_small() {
        let mut lists = Lists::default();
        let mut p = Postings::default();
        let mut q = Postings::default();
        for i in 0..100 {
            p.insert(i, &mut lists);
            q.insert(1000 + i, &mut lists);
        }
        assert_eq!(p.len(&lists), 100);
        for i in (0..100).step_by(2) {
            assert!(p.remove(i, &mut lists));
        }
        assert!(!p.remove(0, &mut lists));
        let mut out = Vec::new();
        p.extend_into(&lists, &mut out);
        out.sort_unstable();
        assert_eq!(out, (1..100).step_by(2).collect::<Vec<_>>());
        for i in (1..100).step_by(2) {
            assert!(p.remove(i, &mut lists));
        }
        assert!(p.is_empty());
        assert_eq!(q.len(&lists), 100);
        // The freed list is reused by the next long list.
        let mut r = Postings::default();
        r.insert(1, &mut lists);
        r.insert(2, &mut lists);
        assert_eq!(r, Postings::Many(0));
        assert_eq!(std::mem::size_of::<Postings>(), 8);
    }
}
