//! Delivery: the outbox drainer publishes committed firings to their subjects
//! with `Nats-Msg-Id: <firing id>` and marks them delivered after the ack
//! (JetStream) or flush (core NATS); exactly once at a JetStream target.

mod acks;
pub(crate) mod outbox;
