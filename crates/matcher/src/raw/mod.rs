//! The raw-bytes path: from the JSON bytes of a signal (or of its params) to
//! the ids of the matching patterns, decoding only what some pattern reads.
//!
//! One pass over the bytes checks everything the model's parser checks and
//! builds a [`tree::Tree`] of the fields named by the engine's need trie
//! (`engine::NeedNode`); the engine's index walk and evaluator then run on
//! that tree through the params views of [`crate::view`]. Since every
//! pattern reads only the paths it names, and the tree holds those paths
//! exactly as the full params would, the ids are those of matching the full
//! params.
//!
//! Invariant: this path decides only inputs it is sure of. On anything else
//! it returns [`Bail`], and the public entry points
//! (`Engine::matches_signal_json`, `Engine::matches_params_json`,
//! [`crate::match_signal_json`]) fall back to the model's parser and the
//! parsed-params match, so refusals carry the model's own errors.

mod number;
mod params;
mod scan;
mod signal;
#[cfg(test)]
mod tests;
mod tree;

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

use signalbox_model::signal::Signal;
use signalbox_model::{FieldError, Limits};

use crate::engine::{Engine, Index, MatchStats};
pub(crate) use scan::Bail;
use scan::{Budget, Cursor, Scan};
pub(crate) use signal::{Envelope, Stop};
use tree::{Spare, Tree};

thread_local! {
    /// Buffers of the projection tree, reused across calls on one thread.
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// Runs `f` with an empty tree on this thread's spare buffers.
fn with_tree<'a, R>(f: impl FnOnce(&mut Tree<'a>) -> R) -> R {
    let spare = SPARE.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)));
    let mut tree = Tree::from_spare(spare.unwrap_or_default());
    let out = f(&mut tree);
    let spare = tree.into_spare();
    SPARE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            *s = spare;
        }
    });
    out
}

/// The limits of params as a scanning budget.
fn budget(limits: &Limits) -> Budget {
    Budget {
        fields: 0,
        max_fields: limits.max_params_fields,
        max_depth: limits.max_depth,
    }
}

/// Reads the params object at the cursor into `tree`, projected on the
/// paths `ix` reads; returns the object's node.
fn read_params<'a>(
    ix: &'a Index,
    cur: &mut Cursor<'a>,
    tree: &mut Tree<'a>,
    limits: &Limits,
    nesting: usize,
) -> Scan<u32> {
    params::Params {
        cur,
        tree,
        budget: budget(limits),
    }
    .root(ix.needs(), nesting)
}

/// The ids matching the raw params object `bytes`.
pub(crate) fn params_matches(
    ix: &Index,
    bytes: &[u8],
    limits: &Limits,
    stats: &mut MatchStats,
) -> Scan<Vec<Arc<str>>> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Bail);
    }
    with_tree(|tree| {
        let mut cur = Cursor::new(bytes);
        let root = read_params(ix, &mut cur, tree, limits, 0)?;
        cur.end()?;
        Ok(ix.matches(tree.object(root), stats))
    })
}

/// The ids matching the params of the raw signal `body`.
pub(crate) fn signal_matches(
    ix: &Index,
    body: &[u8],
    limits: &Limits,
    stats: &mut MatchStats,
) -> Scan<Vec<Arc<str>>> {
    with_tree(|tree| {
        let mut env = Envelope::open(body, limits)?;
        let mut root = None;
        while env.next()? == Stop::Params {
            root = Some(read_params(ix, &mut env.cur, tree, limits, 1)?);
        }
        Ok(match root {
            Some(root) => ix.matches(tree.object(root), stats),
            None => ix.matches(&signalbox_model::Map::new(), stats),
        })
    })
}

/// The ids matching the raw params object `bytes`, which the caller has
/// already checked in full (the params span of a body read by
/// [`Envelope`]); `nesting` is the containers around it.
pub(crate) fn span_matches(
    ix: &Index,
    bytes: &[u8],
    limits: &Limits,
    nesting: usize,
    stats: &mut MatchStats,
) -> Scan<Vec<Arc<str>>> {
    with_tree(|tree| {
        let mut cur = Cursor::new(bytes);
        let root = read_params(ix, &mut cur, tree, limits, nesting)?;
        Ok(ix.matches(tree.object(root), stats))
    })
}

/// Checks the params object at the cursor without projecting anything
/// (no engine is known yet to say what to project).
pub(crate) fn check_params(cur: &mut Cursor<'_>, limits: &Limits, nesting: usize) -> Scan<()> {
    if cur.ws() != Some(b'{') {
        return Err(Bail);
    }
    cur.skip(&mut budget(limits), 0, nesting)
}

/// Matches a signal given as its raw JSON body against the engine of its
/// name: `engine_for` is asked for the engine once the name is known (`None`:
/// no engine for that name, no ids). The result is always that of
/// `Signal::parse(body, limits)`, then `engine_for(&signal.name)` and
/// [`Engine::matches_shared`] on its params (or the error `Signal::parse`
/// gives), but a valid body is read in one pass when `name` comes before
/// `params` (two over the params otherwise), decoding only the fields the
/// engine's patterns name.
pub fn match_signal_json<E: Deref<Target = Engine>>(
    body: &[u8],
    limits: &Limits,
    engine_for: impl Fn(&str) -> Option<E>,
) -> Result<Vec<Arc<str>>, FieldError> {
    match match_fast(body, limits, &engine_for) {
        Ok(ids) => Ok(ids),
        Err(Bail) => {
            let signal = Signal::parse(body, limits)?;
            Ok(engine_for(&signal.name)
                .map(|e| e.matches_shared(&signal.params))
                .unwrap_or_default())
        }
    }
}

fn match_fast<E: Deref<Target = Engine>>(
    body: &[u8],
    limits: &Limits,
    engine_for: &impl Fn(&str) -> Option<E>,
) -> Scan<Vec<Arc<str>>> {
    let mut stats = MatchStats::default();
    let mut env = Envelope::open(body, limits)?;
    let mut span = None;
    while env.next()? == Stop::Params {
        if let Some(name) = &env.name {
            // The common order: the engine is known before params.
            let Some(engine) = engine_for(name) else {
                check_params(&mut env.cur, limits, 1)?;
                while env.next()? != Stop::End {}
                return Ok(Vec::new());
            };
            return engine.with_index(|ix| {
                with_tree(|tree| {
                    let mut cur = Cursor::new(env.cur.b);
                    cur.i = env.cur.i;
                    let root = read_params(ix, &mut cur, tree, limits, 1)?;
                    env.cur.i = cur.i;
                    while env.next()? != Stop::End {}
                    Ok(ix.matches(tree.object(root), &mut stats))
                })
            });
        }
        let start = env.cur.i;
        check_params(&mut env.cur, limits, 1)?;
        span = Some(start..env.cur.i);
    }
    let name = env.name.as_deref().ok_or(Bail)?;
    let Some(engine) = engine_for(name) else {
        return Ok(Vec::new());
    };
    match span.and_then(|s| body.get(s)) {
        Some(params) => engine.with_index(|ix| span_matches(ix, params, limits, 1, &mut stats)),
        None => Ok(engine.matches_shared(&signalbox_model::Map::new())),
    }
}

/// The engine's raw-bytes entry points live here, beside the path they
/// run, so that the engine does not depend on this module.
impl Engine {
    /// The ids of the patterns that match the params of a signal given as its
    /// raw JSON body, sorted, without duplicates; or the error
    /// [`Signal::parse`] gives for that body.
    ///
    /// The result is always that of `Signal::parse(body, limits)` followed by
    /// [`matches_shared`](Engine::matches_shared) on its params, but a valid
    /// body is read in one pass that decodes only the fields some pattern
    /// names (see `docs/MATCHING.md`, "Matching raw bytes").
    pub fn matches_signal_json(
        &self,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Vec<Arc<str>>, FieldError> {
        let fast =
            self.with_index(|ix| signal_matches(ix, body, limits, &mut MatchStats::default()));
        match fast {
            Ok(ids) => Ok(ids),
            Err(Bail) => {
                let signal = Signal::parse(body, limits)?;
                Ok(self.matches_shared(&signal.params))
            }
        }
    }

    /// The ids of the patterns that match a signal's params given as the raw
    /// JSON bytes of the params object alone; or the error
    /// [`Signal::parse_params`] gives for those bytes. Like
    /// [`matches_signal_json`](Engine::matches_signal_json), a valid object
    /// is read in one pass that decodes only what some pattern names.
    pub fn matches_params_json(
        &self,
        params: &[u8],
        limits: &Limits,
    ) -> Result<Vec<Arc<str>>, FieldError> {
        let fast =
            self.with_index(|ix| params_matches(ix, params, limits, &mut MatchStats::default()));
        match fast {
            Ok(ids) => Ok(ids),
            Err(Bail) => {
                let map = Signal::parse_params(params, limits)?;
                Ok(self.matches_shared(&map))
            }
        }
    }
}
