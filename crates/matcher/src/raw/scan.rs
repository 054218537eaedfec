//! The byte-level scanner of the raw path: whitespace, strings, numbers and
//! literals of JSON, checked the way `serde_json` checks them, eight bytes at a
//! time where it pays (string bodies, digit runs).
//!
//! Contract: every function either consumes exactly one well-formed token
//! that `serde_json` would accept with the same meaning, or returns [`Bail`].
//! `Bail` is not an error verdict: it means "not sure", and the caller hands
//! the whole input to the model's parser, which gives the verdict (and the
//! error message). So the scanner may refuse more than `serde_json` does
//! (lone surrogate escapes, numbers near the `f64` limit, deep nesting), never
//! less. Nothing here panics on any input.

/// The raw path cannot decide this input; the reference parser must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

/// Result of a scanning step.
pub(crate) type Scan<T> = Result<T, Bail>;

/// Deepest nesting (objects and arrays, over the whole document) the scanner
/// follows; `serde_json` refuses at 128.
pub(crate) const MAX_NESTING: usize = 100;

/// Numbers whose decimal magnitude (integer digits plus exponent) exceeds
/// this go to the reference parser: up to it a number is below 1e308, so
/// surely finite, however `serde_json` rounds it.
const MAX_MAGNITUDE: i64 = 308;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in (at least) the lowest byte of `w` equal to zero; bytes
/// above the lowest flagged one may be flagged falsely.
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// High bits of the bytes that end a plain run of string content: `"`, `\`,
/// a control character (< 0x20), or a non-ASCII byte. Exact at the lowest
/// flagged byte.
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let quote = zero_bytes(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    quote | backslash | control | (w & HIGHS)
}

/// High bits of the bytes that are not ASCII digits; exact at the lowest
/// flagged byte.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    let x = w ^ (ONES * u64::from(b'0'));
    (x.wrapping_add(ONES * 0x76) | x) & HIGHS
}

/// Eight bytes at `at` as a little-endian word, if there are eight.
#[inline(always)]
fn word(b: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// A string token: where its content is and what it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrToken {
    /// Content start (after the opening quote).
    pub(crate) start: usize,
    /// Content end (the closing quote's index).
    pub(crate) end: usize,
    /// Whether the content has a backslash escape.
    pub(crate) escaped: bool,
}

/// A number token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumToken {
    /// First byte (a digit or `-`).
    pub(crate) start: usize,
    /// One past the last byte.
    pub(crate) end: usize,
    /// The value when it is an integer that is an `i64` for `serde_json` too
    /// (no fraction, no exponent, at most 18 digits, not `-0`).
    pub(crate) small_int: Option<i64>,
}

/// What a skipped value may hold: at most `max_fields` fields in all (every
/// member and array element counts) and levels up to `max_depth`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Fields counted so far.
    pub(crate) fields: usize,
    /// Most fields allowed.
    pub(crate) max_fields: usize,
    /// Deepest level allowed.
    pub(crate) max_depth: usize,
}

impl Budget {
    /// No limits (for values outside `params`).
    pub(crate) const NONE: Budget = Budget {
        fields: 0,
        max_fields: usize::MAX,
        max_depth: usize::MAX,
    };

    /// Counts one more field.
    #[inline(always)]
    pub(crate) fn field(&mut self) -> Scan<()> {
        self.fields += 1;
        if self.fields > self.max_fields {
            Err(Bail)
        } else {
            Ok(())
        }
    }
}

// The scanning functions below take the input and an index and return the
// index after what they read, so that hot loops keep both in registers.

/// The index of the next byte that is not JSON whitespace.
#[inline(always)]
fn ws(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(&c) if c > b' ' => i,
        _ => ws_slow(b, i),
    }
}

#[inline(never)]
fn ws_slow(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The index of the closing quote of the string whose content starts at
/// `start`, and whether it had escapes; checks escapes, control
/// characters and UTF-8.
#[inline(always)]
fn string_end(b: &[u8], start: usize) -> Scan<(usize, bool)> {
    let mut i = start;
    while let Some(w) = word(b, i) {
        let stops = string_stops(w);
        if stops != 0 {
            i += (stops.trailing_zeros() / 8) as usize;
            if b.get(i) == Some(&b'"') {
                return Ok((i, false));
            }
            break;
        }
        i += 8;
    }
    string_end_slow(b, start, i)
}

/// The rest of [`string_end`] from `i`: escapes, non-ASCII bytes, and the
/// last bytes of the input.
#[inline(never)]
fn string_end_slow(b: &[u8], start: usize, mut i: usize) -> Scan<(usize, bool)> {
    let mut escaped = false;
    let mut ascii = true;
    loop {
        while let Some(w) = word(b, i) {
            let stops = string_stops(w);
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else {
            return Err(Bail);
        };
        match c {
            b'"' => break,
            b'\\' => {
                escaped = true;
                i = escape(b, i + 1)?;
            }
            0..0x20 => return Err(Bail),
            0x80.. => {
                ascii = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !ascii && std::str::from_utf8(&b[start..i]).is_err() {
        return Err(Bail);
    }
    Ok((i, escaped))
}

/// Checks the escape whose letter is at `at`; returns the index after it.
/// Surrogate escapes (paired or not) are left to the reference parser.
fn escape(b: &[u8], at: usize) -> Scan<usize> {
    match b.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => {
            let hex = b.get(at + 1..at + 5).ok_or(Bail)?;
            let mut n = 0u32;
            for &h in hex {
                let d = (h as char).to_digit(16).ok_or(Bail)?;
                n = n * 16 + d;
            }
            if (0xD800..=0xDFFF).contains(&n) {
                return Err(Bail);
            }
            Ok(at + 5)
        }
        _ => Err(Bail),
    }
}

/// The index after a run of ASCII digits starting at `i`.
#[inline(always)]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(w) = word(b, i) {
        let stops = non_digits(w);
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The shape of a number: its end, its integer digits, and whether it had
/// a fraction or an exponent. Refuses what the JSON grammar refuses and
/// numbers that might not be finite as an `f64`.
#[inline(always)]
fn number_end(b: &[u8], start: usize) -> Scan<(usize, usize, bool)> {
    let mut i = start + usize::from(b.get(start) == Some(&b'-'));
    let int_start = i;
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return Err(Bail),
    }
    let int_digits = i - int_start;
    let mut plain = true;
    if b.get(i) == Some(&b'.') {
        plain = false;
        let frac = i + 1;
        i = digits(b, frac);
        if i == frac {
            return Err(Bail);
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        return exponent_end(b, i, int_digits);
    }
    if int_digits as i64 > MAX_MAGNITUDE {
        return Err(Bail);
    }
    Ok((i, int_digits, plain))
}

/// The rest of [`number_end`] from the `e` at `at`.
#[inline(never)]
fn exponent_end(b: &[u8], at: usize, int_digits: usize) -> Scan<(usize, usize, bool)> {
    let mut i = at + 1;
    let minus = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let first = i;
    i = digits(b, first);
    if i == first || i - first > 4 {
        return Err(Bail);
    }
    let mut exponent = 0i64;
    for &d in &b[first..i] {
        exponent = exponent * 10 + i64::from(d - b'0');
    }
    if minus {
        exponent = -exponent;
    }
    if int_digits as i64 + exponent > MAX_MAGNITUDE {
        return Err(Bail);
    }
    Ok((i, int_digits, false))
}

/// The index after `true`, `false` or `null` at `i`, and the literal.
#[inline(always)]
fn literal_end(b: &[u8], i: usize) -> Scan<(usize, crate::view::Leaf<'static>)> {
    use crate::view::Leaf;
    match b.get(i..i + 4) {
        Some(b"true") => Ok((i + 4, Leaf::Bool(true))),
        Some(b"null") => Ok((i + 4, Leaf::Null)),
        Some(b"fals") if b.get(i + 4) == Some(&b'e') => Ok((i + 5, Leaf::Bool(false))),
        _ => Err(Bail),
    }
}

/// The index after a member name and its colon, the name's quote being
/// next after whitespace.
#[inline(always)]
fn key_end(b: &[u8], i: usize) -> Scan<usize> {
    let i = ws(b, i);
    if b.get(i) != Some(&b'"') {
        return Err(Bail);
    }
    let (end, _) = string_end(b, i + 1)?;
    let i = ws(b, end + 1);
    if b.get(i) != Some(&b':') {
        return Err(Bail);
    }
    Ok(i + 1)
}

/// A cursor over the input bytes.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Cursor<'a> {
        Cursor { b, i: 0 }
    }

    /// Skips JSON whitespace; returns the next byte, if any.
    #[inline(always)]
    pub(crate) fn ws(&mut self) -> Option<u8> {
        self.i = ws(self.b, self.i);
        self.b.get(self.i).copied()
    }

    /// Skips whitespace and requires `c` next, consuming it.
    #[inline(always)]
    pub(crate) fn expect(&mut self, c: u8) -> Scan<()> {
        if self.ws() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Reads a string whose opening quote is at the cursor; checks escapes,
    /// control characters and UTF-8.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Scan<StrToken> {
        let start = self.i + 1;
        let (end, escaped) = string_end(self.b, start)?;
        self.i = end + 1;
        Ok(StrToken {
            start,
            end,
            escaped,
        })
    }

    /// Reads a number at the cursor (a digit or `-`), with the grammar of
    /// JSON; refuses numbers that might not be finite as an `f64`.
    #[inline(always)]
    pub(crate) fn number(&mut self) -> Scan<NumToken> {
        let start = self.i;
        let (end, int_digits, plain) = number_end(self.b, start)?;
        let small_int = if plain && int_digits <= 18 {
            let negative = self.b.get(start) == Some(&b'-');
            let mut v = 0i64;
            for &d in &self.b[end - int_digits..end] {
                v = v * 10 + i64::from(d - b'0');
            }
            match (negative, v) {
                (false, v) => Some(v),
                (true, 0) => None,
                (true, v) => Some(-v),
            }
        } else {
            None
        };
        self.i = end;
        Ok(NumToken {
            start,
            end,
            small_int,
        })
    }

    /// Reads `true`, `false` or `null` (the first letter is at the cursor).
    #[inline(always)]
    pub(crate) fn literal(&mut self) -> Scan<crate::view::Leaf<'static>> {
        let (end, leaf) = literal_end(self.b, self.i)?;
        self.i = end;
        Ok(leaf)
    }

    /// Skips one value of any kind, checking it fully. `level` is the level
    /// of the container holding it (objects and arrays inside it are levels
    /// `level + 1` and deeper, refused beyond `budget.max_depth`); `nesting`
    /// is the number of containers around it in the whole document. Every
    /// member and array element inside counts as a field of `budget`.
    pub(crate) fn skip(&mut self, budget: &mut Budget, level: usize, nesting: usize) -> Scan<()> {
        let b = self.b;
        let mut i = self.i;
        let mut fields = budget.fields;
        let max_fields = budget.max_fields;
        // Deepest container (counted from this value) allowed: the depth
        // limit, the nesting limit, and the 64 bits of `objects`.
        let max = budget
            .max_depth
            .saturating_sub(level)
            .min(MAX_NESTING.saturating_sub(nesting))
            .min(63);
        // Bit d of `objects`: the container at depth d is an object.
        let mut objects: u64 = 0;
        let mut depth = 0usize;
        // The closing byte of the innermost open container.
        let mut close = 0u8;
        loop {
            // At a value.
            i = ws(b, i);
            match b.get(i) {
                Some(b'"') => i = string_end(b, i + 1)?.0 + 1,
                Some(b'-' | b'0'..=b'9') => {
                    i = number_end(b, i)?.0;
                    // Arrays of numbers: the next elements, without the
                    // general dispatch.
                    if close == b']' {
                        while b.get(i) == Some(&b',')
                            && matches!(b.get(i + 1), Some(b'-' | b'0'..=b'9'))
                        {
                            fields += 1;
                            i = number_end(b, i + 1)?.0;
                        }
                        if fields > max_fields {
                            return Err(Bail);
                        }
                    }
                }
                Some(b't' | b'f' | b'n') => i = literal_end(b, i)?.0,
                Some(&open @ (b'{' | b'[')) => {
                    depth += 1;
                    if depth > max {
                        return Err(Bail);
                    }
                    let object = open == b'{';
                    objects = (objects & !(1 << depth)) | (u64::from(object) << depth);
                    // `}` and `]` are two above their openers.
                    close = open + 2;
                    i = ws(b, i + 1);
                    if b.get(i) == Some(&close) {
                        i += 1;
                        depth -= 1;
                        close = Self::closer(objects, depth);
                    } else {
                        if object {
                            i = key_end(b, i)?;
                        }
                        fields += 1;
                        if fields > max_fields {
                            return Err(Bail);
                        }
                        continue;
                    }
                }
                _ => return Err(Bail),
            }
            // After a value: separators and closers.
            loop {
                if depth == 0 {
                    self.i = i;
                    budget.fields = fields;
                    return Ok(());
                }
                i = ws(b, i);
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        if close == b'}' {
                            i = key_end(b, i)?;
                        }
                        fields += 1;
                        if fields > max_fields {
                            return Err(Bail);
                        }
                        break;
                    }
                    Some(&c) if c == close => {
                        i += 1;
                        depth -= 1;
                        close = Self::closer(objects, depth);
                    }
                    _ => return Err(Bail),
                }
            }
        }
    }

    /// The closing byte of the container at `depth` (none at depth 0).
    #[inline(always)]
    fn closer(objects: u64, depth: usize) -> u8 {
        match (depth, objects >> depth & 1) {
            (0, _) => 0,
            (_, 1) => b'}',
            _ => b']',
        }
    }

    /// Requires nothing but whitespace after the cursor.
    pub(crate) fn end(&mut self) -> Scan<()> {
        match self.ws() {
            None => Ok(()),
            Some(_) => Err(Bail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Scan<NumToken> {
        let mut c = Cursor::new(s.as_bytes());
        let t = c.number()?;
        if t.end == s.len() { Ok(t) } else { Err(Bail) }
    }

    #[test]
    fn words_find_the_first_stop() {
        let w = u64::from_le_bytes(*b"abc\"def\\");
        assert_eq!(string_stops(w).trailing_zeros() / 8, 3);
        let w = u64::from_le_bytes(*b"abcdefg\x01");
        assert_eq!(string_stops(w).trailing_zeros() / 8, 7);
        let w = u64::from_le_bytes([b'a', 0xC3, 0xA9, b'"', 0, 0, 0, 0]);
        assert_eq!(string_stops(w).trailing_zeros() / 8, 1);
        assert_eq!(string_stops(u64::from_le_bytes(*b"abcdefgh")), 0);
        for b in 0u8..=255 {
            let mut bytes = *b"01234567";
            bytes[3] = b;
            let stops = non_digits(u64::from_le_bytes(bytes));
            let want = if b.is_ascii_digit() { 64 } else { 31 };
            assert_eq!(stops.trailing_zeros(), want, "byte {b}");
        }
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for ok in [
            "0",
            "-0",
            "1",
            "-12",
            "1.5",
            "1e5",
            "1E+5",
            "2.5e-3",
            "123456789012345678901234",
        ] {
            assert!(num(ok).is_ok(), "{ok}");
        }
        for bad in [
            "01", "-", "1.", ".5", "1e", "1e+", "-01", "1e400", "1e12345",
        ] {
            assert!(num(bad).is_err(), "{bad}");
        }
        assert_eq!(num("-42").map(|t| t.small_int), Ok(Some(-42)));
        assert_eq!(num("-0").map(|t| t.small_int), Ok(None));
        assert_eq!(num("1.0").map(|t| t.small_int), Ok(None));
        assert_eq!(
            num("123456789012345678").map(|t| t.small_int),
            Ok(Some(123456789012345678))
        );
        assert_eq!(num("1234567890123456789").map(|t| t.small_int), Ok(None));
    }

    #[test]
    fn strings_check_escapes_controls_and_utf8() {
        let read = |s: &[u8]| Cursor::new(s).string().map(|t| (t.end, t.escaped));
        assert_eq!(read(b"\"abc\""), Ok((4, false)));
        assert_eq!(read(b"\"a\\\"bcdefghijk\\n\""), Ok((16, true)));
        assert_eq!(
            read("\"h\u{e9}llo w\u{f6}rld!\"".as_bytes()).map(|t| t.1),
            Ok(false)
        );
        assert!(read(b"\"a\x01b\"").is_err());
        assert!(read(b"\"a\\x\"").is_err());
        assert!(read(b"\"\\ud83d\\ude00\"").is_err());
        assert!(read(b"\"\\u00e9\"").is_ok());
        assert!(read(b"\"abc").is_err());
        assert!(read(&[b'"', 0xC3, b'"']).is_err());
    }
}
