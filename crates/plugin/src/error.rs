//! The errors of the plugin host, one type per kind of operation.
//!
//! [`CallError`] is what one call into a plugin can fail with (timeout, out of
//! memory, trap, quarantine, instantiation); it never means the host is broken,
//! only that this call failed. [`LoadError`] explains why a component was refused,
//! and [`DecodeError`] is what an adapter's decode returns: the adapter's own
//! reject/retry verdict, a signal the model refused, or a failed call.

use signalbox_model::FieldError;

/// Why one call into a plugin failed. Every variant names the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its epoch deadline and was interrupted.
    #[error(
        "plugin {plugin}: the call ran longer than its deadline of {deadline_ms} ms and was stopped"
    )]
    Timeout {
        /// The plugin's name.
        plugin: String,
        /// The deadline, in milliseconds.
        deadline_ms: u64,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("plugin {plugin}: out of memory (the limit is {limit_bytes} bytes per instance)")]
    OutOfMemory {
        /// The plugin's name.
        plugin: String,
        /// The memory limit of one instance, in bytes.
        limit_bytes: usize,
    },
    /// The plugin trapped (panic, `unreachable`, out-of-bounds access …).
    #[error("plugin {plugin}: trapped: {message}")]
    Trap {
        /// The plugin's name.
        plugin: String,
        /// What wasmtime reported.
        message: String,
    },
    /// The plugin failed too many calls in a row; calls fail fast until it is
    /// reset or replaced.
    #[error("plugin {plugin} is quarantined after {failures} consecutive failed calls")]
    Quarantined {
        /// The plugin's name.
        plugin: String,
        /// How many calls failed in a row.
        failures: u32,
    },
    /// A fresh instance could not be created (the pooling allocator is full,
    /// or the component's start-up failed).
    #[error("plugin {plugin}: could not create an instance: {message}")]
    Instantiate {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

impl CallError {
    /// A short word for metrics and logs: `timeout`, `oom`, `trap`,
    /// `quarantined` or `instantiate`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout { .. } => "timeout",
            CallError::OutOfMemory { .. } => "oom",
            CallError::Trap { .. } => "trap",
            CallError::Quarantined { .. } => "quarantined",
            CallError::Instantiate { .. } => "instantiate",
        }
    }
}

/// Why a component could not be loaded as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The host itself could not be set up (engine configuration).
    #[error("plugin host: {0}")]
    Host(String),
    /// The plugin name is empty or has characters outside `[A-Za-z0-9_.-]`.
    #[error("plugin name {0:?} is not valid: use 1-64 characters of A-Z a-z 0-9 _ . -")]
    InvalidName(String),
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin {name}: not a valid WebAssembly component: {message}")]
    Compile {
        /// The plugin's name.
        name: String,
        /// The compiler's message.
        message: String,
    },
    /// The component exports neither the `operator` nor the `source-adapter`
    /// world of `signalbox:plugin@0.1.0`.
    #[error(
        "plugin {name}: exports neither world signalbox:plugin/operator@0.1.0 nor signalbox:plugin/source-adapter@0.1.0 (it exports: {})",
        exports.join(", ")
    )]
    WrongWorld {
        /// The plugin's name.
        name: String,
        /// What the component exports instead.
        exports: Vec<String>,
    },
    /// The component imports something the host does not provide, or its
    /// exports do not have the types of the world.
    #[error("plugin {name}: does not fit world {world}: {message}")]
    Link {
        /// The plugin's name.
        name: String,
        /// The world it claims to export.
        world: &'static str,
        /// Wasmtime's explanation (names the missing import or mismatched export).
        message: String,
    },
    /// Instantiating the plugin or calling its `describe` failed.
    #[error("plugin {name}: describe failed: {source}")]
    Describe {
        /// The plugin's name.
        name: String,
        /// The failed call.
        source: CallError,
    },
}

/// Why an adapter's decode produced no signals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The adapter rejected the message: bad input, dead-letter it (HTTP 4xx).
    #[error("rejected by the adapter: {0}")]
    Reject(String),
    /// The adapter asked for a retry: a temporary failure (HTTP 5xx).
    #[error("the adapter asks for a retry: {0}")]
    Retry(String),
    /// The adapter returned more signals than the host accepts from one message.
    #[error("plugin {plugin}: returned {count} signals, more than the limit of {max}")]
    TooManySignals {
        /// The plugin's name.
        plugin: String,
        /// How many it returned.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A returned signal failed validation; `index` is its position in the list.
    #[error("plugin {plugin}: signal {index} is not valid: {error}")]
    InvalidSignal {
        /// The plugin's name.
        plugin: String,
        /// Position of the bad signal in the returned list.
        index: usize,
        /// The model's verdict (field and rule).
        error: FieldError,
    },
    /// The call itself failed (timeout, trap, out of memory, quarantine).
    #[error(transparent)]
    Call(#[from] CallError),
}

impl DecodeError {
    /// Whether the message may succeed when delivered again: the adapter's own
    /// retry, and failed calls (the plugin may be fixed or redeployed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DecodeError::Retry(_) | DecodeError::Call(_))
    }
}
