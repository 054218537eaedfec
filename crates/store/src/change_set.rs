//! [`ChangeSet`]: the table writes of one write transaction, in the order they
//! were made, and their versioned binary encoding (the changelog entry).
//!
//! Encoding (format 1), all integers unsigned LEB128 unless said otherwise:
//!
//! ```text
//! entry  = format:u8 (= 1) change*
//! change = table:u8 op:u8 key_len key [value_len value]
//! op     = 1 insert (key, value) | 2 remove (key) | 3 remove_value (key, value)
//!        | 4 remove_all (key)
//! ```
//!
//! `table` is the table's changelog id (`tables::ids`, listed in
//! `docs/STORAGE.md`); key and value are redb's own bytes for the table's key
//! and value types (`Key::as_bytes` / `Value::as_bytes`). `insert` is a plain
//! table's insert or a multimap's insert of one pair; `remove` removes a plain
//! table's key; `remove_value` and `remove_all` are multimap removals.
//!
//! Invariants: a [`ChangeSet`] always holds a well-formed encoding — it is
//! either built by the store's own recording or checked whole by
//! [`ChangeSet::decode`] — so iterating it cannot fail. Decoding checks the
//! structure only (format byte, op codes, lengths within the input); it never
//! panics and never allocates more than the input's size. Whether a table id
//! exists and whether its bytes decode with the table's types is checked when
//! the set is applied (`replay`). A new format gets a new format byte; a
//! decoder meeting an unknown one refuses the entry.

use crate::error::ChangelogDecodeError;

/// Format byte of the encoding described in the module docs.
pub(crate) const FORMAT_V1: u8 = 1;

/// What one change does to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// Insert `key -> value` (plain table: replaces the old value; multimap: adds the pair).
    Insert,
    /// Remove `key` from a plain table.
    Remove,
    /// Remove the pair `(key, value)` from a multimap table.
    RemoveValue,
    /// Remove every value of `key` from a multimap table.
    RemoveAll,
}

impl ChangeOp {
    fn code(self) -> u8 {
        match self {
            ChangeOp::Insert => 1,
            ChangeOp::Remove => 2,
            ChangeOp::RemoveValue => 3,
            ChangeOp::RemoveAll => 4,
        }
    }

    fn from_code(code: u8) -> Option<ChangeOp> {
        match code {
            1 => Some(ChangeOp::Insert),
            2 => Some(ChangeOp::Remove),
            3 => Some(ChangeOp::RemoveValue),
            4 => Some(ChangeOp::RemoveAll),
            _ => None,
        }
    }

    /// Whether the change carries a value.
    pub fn has_value(self) -> bool {
        matches!(self, ChangeOp::Insert | ChangeOp::RemoveValue)
    }
}

/// One recorded table write, borrowed from its [`ChangeSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    /// The table's changelog id (see `docs/STORAGE.md`, "Changelog").
    pub table: u8,
    /// What the change does.
    pub op: ChangeOp,
    /// redb's bytes of the key.
    pub key: &'a [u8],
    /// redb's bytes of the value, for [`ChangeOp::Insert`] and [`ChangeOp::RemoveValue`].
    pub value: Option<&'a [u8]>,
}

impl Change<'_> {
    /// The name of the table, if this build knows its id.
    pub fn table_name(&self) -> Option<&'static str> {
        crate::tables::name_of(self.table)
    }
}

/// The table writes of one transaction, in order, held in their encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The encoding: the format byte, then the changes.
    bytes: Vec<u8>,
    /// How many changes `bytes` holds.
    count: usize,
}

impl Default for ChangeSet {
    fn default() -> Self {
        ChangeSet::new()
    }
}

impl std::fmt::Debug for ChangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSet")
            .field("changes", &self.count)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> ChangeSet {
        ChangeSet {
            bytes: vec![FORMAT_V1],
            count: 0,
        }
    }

    /// Appends one change (the recording of `capture`).
    pub(crate) fn push(&mut self, table: u8, op: ChangeOp, key: &[u8], value: Option<&[u8]>) {
        debug_assert_eq!(op.has_value(), value.is_some());
        self.bytes.push(table);
        self.bytes.push(op.code());
        put_len(&mut self.bytes, key.len());
        self.bytes.extend_from_slice(key);
        if let Some(value) = value {
            put_len(&mut self.bytes, value.len());
            self.bytes.extend_from_slice(value);
        }
        self.count += 1;
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no change.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The changes, in the order they were made.
    pub fn iter(&self) -> impl Iterator<Item = Change<'_>> + '_ {
        let mut reader = Reader {
            bytes: &self.bytes,
            at: 1,
        };
        std::iter::from_fn(move || reader.next_change().ok().flatten())
    }

    /// The encoding (module docs), borrowed: what a sink publishes.
    pub fn encoded(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Decodes an encoding made by [`ChangeSet::encode`]; checks its whole
    /// structure (module docs) and never panics.
    pub fn decode(bytes: &[u8]) -> Result<ChangeSet, ChangelogDecodeError> {
        match bytes.first() {
            None => return Err(ChangelogDecodeError::new(0, "empty input")),
            Some(&FORMAT_V1) => {}
            Some(&other) => {
                return Err(ChangelogDecodeError::new(
                    0,
                    format!(
                        "unknown changelog format {other} (this build reads format {FORMAT_V1})"
                    ),
                ));
            }
        }
        let mut reader = Reader { bytes, at: 1 };
        let mut count = 0;
        while reader.next_change()?.is_some() {
            count += 1;
        }
        Ok(ChangeSet {
            bytes: bytes.to_vec(),
            count,
        })
    }
}

/// Appends `len` as unsigned LEB128.
fn put_len(out: &mut Vec<u8>, len: usize) {
    let mut n = len as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A cursor over an encoding, checking every step.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next change, `None` at the end of the input.
    fn next_change(&mut self) -> Result<Option<Change<'a>>, ChangelogDecodeError> {
        let start = self.at;
        let Some(&table) = self.bytes.get(self.at) else {
            return Ok(None);
        };
        let op_code = *self
            .bytes
            .get(self.at + 1)
            .ok_or_else(|| ChangelogDecodeError::new(start, "change cut off after its table id"))?;
        let op = ChangeOp::from_code(op_code).ok_or_else(|| {
            ChangelogDecodeError::new(start + 1, format!("unknown change op {op_code}"))
        })?;
        self.at += 2;
        let key = self.slice("key")?;
        let value = if op.has_value() {
            Some(self.slice("value")?)
        } else {
            None
        };
        Ok(Some(Change {
            table,
            op,
            key,
            value,
        }))
    }

    /// A length-prefixed slice.
    fn slice(&mut self, what: &'static str) -> Result<&'a [u8], ChangelogDecodeError> {
        let len_at = self.at;
        let len = self.len()?;
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                ChangelogDecodeError::new(
                    len_at,
                    format!(
                        "{what} of {len} bytes runs past the end of the input ({} bytes left)",
                        self.bytes.len() - self.at
                    ),
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// An unsigned LEB128 length (at most 10 bytes, fitting `usize`).
    fn len(&mut self) -> Result<usize, ChangelogDecodeError> {
        let start = self.at;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| ChangelogDecodeError::new(start, "length cut off"))?;
            self.at += 1;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ChangelogDecodeError::new(start, "length overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value)
                    .map_err(|_| ChangelogDecodeError::new(start, "length does not fit usize"));
            }
        }
        Err(ChangelogDecodeError::new(
            start,
            "length longer than 10 bytes",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn encode_then_decode_gives_the_same_changes() {
        let mut set = ChangeSet::new();
        let big = vec![7u8; 300];
        set.push(3, ChangeOp::Insert, b"k1", Some(b"v1"));
        set.push(5, ChangeOp::Remove, b"", None);
        set.push(7, ChangeOp::RemoveValue, &big, Some(b""));
        set.push(13, ChangeOp::RemoveAll, b"kk", None);
        set.push(17, ChangeOp::Insert, b"x", Some(&big));
        let bytes = set.encode();
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(bytes.as_slice(), set.encoded());
        let back = ChangeSet::decode(&bytes).expect("decode");
        assert_eq!(back, set);
        assert_eq!(back.len(), 5);
        let changes: Vec<Change<'_>> = back.iter().collect();
        assert_eq!(
            changes[0],
            Change {
                table: 3,
                op: ChangeOp::Insert,
                key: b"k1",
                value: Some(b"v1")
            }
        );
        assert_eq!(changes[1].op, ChangeOp::Remove);
        assert_eq!(changes[1].value, None);
        assert_eq!(changes[2].key, big.as_slice());
        assert_eq!(changes[2].value, Some(&b""[..]));
        assert_eq!(changes[3].table_name(), Some("signal_waits"));
        assert_eq!(changes[4].value, Some(big.as_slice()));
        // Two bytes of length for 300 bytes, one for small ones.
        assert_eq!(
            bytes.len(),
            1 + (2 + 1 + 2 + 1 + 2)
                + (2 + 1)
                + (2 + 2 + 300 + 1)
                + (2 + 1 + 2)
                + (2 + 1 + 1 + 2 + 300)
        );
    }

    #[test]
    fn an_empty_set_is_one_format_byte() {
        let set = ChangeSet::new();
        assert!(set.is_empty());
        assert_eq!(set.encode(), vec![FORMAT_V1]);
        assert!(ChangeSet::decode(&[FORMAT_V1]).expect("decode").is_empty());
    }

    #[test]
    fn malformed_input_is_refused_with_its_offset() {
        let err = ChangeSet::decode(&[]).expect_err("empty");
        assert_eq!(err.offset, 0);
        let err = ChangeSet::decode(&[2, 1, 1]).expect_err("format");
        assert!(err.reason.contains("unknown changelog format 2"), "{err}");
        let err = ChangeSet::decode(&[1, 3]).expect_err("cut");
        assert_eq!(err.offset, 1);
        let err = ChangeSet::decode(&[1, 3, 9, 0]).expect_err("op");
        assert!(err.reason.contains("unknown change op 9"), "{err}");
        assert_eq!(err.offset, 2);
        let err = ChangeSet::decode(&[1, 3, 2, 5, b'a']).expect_err("short key");
        assert!(err.reason.contains("runs past the end"), "{err}");
        let err = ChangeSet::decode(&[1, 3, 1, 1, b'a']).expect_err("no value");
        assert!(err.reason.contains("length cut off"), "{err}");
        let mut huge = vec![1, 3, 2];
        huge.extend([0xff; 9]);
        huge.push(0x7f);
        let err = ChangeSet::decode(&huge).expect_err("overflow");
        assert!(err.reason.contains("overflows"), "{err}");
        let mut long = vec![1, 3, 2];
        long.extend([0x80; 11]);
        let err = ChangeSet::decode(&long).expect_err("long");
        assert!(err.reason.contains("longer than 10 bytes"), "{err}");
    }

    #[test]
    fn decoding_random_bytes_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for round in 0..20_000 {
            let len = rng.below(64) as usize;
            let mut bytes = rng.bytes(len);
            // Half the inputs start with the right format byte, and op codes
            // and lengths are often small, so decoding gets past the header.
            if round % 2 == 0 && !bytes.is_empty() {
                bytes[0] = FORMAT_V1;
                for b in bytes.iter_mut().skip(1) {
                    if rng.below(3) == 0 {
                        *b %= 6;
                    }
                }
            }
            if let Ok(set) = ChangeSet::decode(&bytes) {
                accepted += 1;
                assert_eq!(set.iter().count(), set.len());
                assert_eq!(set.encode(), bytes, "a decoded set encodes to its input");
            }
        }
        assert!(
            accepted > 100,
            "too few inputs got past the header: {accepted}"
        );
    }

    #[test]
    fn truncating_a_valid_encoding_anywhere_is_refused_or_a_prefix() {
        let mut rng = Rng(42);
        let mut set = ChangeSet::new();
        for _ in 0..50 {
            let table = rng.below(20) as u8;
            let op = ChangeOp::from_code(1 + rng.below(4) as u8).expect("op");
            let key_len = rng.below(200) as usize;
            let key = rng.bytes(key_len);
            let value_len = rng.below(400) as usize;
            let value = rng.bytes(value_len);
            set.push(table, op, &key, op.has_value().then_some(value.as_slice()));
        }
        let bytes = set.encode();
        for cut in 0..bytes.len() {
            if let Ok(prefix) = ChangeSet::decode(&bytes[..cut]) {
                assert!(prefix.len() < set.len());
                assert!(set.iter().zip(prefix.iter()).all(|(a, b)| a == b));
            }
        }
    }
}
