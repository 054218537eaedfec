//! signalbox's matching engine: EventBridge-style patterns over a signal's
//! `params`, compiled into one index per engine so that matching cost depends on
//! the signal, not on how many subscriptions exist. No I/O.
//!
//! - [`Pattern`]: parse and validate pattern JSON (or Maestro's `match_params`);
//! - [`Engine`]: add / remove patterns by id, match params to ids, explain;
//!   match a signal from its raw JSON bytes ([`Engine::matches_signal_json`],
//!   [`Engine::matches_params_json`], [`match_signal_json`]), with the
//!   model's validation and errors, decoding only the fields patterns read;
//! - [`naive`]: the obviously-correct oracle, pattern by pattern;
//! - [`OperatorRegistry`], [`CustomOperator`]: custom operators (Wasm plugins in
//!   the router, native ones in tests).
//!
//! See `docs/MATCHING.md` for the language as implemented and the engine design.

// The in-crate tests share the integration tests' generators, which name
// this crate by its package name.
#[cfg(test)]
extern crate self as signalbox_matcher;

mod casefold;
mod cidr;
mod engine;
mod error;
mod eval;
mod explain;
pub mod naive;
mod numeric;
mod operators;
mod pattern;
mod raw;
mod view;
mod wildcard;

pub use engine::{Engine, MatchStats};
pub use error::PatternError;
pub use explain::{ConditionVerdict, Explanation, Verdict, explain};
pub use operators::{BUILTIN_OPERATORS, CustomOperator, OperatorRegistry, PreparedOperator};
pub use pattern::{MAX_DEPTH, MAX_FIELDS, MAX_VALUES, Pattern};
pub use raw::match_signal_json;
