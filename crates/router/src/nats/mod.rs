//! The NATS plumbing every room uses: the connection with its options and
//! event counters ([`connect`]), a `nats-server` child for `signalbox dev`
//! and the test kit ([`embedded`]), JSON replies to requests ([`reply`]), who else serves the same
//! subjects ([`peers`]), and a JetStream message's stream position
//! ([`stream_position`]).
//! Nothing here knows about signals or subscriptions.

pub mod connect;
pub mod embedded;
pub mod peers;
pub(crate) mod reply;
pub(crate) mod stream_position;
pub mod version;

/// The header JetStream deduplicates by: a firing's id on publish, and the
/// signal id when a message names none.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
