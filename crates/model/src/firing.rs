//! Firings: one execution of a subscription's action, with its deterministic id.
//!
//! A firing id is 64 lowercase hex digits. Without a `dedup` template it is
//! the time the newest consumed instance was received (milliseconds since the
//! Unix epoch, 12 hex digits) followed by the first 52 hex digits of the
//! SHA-256 of the subscription id, its version and the signal instances it
//! consumed (each `name/id#seq`, in the subscription's signal order; the `seq`
//! makes a signal re-announced after its dedup entry expired a new instance
//! with a new firing). The time prefix makes ids of new firings sort after
//! older ones, so the store appends them instead of writing all over its
//! firing table (docs/DECISIONS.md, "Time-ordered firing ids"). With a `dedup`
//! template the id is the whole hex SHA-256 of the subscription id and the
//! rendered value, with no time in it: the same value at any time is the same
//! firing. The same inputs always give the same id, so a firing that is
//! written twice, or published twice after a crash, is one firing for any
//! receiver that deduplicates by the `Nats-Msg-Id` header (JetStream does).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::signal::SignalInstance;
use crate::subscription::{ActionKind, Carry};
use crate::value::Map;

/// One consumed signal instance: its reference (alias, name, id, seq) and,
/// in a firing, what the subscription's `carry` asks for (its params, its
/// payload). Only the reference enters the firing id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRef {
    /// The alias (`as`) the subscription gave the signal.
    #[serde(rename = "as")]
    pub alias: String,
    /// Signal name.
    pub name: String,
    /// Signal id.
    pub id: String,
    /// Per-name sequence number of the instance.
    pub seq: u64,
    /// Its params, when carried (`carry: full` or `params`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map>,
    /// Its payload, when carried (`carry: full`) and it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

impl SignalRef {
    /// The reference to `instance` under `alias`, carrying what `carry` asks.
    pub fn of(alias: &str, instance: &SignalInstance, carry: Carry) -> SignalRef {
        SignalRef {
            alias: alias.to_string(),
            name: instance.signal.name.clone(),
            id: instance.id.clone(),
            seq: instance.seq,
            params: (carry != Carry::Refs).then(|| instance.signal.params.clone()),
            payload: match carry {
                Carry::Full => instance.signal.payload.clone(),
                Carry::Params | Carry::Refs => None,
            },
        }
    }

    /// The bare reference, without params or payload (lineage, wait state).
    pub fn bare(&self) -> SignalRef {
        SignalRef {
            params: None,
            payload: None,
            ..self.clone()
        }
    }
}

/// One firing, as written to the outbox and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    /// Deterministic firing id (see the module docs); also the `Nats-Msg-Id`.
    pub firing_id: String,
    /// The subscription that fired.
    pub subscription: String,
    /// Its version.
    pub version: u64,
    /// `publish` or `trigger`.
    pub action: ActionKind,
    /// The subject the firing is published to.
    pub subject: String,
    /// Rendered `params` templates.
    pub params: Map,
    /// The signal instances consumed, each with what the subscription's
    /// `carry` asks for.
    pub signals: Vec<SignalRef>,
    /// When the firing was created, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// W3C trace context of the signal that completed it (`traceparent`), so a
    /// trace continues from the producer through signalbox to the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Firing {
    /// The key under which an instance's trace context is kept in its origin details.
    pub const TRACEPARENT: &'static str = "traceparent";
}

/// Hex digits of the time prefix of a firing id (milliseconds; enough until
/// the year 10889).
const TIME_DIGITS: usize = 12;

/// The firing id for a subscription version consuming these signals, the newest
/// of which was received at `newest_received_at_ms`.
pub fn firing_id(
    subscription: &str,
    version: u64,
    signals: &[SignalRef],
    newest_received_at_ms: i64,
) -> String {
    let mut h = Sha256::new();
    h.update(b"signalbox/firing/v1\0");
    h.update(subscription.as_bytes());
    h.update(b"\0");
    h.update(version.to_be_bytes());
    for s in signals {
        h.update(b"\0");
        h.update(s.name.as_bytes());
        h.update(b"/");
        h.update(s.id.as_bytes());
        h.update(b"#");
        h.update(s.seq.to_be_bytes());
    }
    let time = u64::try_from(newest_received_at_ms).unwrap_or(0) & ((1 << (4 * TIME_DIGITS)) - 1);
    // The time in TIME_DIGITS hex digits, then the digest's first bytes in
    // hex, written into one buffer (this runs once per firing).
    let digest = h.finalize();
    let mut id = [0u8; 64];
    let (time_digits, hash_digits) = id.split_at_mut(TIME_DIGITS);
    for (i, d) in time_digits.iter_mut().enumerate() {
        *d = HEX_DIGITS[((time >> (4 * (TIME_DIGITS - 1 - i))) & 0xf) as usize];
    }
    for (pair, byte) in hash_digits.chunks_exact_mut(2).zip(digest.iter()) {
        pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
        pair[1] = HEX_DIGITS[usize::from(byte & 0xf)];
    }
    // Hex digits only: always UTF-8.
    std::str::from_utf8(&id)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Lower-case hex digits by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The firing id for a subscription with a `dedup` template that rendered to `value`.
pub fn dedup_firing_id(subscription: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"signalbox/firing-dedup/v1\0");
    h.update(subscription.as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, id: &str) -> SignalRef {
        SignalRef {
            alias: name.into(),
            name: name.into(),
            id: id.into(),
            seq: 1,
            params: None,
            payload: None,
        }
    }

    /// Ids are stored and compared across restarts and versions: the same
    /// inputs must give these exact ids in every build.
    #[test]
    fn ids_are_the_same_in_every_build() {
        let two = [r("t", "1"), r("orders", "o-9")];
        assert_eq!(
            firing_id("s", 1, &two, 1_764_000_000_000),
            "019ab697e8005e77f2b6d58cb8be9b616e5b50834d519f1658c04f318b1fb3f1"
        );
        assert_eq!(
            firing_id("sub/x", 7, &[r("t", "1")], -5),
            "000000000000a2f65f36c77ca6a9c1a2cf5260c5ede0b29f3d3e7af256a1d59e"
        );
        assert_eq!(
            dedup_firing_id("s", "v"),
            "080e738c050c7ea94a9122a380b3123470dbc871e8218ce65dc1e637d950e8eb"
        );
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        const AT: i64 = 1_764_000_000_000;
        let a = firing_id("s", 1, &[r("t", "1")], AT);
        assert_eq!(a, firing_id("s", 1, &[r("t", "1")], AT));
        assert_ne!(a, firing_id("s", 2, &[r("t", "1")], AT));
        assert_ne!(a, firing_id("s", 1, &[r("t", "2")], AT));
        let mut later = r("t", "1");
        later.seq = 2;
        assert_ne!(a, firing_id("s", 1, &[later], AT));
        assert_ne!(a, firing_id("s2", 1, &[r("t", "1")], AT));
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(dedup_firing_id("s", "1"), dedup_firing_id("s", "2"));
        assert_eq!(dedup_firing_id("s", "1").len(), 64);
    }

    #[test]
    fn ids_sort_by_the_newest_input_time() {
        let ids: Vec<String> = [0, 1, 999, 1_000, 1_764_000_000_000, 1_764_000_000_001]
            .iter()
            .map(|&at| firing_id("s", 1, &[r("t", "1")], at))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids[4].starts_with(&format!("{:012x}", 1_764_000_000_000_u64)));
        // A negative (pre-epoch) time cannot be encoded and counts as 0.
        assert_eq!(firing_id("s", 1, &[r("t", "1")], -5), ids[0]);
    }
}
