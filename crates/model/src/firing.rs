//! Firings: one execution of a subscription's action, with its deterministic id.
//!
//! The firing id is the hex SHA-256 of the subscription id, its version and the
//! signal instances it consumed (each `name/id#seq`, in the subscription's signal
//! order; the `seq` makes a signal re-announced after its dedup entry expired a
//! new instance with a new firing), or of the subscription id and the rendered `dedup` template when
//! one is given. The same inputs always give the same id, so a firing that is
//! written twice, or published twice after a crash, is one firing for any
//! receiver that deduplicates by the `Nats-Msg-Id` header (JetStream does).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::subscription::ActionKind;
use crate::value::Map;

/// A reference to one consumed signal instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The signal instances consumed.
    pub signals: Vec<SignalRef>,
    /// Payloads of the consumed signals, by alias (absent ones left out).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub payloads: serde_json::Map<String, serde_json::Value>,
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

    /// The message body published for this firing (JSON).
    pub fn message_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The firing id for a subscription version consuming these signals.
pub fn firing_id(subscription: &str, version: u64, signals: &[SignalRef]) -> String {
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
    hex::encode(h.finalize())
}

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
        }
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = firing_id("s", 1, &[r("t", "1")]);
        assert_eq!(a, firing_id("s", 1, &[r("t", "1")]));
        assert_ne!(a, firing_id("s", 2, &[r("t", "1")]));
        assert_ne!(a, firing_id("s", 1, &[r("t", "2")]));
        let mut later = r("t", "1");
        later.seq = 2;
        assert_ne!(a, firing_id("s", 1, &[later]));
        assert_ne!(a, firing_id("s2", 1, &[r("t", "1")]));
        assert_eq!(a.len(), 64);
        assert_ne!(dedup_firing_id("s", "1"), dedup_firing_id("s", "2"));
    }
}
