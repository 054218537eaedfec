//! The one step from a source adapter's output to signals ready for the store,
//! shared by webhooks, SNS and Kafka: call the adapter off the async threads,
//! then give each signal its default id, its origin and the producer's trace
//! context.
//!
//! Invariants:
//! - a signal that names an id keeps it; otherwise the transport's own id
//!   (SNS `MessageId`, Kafka `topic/partition/offset`), suffixed `/<index>`
//!   when one message became several signals, so a redelivery of the same
//!   message dedups; with no transport id a fresh UUIDv7 (a webhook retry is
//!   then a new signal unless the adapter names an id);
//! - a `traceparent` is kept only when it is well formed
//!   (`crate::telemetry::valid_traceparent`);
//! - every signal of one message gets the same receive time: the envelope's.

use std::collections::BTreeMap;
use std::sync::Arc;

use signalbox_model::{Firing, Origin, Signal};
use signalbox_plugin::{Envelope, WasmAdapter};
use signalbox_store::Incoming;

/// What an adapter call gave back, when it gave no signals.
#[derive(Debug)]
pub(crate) enum DecodeFailure {
    /// The adapter refused the message for good (a 422, a dead letter).
    Rejected(String),
    /// The adapter asked for a retry later, or could not be run (a 503).
    Retry(String),
}

/// Runs `adapter` on `envelope` on a blocking thread.
pub(crate) async fn decode(
    adapter: Arc<WasmAdapter>,
    envelope: Envelope,
) -> Result<Vec<Signal>, DecodeFailure> {
    match tokio::task::spawn_blocking(move || adapter.decode(&envelope)).await {
        Ok(Ok(signals)) => Ok(signals),
        Ok(Err(e)) if e.is_retryable() => Err(DecodeFailure::Retry(e.to_string())),
        Ok(Err(e)) => Err(DecodeFailure::Rejected(e.to_string())),
        Err(e) => Err(DecodeFailure::Retry(format!("adapter task failed: {e}"))),
    }
}

/// How a signal without an id gets one.
pub(crate) enum DefaultId<'a> {
    /// The transport's id of the message (suffixed `/<index>` when the
    /// message gave several signals).
    Message(&'a str),
    /// A fresh UUIDv7 per signal.
    Fresh,
}

/// Where one message's signals came from: what they all share.
pub(crate) struct MessageOrigin<'a> {
    /// `http`, `sns`, `kafka`.
    pub transport: &'static str,
    /// The path, topic ARN or topic.
    pub address: String,
    /// The adapter that decoded it.
    pub adapter: &'a str,
    /// Transport details (`message-id`, `partition`, `offset`, `source` …).
    pub details: BTreeMap<String, String>,
    /// The producer's `traceparent`, when it sent one (checked here).
    pub traceparent: Option<&'a str>,
    /// How signals without an id get one.
    pub default_id: DefaultId<'a>,
    /// When the message was received (the envelope's time).
    pub received_at_ms: i64,
}

/// The adapter's signals of one message, ready for `pipeline::ingest`.
pub(crate) fn incoming(signals: Vec<Signal>, from: MessageOrigin<'_>) -> Vec<Incoming> {
    let several = signals.len() > 1;
    let mut details = from.details;
    if let Some(tp) = from
        .traceparent
        .filter(|tp| crate::telemetry::valid_traceparent(tp))
    {
        details.insert(Firing::TRACEPARENT.to_string(), tp.to_string());
    }
    signals
        .into_iter()
        .enumerate()
        .map(|(i, mut signal)| {
            if signal.id.is_none() {
                signal.id = Some(match &from.default_id {
                    DefaultId::Message(id) if several => format!("{id}/{i}"),
                    DefaultId::Message(id) => (*id).to_string(),
                    DefaultId::Fresh => uuid::Uuid::now_v7().to_string(),
                });
            }
            Incoming {
                signal,
                origin: Origin {
                    transport: from.transport.into(),
                    address: Some(from.address.clone()),
                    adapter: Some(from.adapter.to_string()),
                    details: details.clone(),
                },
                received_at_ms: from.received_at_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Default ids and trace context, as every adapter source gets them.

    use super::*;

    fn signal(id: Option<&str>) -> Signal {
        let json = match id {
            Some(id) => format!(r#"{{"name":"s","id":"{id}"}}"#),
            None => r#"{"name":"s"}"#.to_string(),
        };
        Signal::parse(json.as_bytes(), &signalbox_model::Limits::default()).expect("signal")
    }

    fn origin<'a>(default_id: DefaultId<'a>, traceparent: Option<&'a str>) -> MessageOrigin<'a> {
        MessageOrigin {
            transport: "sns",
            address: "arn:aws:sns:us-east-1:1:t".into(),
            adapter: "a",
            details: BTreeMap::from([("source".to_string(), "orders".to_string())]),
            traceparent,
            default_id,
            received_at_ms: 7,
        }
    }

    #[test]
    fn ids_default_to_the_message_id_and_named_ids_stay() {
        let one = incoming(vec![signal(None)], origin(DefaultId::Message("m-1"), None));
        assert_eq!(one[0].signal.id.as_deref(), Some("m-1"));
        let two = incoming(
            vec![signal(None), signal(Some("mine")), signal(None)],
            origin(DefaultId::Message("m-1"), None),
        );
        let ids: Vec<_> = two.iter().map(|i| i.signal.id.as_deref()).collect();
        assert_eq!(ids, [Some("m-1/0"), Some("mine"), Some("m-1/2")]);
        let fresh = incoming(
            vec![signal(None), signal(None)],
            origin(DefaultId::Fresh, None),
        );
        assert_ne!(fresh[0].signal.id, fresh[1].signal.id);
        assert!(fresh.iter().all(|i| i.received_at_ms == 7));
        assert_eq!(fresh[0].origin.transport, "sns");
        assert_eq!(fresh[0].origin.adapter.as_deref(), Some("a"));
    }

    #[test]
    fn only_a_well_formed_traceparent_is_kept() {
        let good = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01";
        let kept = incoming(vec![signal(None)], origin(DefaultId::Fresh, Some(good)));
        assert_eq!(
            kept[0]
                .origin
                .details
                .get(Firing::TRACEPARENT)
                .map(String::as_str),
            Some(good)
        );
        assert_eq!(
            kept[0].origin.details.get("source").map(String::as_str),
            Some("orders")
        );
        let dropped = incoming(vec![signal(None)], origin(DefaultId::Fresh, Some("nope")));
        assert!(!dropped[0].origin.details.contains_key(Firing::TRACEPARENT));
    }
}
