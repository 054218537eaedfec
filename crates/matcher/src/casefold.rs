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

/// Calls `f` with the case fold of `s`, without allocating for short ASCII input.
pub(crate) fn with_folded<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    if s.is_ascii() && s.len() <= 64 {
        let mut buf = [0u8; 64];
        let out = &mut buf[..s.len()];
        out.copy_from_slice(s.as_bytes());
        out.make_ascii_lowercase();
        match std::str::from_utf8(out) {
            Ok(folded) => f(folded),
            Err(_) => f(&fold(s)),
        }
    } else {
        f(&fold(s))
    }
}
