//! JSON for the records the router writes once per signal (the stored
//! instance, the stored firing, the published firing), written straight into
//! a byte buffer.
//!
//! Invariant: for every value, [`WriteJson::write_json`] appends exactly the
//! bytes `serde_json::to_writer` appends for the same value (same field order,
//! same optional fields left out, same string escapes, same number text). The
//! derived `Serialize` impls stay the definition; this module is a faster way
//! to the same bytes, and its tests compare the two on generated values. A
//! stored row or a published message therefore does not depend on which of
//! the two wrote it.
//!
//! Why: through serde, every field name is a string that serde_json escapes
//! byte by byte, and so is every value; that was about a tenth of the router's
//! instructions per signal (docs/DECISIONS.md, "The per-signal JSON is written
//! by hand, byte for byte as serde_json"). Here field names are literals, and strings are scanned eight
//! bytes at a time for the few bytes JSON must escape. Numbers use `itoa`
//! (as serde_json does); floats and the rare `payload` (a
//! `serde_json::Value`) go through serde_json itself.

use std::collections::BTreeMap;

use crate::firing::{Firing, SignalRef};
use crate::signal::{Origin, Producer, Signal, SignalInstance};
use crate::subscription::ActionKind;
use crate::value::{Map, Value};

/// A type whose JSON this module writes (see the module docs).
pub trait WriteJson {
    /// Appends this value's JSON to `out`, byte for byte what
    /// `serde_json::to_writer` would append.
    fn write_json(&self, out: &mut Vec<u8>);
}

impl Firing {
    /// The message body published for this firing: its JSON, the bytes
    /// serde_json would write.
    pub fn message_bytes(&self) -> Vec<u8> {
        to_vec(self, 512)
    }
}

/// The JSON of `value` in a new buffer of at least `capacity` bytes.
pub fn to_vec<T: WriteJson + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    value.write_json(&mut out);
    out
}

/// Appends `s` as a JSON string: quoted, with `"`, `\` and the control
/// characters escaped as serde_json escapes them.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            && !needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let byte = bytes[i];
        let escape = ESCAPE[usize::from(byte)];
        i += 1;
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..i - 1]);
        run = i;
        match escape {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
            short => out.extend_from_slice(&[b'\\', short]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Whether any of the eight bytes is `"`, `\` or below 0x20 (exact: the
/// classic "has a zero byte" and "has a byte less than n" word tests).
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
}

const HEX: [u8; 16] = *b"0123456789abcdef";

/// Per byte: 0 for "copy as is", else the letter after the backslash (`u`
/// for `\u00XX`), as in serde_json's table.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `n` as serde_json writes it.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `n` as serde_json writes it.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A float as serde_json writes it (`null` when not finite).
fn write_f64(out: &mut Vec<u8>, f: f64) {
    if serde_json::to_writer(&mut *out, &f).is_err() {
        // Writing into a Vec does not fail; keep the output valid anyway.
        out.extend_from_slice(b"null");
    }
}

/// Writes `"key":` after a `{` or a previous member (`first` tracks which).
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    write_str(out, name);
    out.push(b':');
}

/// Writes a member whose name needs no escape, given as `"name":`.
fn lit(out: &mut Vec<u8>, first: &mut bool, quoted_name_colon: &[u8]) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(quoted_name_colon);
}

impl WriteJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Int(i) => write_i64(out, *i),
            Value::Float(f) => write_f64(out, *f),
            Value::String(s) => write_str(out, s),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Value::Object(map) => map.write_json(out),
        }
    }
}

impl WriteJson for Map {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (k, v) in self {
            key(out, &mut first, k);
            v.write_json(out);
        }
        out.push(b'}');
    }
}

/// The `payload`: any JSON, written by serde_json.
impl WriteJson for serde_json::Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"null");
        }
    }
}

/// Origin details: an object of strings.
impl WriteJson for BTreeMap<String, String> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        for (k, v) in self {
            key(out, &mut first, k);
            write_str(out, v);
        }
        out.push(b'}');
    }
}

/// Writes `member` (`,"name":`) and the value when there is one: an
/// optional field that serde leaves out when it is `None`.
fn optional<T: WriteJson + ?Sized>(out: &mut Vec<u8>, member: &[u8], value: Option<&T>) {
    if let Some(v) = value {
        out.extend_from_slice(member);
        v.write_json(out);
    }
}

impl WriteJson for SignalRef {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"as\":");
        write_str(out, &self.alias);
        out.extend_from_slice(b",\"name\":");
        write_str(out, &self.name);
        out.extend_from_slice(b",\"id\":");
        write_str(out, &self.id);
        out.extend_from_slice(b",\"seq\":");
        write_u64(out, self.seq);
        optional(out, b",\"params\":", self.params.as_ref());
        optional(out, b",\"payload\":", self.payload.as_ref());
        out.push(b'}');
    }
}

impl WriteJson for Firing {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"firing_id\":");
        write_str(out, &self.firing_id);
        out.extend_from_slice(b",\"subscription\":");
        write_str(out, &self.subscription);
        out.extend_from_slice(b",\"version\":");
        write_u64(out, self.version);
        out.extend_from_slice(match self.action {
            ActionKind::Publish => b",\"action\":\"publish\"",
            ActionKind::Trigger => b",\"action\":\"trigger\"",
        });
        out.extend_from_slice(b",\"subject\":");
        write_str(out, &self.subject);
        out.extend_from_slice(b",\"params\":");
        self.params.write_json(out);
        out.extend_from_slice(b",\"signals\":[");
        for (i, s) in self.signals.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            s.write_json(out);
        }
        out.extend_from_slice(b"],\"created_at_ms\":");
        write_i64(out, self.created_at_ms);
        optional(out, b",\"traceparent\":", self.traceparent.as_deref());
        out.push(b'}');
    }
}

impl WriteJson for Producer {
    fn write_json(&self, out: &mut Vec<u8>) {
        // `extra` is flattened: its entries follow the named fields.
        out.push(b'{');
        let mut first = true;
        for (name, value) in [
            (&b"\"workflow\":"[..], &self.workflow),
            (b"\"run\":", &self.run),
            (b"\"step\":", &self.step),
        ] {
            if let Some(v) = value {
                lit(out, &mut first, name);
                write_str(out, v);
            }
        }
        for (k, v) in &self.extra {
            key(out, &mut first, k);
            write_str(out, v);
        }
        out.push(b'}');
    }
}

impl WriteJson for Signal {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"name\":");
        write_str(out, &self.name);
        optional(out, b",\"id\":", self.id.as_deref());
        out.extend_from_slice(b",\"params\":");
        self.params.write_json(out);
        optional(out, b",\"payload\":", self.payload.as_ref());
        optional(out, b",\"source\":", self.source.as_deref());
        optional(out, b",\"producer\":", self.producer.as_ref());
        optional(out, b",\"occurred_at\":", self.occurred_at.as_deref());
        out.push(b'}');
    }
}

impl WriteJson for Origin {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"transport\":");
        write_str(out, &self.transport);
        optional(out, b",\"address\":", self.address.as_deref());
        optional(out, b",\"adapter\":", self.adapter.as_deref());
        optional(
            out,
            b",\"details\":",
            Some(&self.details).filter(|d| !d.is_empty()),
        );
        out.push(b'}');
    }
}

impl WriteJson for SignalInstance {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"seq\":");
        write_u64(out, self.seq);
        out.extend_from_slice(b",\"id\":");
        write_str(out, &self.id);
        out.extend_from_slice(b",\"received_at_ms\":");
        write_i64(out, self.received_at_ms);
        out.extend_from_slice(b",\"signal\":");
        self.signal.write_json(out);
        out.extend_from_slice(b",\"origin\":");
        self.origin.write_json(out);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests;
