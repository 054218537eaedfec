//! The encoding of stored values: one format byte, then JSON (serde_json) of a
//! model type.
//!
//! Every value written by [`encode`] starts with [`FORMAT_JSON_V1`]. A reader that
//! meets another first byte returns [`Corrupt`] naming the table and key instead
//! of guessing; a future format (say, a compact binary encoding, or JSON of an
//! evolved type) gets a new byte and a decoder arm here, and old rows stay
//! readable until they are rewritten. Within format 1, types evolve the serde way:
//! new fields carry `#[serde(default)]`, so rows written before them still decode.
//! [`encode_with`] is the same format, its JSON written directly instead of
//! through serde (the rows written once per signal).
//! Keys are never encoded here: they are redb's own typed keys (see `tables`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Corrupt;

/// Format byte of a JSON value (the only format so far).
pub(crate) const FORMAT_JSON_V1: u8 = 1;

/// Encodes `value` as the format byte followed by its JSON.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_JSON_V1);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Encodes like [`encode`], the JSON appended by `write` (a writer of
/// `signalbox_model::json_write`, which writes the bytes serde_json would):
/// for the rows written once per signal. Writing into memory cannot fail.
pub(crate) fn encode_with(capacity: usize, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(FORMAT_JSON_V1);
    write(&mut out);
    out
}

/// Decodes a value written by [`encode`]; `key` renders the key for the error.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
    key: impl FnOnce() -> String,
) -> Result<T, Corrupt> {
    let corrupt = |key: String, reason: String| Corrupt { table, key, reason };
    match bytes.split_first() {
        None => Err(corrupt(key(), "empty value".into())),
        Some((&FORMAT_JSON_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| corrupt(key(), format!("bad JSON: {e}")))
        }
        Some((other, _)) => Err(corrupt(
            key(),
            format!("unknown value format {other} (this build reads format {FORMAT_JSON_V1})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let bytes = encode(&vec![1u32, 2]).expect("encode");
        assert_eq!(bytes[0], FORMAT_JSON_V1);
        let back: Vec<u32> = decode("t", &bytes, || "k".into()).expect("decode");
        assert_eq!(back, vec![1, 2]);
        let err = decode::<Vec<u32>>("t", &[9, b'1'], || "k".into()).expect_err("format");
        assert!(err.reason.contains("unknown value format 9"), "{err}");
        assert!(decode::<Vec<u32>>("t", &[], || "k".into()).is_err());
        assert!(decode::<Vec<u32>>("t", &[1, b'{'], || "k".into()).is_err());
    }
}
