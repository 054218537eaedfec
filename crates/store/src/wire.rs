//! Checking redb's byte encodings of the store's key and value types before
//! decoding them, so that replaying a changelog entry never panics.
//!
//! redb's `Value::from_bytes` may assume its input came from `as_bytes` (an
//! `&str` is `from_utf8(..).unwrap()`, a `u64` is `try_into().unwrap()`, a
//! tuple slices by the lengths in its header), so bytes from outside — a
//! changelog entry — are checked first with [`Wire::check`]. The check accepts
//! exactly the encodings `as_bytes` produces for the types the store's tables
//! use: `u64` and `i64` (8 bytes, little-endian), `&str` (UTF-8), `&[u8]`
//! (anything), `()` (no bytes), and tuples of these (redb's layout: the lengths of the
//! variable-width elements but the last, as redb's varint — one byte below
//! 254, 254 then a `u16`, 255 then a `u32`, the shortest form — then the
//! elements, the last running to the end). The unit tests hold it to redb's
//! own encoder.
//!
//! Invariant: `T::check(b)` is `Ok` only if `T::from_bytes(b)` does not panic
//! and `T::as_bytes(&T::from_bytes(b)) == b`.

use redb::Value;

/// A redb type whose encoding can be checked.
pub(crate) trait Wire: Value {
    /// `Ok` if `bytes` is an encoding `as_bytes` could have produced, else what is wrong.
    fn check(bytes: &[u8]) -> Result<(), String>;
}

impl Wire for u64 {
    fn check(bytes: &[u8]) -> Result<(), String> {
        fixed(bytes, 8, "u64")
    }
}

impl Wire for i64 {
    fn check(bytes: &[u8]) -> Result<(), String> {
        fixed(bytes, 8, "i64")
    }
}

impl Wire for &str {
    fn check(bytes: &[u8]) -> Result<(), String> {
        std::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|e| format!("not UTF-8: {e}"))
    }
}

impl Wire for &[u8] {
    fn check(_: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

impl Wire for () {
    fn check(bytes: &[u8]) -> Result<(), String> {
        fixed(bytes, 0, "()")
    }
}

fn fixed(bytes: &[u8], width: usize, what: &str) -> Result<(), String> {
    if bytes.len() == width {
        Ok(())
    } else {
        Err(format!("a {what} is {width} bytes, not {}", bytes.len()))
    }
}

/// One element's check and width, for [`tuple`].
type Element = (fn(&[u8]) -> Result<(), String>, Option<usize>);

/// Checks a tuple encoding whose elements are `elements` (in order).
fn tuple(bytes: &[u8], elements: &[Element]) -> Result<(), String> {
    let Some((last, leading)) = elements.split_last() else {
        return Ok(());
    };
    let mut at = 0;
    let mut lens = Vec::with_capacity(leading.len());
    for (_, width) in leading {
        let len = match width {
            Some(width) => *width,
            None => {
                let (len, used) = varint(&bytes[at..])?;
                at += used;
                len
            }
        };
        lens.push(len);
    }
    for ((check, _), len) in leading.iter().zip(lens) {
        let end = at
            .checked_add(len)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| format!("a tuple element of {len} bytes runs past the end"))?;
        check(&bytes[at..end])?;
        at = end;
    }
    (last.0)(&bytes[at..])
}

/// redb's length varint in its shortest form: `(value, bytes used)`.
fn varint(bytes: &[u8]) -> Result<(usize, usize), String> {
    let cut = || "a tuple length is cut off".to_string();
    match bytes.first().copied().ok_or_else(cut)? {
        n @ 0..=253 => Ok((usize::from(n), 1)),
        254 => {
            let raw: [u8; 2] = bytes
                .get(1..3)
                .ok_or_else(cut)?
                .try_into()
                .map_err(|_| cut())?;
            let n = usize::from(u16::from_le_bytes(raw));
            if n < 254 {
                return Err(format!("tuple length {n} not in its shortest form"));
            }
            Ok((n, 3))
        }
        255 => {
            let raw: [u8; 4] = bytes
                .get(1..5)
                .ok_or_else(cut)?
                .try_into()
                .map_err(|_| cut())?;
            let n = u32::from_le_bytes(raw);
            if n <= u32::from(u16::MAX) {
                return Err(format!("tuple length {n} not in its shortest form"));
            }
            let n =
                usize::try_from(n).map_err(|_| "tuple length does not fit usize".to_string())?;
            Ok((n, 5))
        }
    }
}

fn element<T: Wire>() -> Element {
    (T::check, T::fixed_width())
}

impl<A: Wire, B: Wire> Wire for (A, B) {
    fn check(bytes: &[u8]) -> Result<(), String> {
        tuple(bytes, &[element::<A>(), element::<B>()])
    }
}

impl<A: Wire, B: Wire, C: Wire> Wire for (A, B, C) {
    fn check(bytes: &[u8]) -> Result<(), String> {
        tuple(bytes, &[element::<A>(), element::<B>(), element::<C>()])
    }
}

impl<A: Wire, B: Wire, C: Wire, D: Wire, E: Wire> Wire for (A, B, C, D, E) {
    fn check(bytes: &[u8]) -> Result<(), String> {
        tuple(
            bytes,
            &[
                element::<A>(),
                element::<B>(),
                element::<C>(),
                element::<D>(),
                element::<E>(),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// A string, with a byte length around redb's varint steps (254,
    /// 65_536) now and then when `long`.
    fn string(rng: &mut Rng, long: bool) -> String {
        let len = match (long, rng.below(20)) {
            (_, 0) => 250 + rng.below(10) as usize,
            (true, 1) => 36_400 + rng.below(10) as usize,
            _ => rng.below(20) as usize,
        };
        (0..len)
            .map(|_| ['a', 'é', '\u{10ffff}', '0', '/'][rng.below(5) as usize])
            .collect()
    }

    /// `check` accepts what redb encodes, and whatever it accepts decodes
    /// without panicking and encodes back to the same bytes.
    fn holds<T: Wire + 'static>(encoded: &[u8]) -> bool {
        if T::check(encoded).is_err() {
            return false;
        }
        let value = T::from_bytes(encoded);
        assert_eq!(T::as_bytes(&value).as_ref(), encoded);
        true
    }

    #[test]
    fn accepts_every_encoding_redb_makes_for_the_store_key_types() {
        let mut rng = Rng(7);
        for _ in 0..300 {
            let (a, b, c) = (
                string(&mut rng, true),
                string(&mut rng, true),
                string(&mut rng, true),
            );
            let (n, m, i) = (rng.next(), rng.next(), rng.next() as i64);
            assert!(holds::<&str>(a.as_bytes()));
            let bytes = <u64 as Value>::as_bytes(&n);
            assert!(holds::<u64>(&bytes));
            let bytes = <(u64, i64) as Value>::as_bytes(&(n, i));
            assert!(holds::<(u64, i64)>(&bytes));
            let bytes = <(&str, u64) as Value>::as_bytes(&(a.as_str(), n));
            assert!(holds::<(&str, u64)>(&bytes));
            let bytes = <(&str, &str) as Value>::as_bytes(&(a.as_str(), b.as_str()));
            assert!(holds::<(&str, &str)>(&bytes));
            let bytes = <(&str, u64, &str) as Value>::as_bytes(&(a.as_str(), n, b.as_str()));
            assert!(holds::<(&str, u64, &str)>(&bytes));
            assert!(holds::<()>(<() as Value>::as_bytes(&())));
            let key = (a.as_str(), n, b.as_str(), c.as_str(), m);
            let bytes = <(&str, u64, &str, &str, u64) as Value>::as_bytes(&key);
            assert!(holds::<(&str, u64, &str, &str, u64)>(&bytes));
        }
    }

    #[test]
    fn random_and_mutated_bytes_are_refused_or_decode_and_round_trip() {
        let mut rng = Rng(11);
        let mut accepted = [0usize; 5];
        for round in 0..50_000 {
            let mut bytes = if round % 2 == 0 {
                let len = rng.below(40) as usize;
                rng.bytes(len)
            } else {
                // A valid encoding of one of the key types, then one byte
                // changed, cut off or added.
                let (a, b, c) = (
                    string(&mut rng, false),
                    string(&mut rng, false),
                    string(&mut rng, false),
                );
                let (n, m) = (rng.next() % 300, rng.next());
                let key = (a.as_str(), n, b.as_str(), c.as_str(), m);
                match rng.below(4) {
                    0 => <(&str, u64) as Value>::as_bytes(&(a.as_str(), n)),
                    1 => <(&str, &str) as Value>::as_bytes(&(a.as_str(), b.as_str())),
                    2 => <(&str, u64, &str) as Value>::as_bytes(&(a.as_str(), n, b.as_str())),
                    _ => <(&str, u64, &str, &str, u64) as Value>::as_bytes(&key),
                }
            };
            if round % 2 == 1 && !bytes.is_empty() {
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(4) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes.insert(at, rng.next() as u8),
                    _ => {}
                }
            }
            accepted[0] += usize::from(holds::<(&str, u64)>(&bytes));
            accepted[1] += usize::from(holds::<(&str, &str)>(&bytes));
            accepted[2] += usize::from(holds::<(&str, u64, &str, &str, u64)>(&bytes));
            accepted[3] += usize::from(holds::<(u64, i64)>(&bytes));
            accepted[4] += usize::from(holds::<(&str, u64, &str)>(&bytes));
            holds::<()>(&bytes);
            holds::<&str>(&bytes);
            holds::<u64>(&bytes);
            holds::<&[u8]>(&bytes);
        }
        assert!(accepted.iter().all(|n| *n > 10), "{accepted:?}");
    }

    #[test]
    fn refuses_lengths_not_in_their_shortest_form() {
        // ("ab", 1) with the length written as 254 + u16.
        let mut bytes = vec![254, 2, 0, b'a', b'b'];
        bytes.extend(1u64.to_le_bytes());
        assert!(<(&str, u64)>::check(&bytes).is_err());
        let mut short = vec![2, b'a', b'b'];
        short.extend(1u64.to_le_bytes());
        assert!(<(&str, u64)>::check(&short).is_ok());
    }
}
