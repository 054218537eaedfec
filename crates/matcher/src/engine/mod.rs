//! [`Engine`]: many patterns, one index; match a signal's params to the ids of
//! the patterns it satisfies.
//!
//! Concurrency ("left-right"): the engine keeps two identical copies of its
//! index (the writer's bookkeeping, [`registry::Registry`], is kept once). Readers use the copy named by `active`, through `try_read`: a reader
//! never waits for a writer — if the copy it picked is being written (it loaded
//! `active` just before a switch), it picks again and lands on the other copy.
//! A writer (one at a time) applies its change to the inactive copy, switches
//! `active`, waits for the readers still on the old copy to leave, then applies
//! the same change to it. Patterns and ids are shared between the copies
//! (`Arc`), only the index structures are doubled.
//!
//! Invariants: both copies hold the same patterns under the same slots whenever
//! no write is in progress; a reader sees the state before or after a write,
//! never a mix; `matches` returns ids sorted and without duplicates.

mod anchor;
mod hash;
mod index;
mod inline_key;
pub(crate) mod memory;
mod needs;
mod path_index;
mod postings;
mod ranges;
mod registry;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};

use signalbox_model::Map;

use crate::explain::{Explanation, explain};
use crate::pattern::Pattern;
pub(crate) use index::Index;
pub(crate) use needs::NeedNode;
use registry::Registry;

/// Work counters of one `matches` call (for tests of linear behaviour; never timing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Hash probes and leaf lookups made while walking the params.
    pub index_probes: u64,
    /// Patterns selected by the index for verification.
    pub candidates: u64,
    /// Evaluation steps spent verifying candidates.
    pub eval_steps: u64,
}

/// The matching engine. `Send + Sync`; readers never block on writers.
#[derive(Debug)]
pub struct Engine {
    copies: [RwLock<Index>; 2],
    active: AtomicUsize,
    writer: Mutex<Registry>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An empty engine.
    pub fn new() -> Engine {
        Engine {
            copies: [RwLock::new(Index::default()), RwLock::new(Index::default())],
            active: AtomicUsize::new(0),
            writer: Mutex::new(Registry::default()),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        let mut spins = 0u32;
        loop {
            let a = self.active.load(Ordering::Acquire);
            match self.copies[a].try_read() {
                Ok(guard) => return f(&guard),
                Err(TryLockError::Poisoned(p)) => return f(&p.into_inner()),
                Err(TryLockError::WouldBlock) => {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// The writer's lock and bookkeeping.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `op` to both copies (the caller holds the writer's lock).
    fn write(&self, _writer: &mut Registry, op: impl Fn(&mut Index)) {
        let old = self.active.load(Ordering::Acquire);
        let new = 1 - old;
        op(&mut self.copies[new].write().unwrap_or_else(|p| p.into_inner()));
        self.active.store(new, Ordering::Release);
        op(&mut self.copies[old].write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The pattern in `slot`: its compact form when the registry keeps one
    /// (the index then holds no tree, or only the residual), else its tree
    /// from the index.
    fn stored(&self, reg: &Registry, slot: u32) -> Option<Pattern> {
        reg.compact(slot)
            .or_else(|| self.read(|ix| ix.tree(slot).cloned()))
    }

    /// Adds `pattern` under `id`, replacing any pattern with that id.
    pub fn add(&self, id: &str, pattern: Pattern) {
        let mut reg = self.registry();
        self.remove_locked(&mut reg, id);
        let anchors = anchor::anchors(&pattern);
        let decided = anchor::decides_alone(&pattern);
        // The tree the index verifies candidates with: none when the anchors
        // decide the pattern alone, the residual when they decide one of its
        // fields, else a copy of the pattern without the parser's spare
        // capacity (a third of the size or less). The registry keeps the
        // canonical text of every pattern the index does not hold whole.
        let (tree, text) = if decided {
            (None, Some(registry::compact_text(&pattern)))
        } else if let Some(rest) = anchor::residual(&pattern, &anchors) {
            (Some(rest), Some(registry::compact_text(&pattern)))
        } else {
            (Some(memory::compacted(pattern.clone())), None)
        };
        let slot = reg.take(text);
        let shared: Arc<str> = Arc::from(id);
        self.write(&mut reg, |ix| {
            ix.add(slot, &shared, &pattern, tree.as_ref(), &anchors)
        });
        self.read(|ix| reg.bind(slot, id, |s| ix.id(s)));
    }

    /// Removes the pattern with this id; returns whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        let mut reg = self.registry();
        self.remove_locked(&mut reg, id)
    }

    fn remove_locked(&self, reg: &mut Registry, id: &str) -> bool {
        let Some(slot) = self.read(|ix| reg.slot(id, |s| ix.id(s))) else {
            return false;
        };
        let pattern = self.stored(reg, slot);
        // Released while the index copies still hold the id it is found by.
        self.read(|ix| reg.release(id, |s| ix.id(s)));
        if let Some(pattern) = pattern {
            let anchors = anchor::anchors(&pattern);
            self.write(reg, |ix| ix.remove(slot, &pattern, &anchors));
        }
        true
    }

    /// The ids of the patterns that match `params`, sorted, without duplicates.
    pub fn matches(&self, params: &Map) -> Vec<String> {
        self.matches_shared(params)
            .iter()
            .map(|id| id.to_string())
            .collect()
    }

    /// Like [`matches`](Engine::matches), with the ids shared with the engine
    /// instead of copied: no allocation per matched id.
    pub fn matches_shared(&self, params: &Map) -> Vec<Arc<str>> {
        self.read(|ix| ix.matches(params, &mut MatchStats::default()))
    }

    /// Runs `f` on the active index copy (for the raw path).
    pub(crate) fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        self.read(f)
    }

    /// Like [`matches`](Engine::matches), also returning work counters.
    pub fn matches_with_stats(&self, params: &Map) -> (Vec<String>, MatchStats) {
        let mut stats = MatchStats::default();
        let ids = self.read(|ix| ix.matches(params, &mut stats));
        (ids.iter().map(|id| id.to_string()).collect(), stats)
    }

    /// Explains the pattern `id` against `params`; `None` if there is no such id.
    pub fn explain(&self, id: &str, params: &Map) -> Option<Explanation> {
        Some(explain(&self.get(id)?, params))
    }

    /// The pattern stored under `id`.
    pub fn get(&self, id: &str) -> Option<Pattern> {
        let reg = self.registry();
        let slot = self.read(|ix| reg.slot(id, |s| ix.id(s)))?;
        self.stored(&reg, slot)
    }

    /// Every id, sorted.
    pub fn ids(&self) -> Vec<String> {
        // The writer's lock: no write is half done while the ids are read.
        let _reg = self.registry();
        self.read(Index::ids)
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.read(Index::len)
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of leaf conditions over all patterns.
    pub fn condition_count(&self) -> usize {
        self.read(Index::conditions)
    }

    /// Approximate heap bytes held: both index copies, the ids and pattern
    /// trees they share, and the writer's bookkeeping (the slot table by id,
    /// compact patterns).
    pub fn memory_bytes(&self) -> usize {
        let registry = self.registry().heap_bytes();
        registry + self.read(|ix| 2 * ix.index_bytes() + ix.shared_bytes())
    }
}
