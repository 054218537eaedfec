//! Wasm source adapters: a loaded `source-adapter` plugin decodes envelopes.
//!
//! [`WasmAdapter::decode`] runs the guest's `decode` within the adapter deadline
//! on a pooled instance, then validates what came back before anyone sees it: at
//! most `max_signals_per_decode` signals, each one's params and payload valid
//! JSON within the size limits, and each one a valid signal by the model's rules
//! ([`Signal::from_json`] with the host's [`Limits`](signalbox_model::Limits)).
//! A plugin returning garbage gets a [`DecodeError`] naming the signal and field.

use std::fmt;

use serde_json::json;
use signalbox_model::{FieldError, Signal};

use crate::bindings::adapter::SourceAdapterPre;
use crate::bindings::adapter::exports::signalbox::plugin::adapter as wit;
use crate::error::DecodeError;
use crate::pool::Pool;
use crate::quarantine::PluginStats;
use crate::state::HostState;
use crate::types::{Description, Envelope, Transport};

/// A loaded source-adapter plugin.
pub struct WasmAdapter {
    pub(crate) pool: Pool<SourceAdapterPre<HostState>>,
    pub(crate) description: Description,
}

impl fmt::Debug for WasmAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmAdapter")
            .field("name", &&*self.pool.plugin)
            .field("description", &self.description)
            .finish()
    }
}

fn to_wit(envelope: &Envelope) -> wit::Envelope {
    wit::Envelope {
        transport: match envelope.transport {
            Transport::Kafka => wit::Transport::Kafka,
            Transport::Sns => wit::Transport::Sns,
            Transport::Http => wit::Transport::Http,
            Transport::Nats => wit::Transport::Nats,
        },
        topic: envelope.topic.clone(),
        key: envelope.key.clone(),
        headers: envelope.headers.clone(),
        body: envelope.body.clone(),
        metadata: envelope.metadata.clone(),
        received_at_ms: envelope.received_at_ms,
    }
}

impl WasmAdapter {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.pool.plugin
    }

    /// What the plugin said about itself when it was loaded.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// The plugin's call counters and quarantine state.
    pub fn stats(&self) -> PluginStats {
        self.pool.health.stats()
    }

    /// Lifts a quarantine and drops the idle instances.
    pub fn reset_quarantine(&self) {
        self.pool.clear();
        self.pool.health.reset();
    }

    /// Decodes one message into validated signals.
    pub fn decode(&self, envelope: &Envelope) -> Result<Vec<Signal>, DecodeError> {
        let env = to_wit(envelope);
        let verdict = self.pool.call(self.pool.config.adapter_deadline, |slot| {
            slot.bindings
                .signalbox_plugin_adapter()
                .call_decode(&mut slot.store, &env)
        })?;
        let signals = match verdict {
            Ok(signals) => signals,
            Err(wit::DecodeError::Reject(m)) => return Err(DecodeError::Reject(m)),
            Err(wit::DecodeError::Retry(m)) => return Err(DecodeError::Retry(m)),
        };
        let max = self.pool.config.max_signals_per_decode;
        if signals.len() > max {
            return Err(DecodeError::TooManySignals {
                plugin: self.name().to_string(),
                count: signals.len(),
                max,
            });
        }
        signals
            .into_iter()
            .enumerate()
            .map(|(index, s)| {
                self.validate(s)
                    .map_err(|error| DecodeError::InvalidSignal {
                        plugin: self.name().to_string(),
                        index,
                        error,
                    })
            })
            .collect()
    }

    fn validate(&self, s: wit::Signal) -> Result<Signal, FieldError> {
        let limits = &self.pool.config.signal_limits;
        let size = s.name.len()
            + s.id.as_ref().map_or(0, String::len)
            + s.params.len()
            + s.payload.as_ref().map_or(0, String::len);
        if size > limits.max_message_bytes {
            return Err(FieldError::new(
                "",
                format!(
                    "signal is {size} bytes, more than the limit of {} bytes",
                    limits.max_message_bytes
                ),
            ));
        }
        let params: serde_json::Value = serde_json::from_str(&s.params)
            .map_err(|e| FieldError::new("params", format!("not valid JSON: {e}")))?;
        let payload: Option<serde_json::Value> = match &s.payload {
            None => None,
            Some(p) => Some(
                serde_json::from_str(p)
                    .map_err(|e| FieldError::new("payload", format!("not valid JSON: {e}")))?,
            ),
        };
        let mut obj = json!({ "name": s.name, "params": params });
        if let Some(id) = s.id {
            obj["id"] = json!(id);
        }
        if let Some(p) = payload {
            obj["payload"] = p;
        }
        Signal::from_json(obj, limits)
    }
}
