//! Unicode case folding for `equals-ignore-case` (alone or inside `prefix` and
//! `suffix`).
//!
//! Invariant: two strings are equal ignoring case exactly when their full
//! default case folds are equal; prefix/suffix ignoring case compare the folded
//! value with the folded argument. ASCII input takes a fast path that gives the
//! same answer as full folding.

/// The full default case fold of `s`.
pub(crate) fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        caseless::default_case_fold_str(s)
    }
}
