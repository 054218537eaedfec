//! Map keys for strings that keep short strings inline (up to 22 bytes, the
//! size of the `Box<str>` they replace plus a length byte): a lookup
//! compares the key where the hash table holds it, without following a
//! pointer, and a short key costs no allocation.
//!
//! Invariant: a key is `Short` exactly when its string fits, and unused
//! inline bytes are zero, so equal strings give equal keys; keys hash and
//! compare as their bytes (`[u8]`), so maps look them up by `&[u8]`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Longest string kept inline.
const INLINE: usize = 22;

/// A string key.
#[derive(Clone)]
pub(crate) enum InlineKey {
    /// Up to [`INLINE`] bytes: the length and the bytes.
    Short(u8, [u8; INLINE]),
    /// Longer strings.
    Long(Box<[u8]>),
}

impl InlineKey {
    /// The key for `s`.
    pub(crate) fn new(s: &str) -> InlineKey {
        let b = s.as_bytes();
        if b.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..b.len()].copy_from_slice(b);
            InlineKey::Short(b.len() as u8, bytes)
        } else {
            InlineKey::Long(b.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            InlineKey::Short(len, bytes) => &bytes[..usize::from(*len)],
            InlineKey::Long(b) => b,
        }
    }

    /// Heap bytes held (none when inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            InlineKey::Short(..) => 0,
            InlineKey::Long(b) => b.len() + 16,
        }
    }
}

impl PartialEq for InlineKey {
    fn eq(&self, other: &InlineKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for InlineKey {}

impl Hash for InlineKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for InlineKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for InlineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_are_found_by_their_bytes() {
        let mut m: std::collections::HashMap<InlineKey, u32> = std::collections::HashMap::new();
        let words = [
            "",
            "a",
            "v123456",
            "exactly-twenty-two-b!!",
            "twenty-three bytes long",
            "é😀",
        ];
        for (i, w) in words.iter().enumerate() {
            m.insert(InlineKey::new(w), i as u32);
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(m.get(w.as_bytes()), Some(&(i as u32)), "{w}");
            assert_eq!(InlineKey::new(w).as_bytes(), w.as_bytes());
        }
        assert!(matches!(
            InlineKey::new("exactly-twenty-two-b!!"),
            InlineKey::Short(22, _)
        ));
        assert!(matches!(
            InlineKey::new("twenty-three bytes long"),
            InlineKey::Long(_)
        ));
        assert_eq!(std::mem::size_of::<InlineKey>(), 24);
    }
}
