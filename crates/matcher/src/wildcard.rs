//! The `wildcard` operator: `*` matches any run of characters (including none);
//! `\*` is a literal star and `\\` a literal backslash.
//!
//! Invariants: a parsed [`Wildcard`] has no two consecutive `*` (rejected, as
//! EventBridge does) and every other backslash escape is rejected. Matching is
//! greedy leftmost for the middle pieces, which is exact for `*`-only globs, and
//! takes time linear in the value for a fixed pattern.

/// A parsed wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// The pattern as written (for `to_json`).
    pub(crate) source: String,
    /// Literal pieces between stars (unescaped).
    pub(crate) pieces: Vec<String>,
    /// Whether the pattern starts with a star.
    pub(crate) star_start: bool,
    /// Whether the pattern ends with a star.
    pub(crate) star_end: bool,
}

impl Wildcard {
    /// Parses a wildcard pattern, explaining any error.
    pub(crate) fn parse(source: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = source.chars().peekable();
        let mut prev_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    match chars.next() {
                        Some(e @ ('*' | '\\')) => {
                            pieces.last_mut().map(|p| p.push(e)).unwrap_or(())
                        }
                        Some(other) => {
                            return Err(format!(
                                "invalid escape \"\\{other}\" in wildcard (only \\* and \\\\ are allowed)"
                            ));
                        }
                        None => return Err("wildcard ends with a lone backslash".to_string()),
                    }
                    prev_star = false;
                }
                '*' => {
                    if prev_star {
                        return Err(
                            "consecutive wildcard characters (\"**\") are not allowed".to_string()
                        );
                    }
                    pieces.push(String::new());
                    prev_star = true;
                }
                other => {
                    pieces.last_mut().map(|p| p.push(other)).unwrap_or(());
                    prev_star = false;
                }
            }
        }
        let star_start = pieces.len() > 1 && pieces.first().is_some_and(String::is_empty);
        let star_end = pieces.len() > 1 && pieces.last().is_some_and(String::is_empty);
        Ok(Wildcard {
            source: source.to_string(),
            pieces,
            star_start,
            star_end,
        })
    }

    /// Whether the pattern has no star at all (then it is an exact string).
    pub(crate) fn is_literal(&self) -> bool {
        self.pieces.len() == 1
    }

    /// Whether the pattern is one star and one literal end (`x*` or `*x`), so
    /// that it means exactly "starts with" (or "ends with") that literal.
    pub(crate) fn is_single_affix(&self) -> bool {
        self.pieces.len() == 2 && (self.pieces[0].is_empty() != self.pieces[1].is_empty())
    }

    /// The literal text before the first star (empty if the pattern starts with one).
    pub(crate) fn literal_prefix(&self) -> &str {
        self.pieces.first().map(String::as_str).unwrap_or("")
    }

    /// The literal text after the last star (empty if the pattern ends with one).
    pub(crate) fn literal_suffix(&self) -> &str {
        if self.pieces.len() < 2 {
            ""
        } else {
            self.pieces.last().map(String::as_str).unwrap_or("")
        }
    }

    /// Whether `s` matches the pattern.
    pub(crate) fn matches(&self, s: &str) -> bool {
        if self.pieces.len() == 1 {
            return s == self.pieces[0];
        }
        let first = &self.pieces[0];
        let last = &self.pieces[self.pieces.len() - 1];
        if s.len() < first.len() + last.len()
            || !s.starts_with(first.as_str())
            || !s.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &s[first.len()..s.len() - last.len()];
        for piece in &self.pieces[1..self.pieces.len() - 1] {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Wildcard {
        Wildcard::parse(s).expect("valid wildcard")
    }

    #[test]
    fn stars_and_escapes() {
        assert!(w("*.png").matches("a.png"));
        assert!(w("*.png").matches(".png"));
        assert!(!w("*.png").matches("a.jpg"));
        assert!(w("a*b*c").matches("abc"));
        assert!(w("a*b*c").matches("aXbYbZc"));
        assert!(!w("a*b*c").matches("acb"));
        assert!(!w("ab*ba").matches("aba"));
        assert!(w("a\\*b").matches("a*b"));
        assert!(!w("a\\*b").matches("axb"));
        assert!(w("a\\\\*").matches("a\\zzz"));
        assert!(w("*").matches(""));
        assert!(w("").matches(""));
        assert!(!w("").matches("x"));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse("a\\b").is_err());
        assert!(Wildcard::parse("ab\\").is_err());
    }
}
