//! The oracle: matches one pattern against one signal's params directly from
//! the pattern tree, with no index. Obviously correct is the point; the engine
//! is tested against it.

use signalbox_model::Map;

use crate::eval;
use crate::pattern::Pattern;

/// Whether `pattern` matches `params`.
pub fn matches(pattern: &Pattern, params: &Map) -> bool {
    eval::node_on_map(&pattern.root, Some(params), &mut 0)
}

/// Like [`matches`], also counting the evaluation steps taken (for linearity tests).
pub fn matches_counting(pattern: &Pattern, params: &Map, steps: &mut u64) -> bool {
    eval::node_on_map(&pattern.root, Some(params), steps)
}
