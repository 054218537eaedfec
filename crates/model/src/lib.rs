//! The data model of signalbox: signals, typed values, subscriptions, firings and
//! the acknowledgement a producer gets back, with their validation.
//!
//! This crate does no I/O and has no async: it turns bytes into checked types and
//! checked types into bytes, and every error names the field and the rule broken
//! (`params.partition: expected ...`). Everything else in signalbox builds on it.

pub mod ack;
pub mod error;
pub mod firing;
pub mod json_write;
pub mod limits;
pub mod signal;
mod signal_decode;
pub mod subscription;
pub mod template;
pub mod value;
mod value_serde;
pub mod wait;

pub use ack::{Ack, ErrorReply};
pub use error::FieldError;
pub use firing::{Firing, SignalRef, dedup_firing_id, firing_id};
pub use limits::Limits;
pub use signal::{Origin, Producer, Signal, SignalInstance};
pub use subscription::{Action, ActionKind, Carry, Join, SignalSpec, Subscription};
pub use template::{Binding, Template};
pub use value::{Map, Value, ValueError};
pub use wait::{Lookback, Wait, WaitRecord, WaitState};
