//! The byte-level scanner of the raw path: whitespace, strings, numbers and
//! literals of JSON, checked the way `serde_json` checks them, eight bytes at a
//! time where it pays (string bodies, digit runs, and the compact arrays of
//! numbers that values no pattern reads are mostly made of: those are
//! skipped word by word, one step per byte that is not a digit).
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

/// The index after the number at `i`, checked as [`number_end`] checks it.
/// Numbers with at most 7 integer digits and no exponent, the common ones,
/// are read here from whole words: the byte that ends a run of digits is
/// taken from the word that found it, not loaded again.
#[inline(always)]
fn number_skip(b: &[u8], i: usize) -> Scan<usize> {
    let s = i + usize::from(b.get(i) == Some(&b'-'));
    if let Some(w) = word(b, s) {
        let stops = non_digits(w);
        let k = (stops.trailing_zeros() / 8) as usize;
        // `k` integer digits, fewer than 8 (`stops` is not zero), no
        // leading zero unless alone; then the byte after them.
        if stops != 0 && k > 0 && (k == 1 || w as u8 != b'0') {
            let next = (w >> (8 * k)) as u8;
            if next != b'.' {
                if next | 0x20 != b'e' {
                    return Ok(s + k);
                }
            } else {
                // The fraction: up to 16 digits from two words at once.
                let f = s + k + 1;
                if let (Some(w1), Some(w2)) = (word(b, f), word(b, f + 8)) {
                    let (s1, s2) = (non_digits(w1), non_digits(w2));
                    let (w, stops, at) = if s1 != 0 {
                        (w1, s1, f)
                    } else {
                        (w2, s2, f + 8)
                    };
                    let bit = stops.trailing_zeros();
                    let end = at + (bit / 8) as usize;
                    if stops != 0 && end > f && (w >> (bit & !7)) as u8 | 0x20 != b'e' {
                        return Ok(end);
                    }
                }
            }
        }
    }
    number_end(b, i).map(|(end, _, _)| end)
}

/// High bits of the bytes of `w` that are not ASCII digits, every one
/// exact (unlike [`non_digits`], which is exact at the lowest only).
#[inline(always)]
fn non_digits_exact(w: u64) -> u64 {
    let x = w ^ (ONES * u64::from(b'0'));
    (((x & !HIGHS).wrapping_add(ONES * 0x76)) | x) & HIGHS
}

/// How far [`number_list`] read.
enum List {
    /// The array ended; the index after its `]`.
    Closed(usize),
    /// The element starting at this index is left to the general reader.
    At(usize),
}

/// Reads the elements of an array from `i` (the first byte of an element)
/// while they are compact numbers without exponents (`-12.5,0,3]`), the
/// arrays of coordinates that fill geographic records: word by word, one
/// step per byte that is not a digit, each number checked as
/// [`number_end`] checks it. Counts the elements read into `fields`.
/// Anything else (whitespace, an exponent, a string, a nested container, a
/// malformed number) stops it at the start of that element, for the
/// general reader to decide.
#[inline(never)]
fn number_list(b: &[u8], i: usize, fields: &mut usize) -> List {
    // The current element's first byte, and the first byte after the last
    // non-digit (where the current run of digits began).
    let mut start = i;
    let mut from = i;
    // 0: at an element's start; 1: after its `-`; 2: after its `.`.
    let mut state = 0u8;
    let mut p = i;
    while let Some(w) = word(b, p) {
        let mut stops = non_digits_exact(w);
        while stops != 0 {
            let bit = stops.trailing_zeros();
            let at = p + (bit / 8) as usize;
            let c = (w >> (bit & !7)) as u8;
            let run = at - from;
            if state < 2 {
                if run == 0 {
                    // No integer digits yet: only a leading minus may come.
                    if state == 1 || c != b'-' {
                        return List::At(start);
                    }
                    state = 1;
                    from = at + 1;
                    stops &= stops - 1;
                    continue;
                }
                // No leading zero; few enough digits to be surely finite.
                if (run > 1 && b.get(from) == Some(&b'0')) || run as i64 > MAX_MAGNITUDE {
                    return List::At(start);
                }
            } else if run == 0 {
                return List::At(start);
            }
            match c {
                b'.' if state < 2 => state = 2,
                b',' => {
                    *fields += 1;
                    state = 0;
                    start = at + 1;
                }
                b']' => {
                    *fields += 1;
                    return List::Closed(at + 1);
                }
                _ => return List::At(start),
            }
            from = at + 1;
            stops &= stops - 1;
        }
        p += 8;
    }
    List::At(start)
}

/// The state of one [`Cursor::skip`]: the input and the fields counted.
struct Skip<'a> {
    b: &'a [u8],
    fields: usize,
}

impl Skip<'_> {
    /// The index after the value at `i` (not whitespace); `room` is how many
    /// levels of containers it may hold (itself included).
    #[inline(always)]
    fn value(&mut self, i: usize, room: usize) -> Scan<usize> {
        let b = self.b;
        match b.get(i) {
            Some(b'"') => Ok(string_end(b, i + 1)?.0 + 1),
            Some(b'-' | b'0'..=b'9') => number_skip(b, i),
            Some(b'[') => self.array(i + 1, room),
            Some(b'{') => self.object(i + 1, room),
            Some(b't' | b'f' | b'n') => Ok(literal_end(b, i)?.0),
            _ => Err(Bail),
        }
    }

    /// The index after the array whose first byte after `[` is at `i`.
    fn array(&mut self, i: usize, room: usize) -> Scan<usize> {
        let room = room.checked_sub(1).ok_or(Bail)?;
        let b = self.b;
        let mut i = ws(b, i);
        match b.get(i) {
            Some(b']') => return Ok(i + 1),
            Some(b'-' | b'0'..=b'9') => match number_list(b, i, &mut self.fields) {
                List::Closed(end) => return Ok(end),
                List::At(at) => i = ws(b, at),
            },
            _ => {}
        }
        loop {
            self.fields += 1;
            i = ws(b, self.value(i, room)?);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b']') => return Ok(i + 1),
                _ => return Err(Bail),
            }
        }
    }

    /// The index after the object whose first byte after `{` is at `i`.
    fn object(&mut self, i: usize, room: usize) -> Scan<usize> {
        let room = room.checked_sub(1).ok_or(Bail)?;
        let b = self.b;
        let mut i = ws(b, i);
        if b.get(i) == Some(&b'}') {
            return Ok(i + 1);
        }
        loop {
            self.fields += 1;
            i = ws(b, key_end(b, i)?);
            i = ws(b, self.value(i, room)?);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => return Ok(i + 1),
                _ => return Err(Bail),
            }
        }
    }
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

    /// [`Cursor::skip`] with the scalars that fill most objects (strings
    /// and numbers) read in line: no budget to count, no call.
    #[inline(always)]
    pub(crate) fn skip_member(
        &mut self,
        budget: &mut Budget,
        level: usize,
        nesting: usize,
    ) -> Scan<()> {
        let i = ws(self.b, self.i);
        match self.b.get(i) {
            Some(b'"') => self.i = string_end(self.b, i + 1)?.0 + 1,
            Some(b'-' | b'0'..=b'9') => self.i = number_skip(self.b, i)?,
            _ => return self.skip(budget, level, nesting),
        }
        Ok(())
    }

    /// Skips one value of any kind, checking it fully. `level` is the level
    /// of the container holding it (objects and arrays inside it are levels
    /// `level + 1` and deeper, refused beyond `budget.max_depth`); `nesting`
    /// is the number of containers around it in the whole document. Every
    /// member and array element inside counts as a field of `budget`.
    pub(crate) fn skip(&mut self, budget: &mut Budget, level: usize, nesting: usize) -> Scan<()> {
        // Containers allowed below this value: the depth limit and the
        // nesting limit.
        let room = budget
            .max_depth
            .saturating_sub(level)
            .min(MAX_NESTING.saturating_sub(nesting));
        let mut s = Skip {
            b: self.b,
            fields: budget.fields,
        };
        let i = s.value(ws(self.b, self.i), room)?;
        // The field count only grows, so checking it once at the end refuses
        // exactly what checking it at every field would.
        if s.fields > budget.max_fields {
            return Err(Bail);
        }
        self.i = i;
        budget.fields = s.fields;
        Ok(())
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

    /// Skips the whole of `text`: the fields counted, or `Bail`.
    fn skip_all(text: &str) -> Scan<usize> {
        let mut c = Cursor::new(text.as_bytes());
        let mut budget = Budget::NONE;
        c.skip(&mut budget, 0, 0)?;
        c.end()?;
        Ok(budget.fields)
    }

    /// Members and elements in a JSON value, at every level.
    fn fields_of(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => a.len() + a.iter().map(fields_of).sum::<usize>(),
            serde_json::Value::Object(m) => m.len() + m.values().map(fields_of).sum::<usize>(),
            _ => 0,
        }
    }

    /// `text` as the first element of an array with a long string after it.
    fn padded(text: &str) -> String {
        format!("[{text},\"{}\"]", "-".repeat(24))
    }

    fn reference(text: &str) -> Option<usize> {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .map(|v| fields_of(&v))
    }

    #[test]
    fn skipped_values_are_checked_like_serde_json() {
        let texts = [
            "[-122.43463064933286,37.77929454081582,0]",
            "[[[-122.4,37.7,0],[-122.5,37.8,0]],[[1,2],[3]]]",
            "[0,-0,0.5,-0.5,10,-10.25,1234567.1234567890123456789]",
            "[1,2,3",
            "[1,2,]",
            "[,1]",
            "[01]",
            "[-01.5]",
            "[00]",
            "[1.]",
            "[1.,2]",
            "[.5]",
            "[-]",
            "[--1]",
            "[-.5]",
            "[1..5]",
            "[1.5.5]",
            "[1-2]",
            "[1e5,2]",
            "[1.5E-3,2]",
            "[1e,2]",
            "[1, 2, 3]",
            "[1 ,2]",
            "[1,\"a\",2]",
            "[1,[2,3],4]",
            "[1,{\"a\":2},3]",
            "[1,true,null]",
            "[1]]",
            "[]",
            "[[]]",
            "[1,2]x",
            "{\"a\":-1.5,\"b\":[0.25,-3],\"c\":\"x\"}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
        ];
        for t in texts {
            // Also with bytes after it: the word-wide readers need 8 or 16
            // bytes ahead, and give short inputs to the general reader.
            for t in [t.to_string(), padded(t)] {
                assert_eq!(skip_all(&t).ok(), reference(&t), "{t}");
            }
        }
        let long = format!("[{}]", "1234567890".repeat(40));
        assert_eq!(
            skip_all(&long),
            Err(Bail),
            "a number that may not be finite"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4096, ..Default::default() })]

        /// Whatever the skipper accepts, `serde_json` accepts, with as many
        /// fields; and on compact arrays of plain numbers it accepts all
        /// that `serde_json` accepts.
        #[test]
        fn skipped_number_arrays_agree_with_serde_json(
            text in "\\[[-0-9.,\\[\\] ]{0,40}",
            plain in proptest::collection::vec("-?(0|[1-9][0-9]{0,9})(\\.[0-9]{1,20})?", 0..8),
        ) {
            for text in [text.clone(), padded(&text)] {
                if let Ok(n) = skip_all(&text) {
                    proptest::prop_assert_eq!(Some(n), reference(&text), "{}", text);
                }
            }
            let list = format!("[{}]", plain.join(","));
            for list in [list.clone(), padded(&list)] {
                proptest::prop_assert_eq!(skip_all(&list).ok(), reference(&list), "{}", list);
            }
        }
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
