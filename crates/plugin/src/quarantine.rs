//! Per-plugin health: call counters and the quarantine switch.
//!
//! Every call that fails in the plugin itself (timeout, out of memory, trap)
//! adds to the consecutive-failure count; a successful call resets it. When it
//! reaches `quarantine_after`, the plugin is quarantined: every call fails fast
//! with [`CallError::Quarantined`] without touching the plugin, and an error is
//! logged once. Only the plugin's `reset_quarantine` (or loading it again)
//! lifts it.
//! Errors the plugin returns as values (`test` → `err`, `decode` → `reject`) are
//! answers, not failures, and do not count.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::error::CallError;

/// A snapshot of a plugin's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// Calls attempted (including those that failed fast).
    pub calls: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls that ran out of memory.
    pub out_of_memory: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls refused because the plugin is quarantined.
    pub refused: u64,
    /// Times the plugin was put in quarantine (a reset and a new run of
    /// failures counts again).
    pub quarantines: u64,
    /// Instances created so far (reuse keeps this low; a failed call's
    /// instance is replaced, so each failure adds one).
    pub instances_created: u64,
    /// Failed calls in a row, right now.
    pub consecutive_failures: u32,
    /// Whether the plugin is quarantined.
    pub quarantined: bool,
}

/// The live counters of one plugin.
#[derive(Debug)]
pub(crate) struct Health {
    plugin: String,
    threshold: u32,
    calls: AtomicU64,
    timeouts: AtomicU64,
    out_of_memory: AtomicU64,
    traps: AtomicU64,
    refused: AtomicU64,
    quarantines: AtomicU64,
    instances: AtomicU64,
    consecutive: AtomicU32,
    quarantined: AtomicBool,
}

impl Health {
    pub(crate) fn new(plugin: &str, threshold: u32) -> Health {
        Health {
            plugin: plugin.to_string(),
            threshold: threshold.max(1),
            calls: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            out_of_memory: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            quarantines: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
        }
    }

    /// Counts a call; fails fast if the plugin is quarantined.
    pub(crate) fn begin(&self) -> Result<(), CallError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.quarantined.load(Ordering::Acquire) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(CallError::Quarantined {
                plugin: self.plugin.clone(),
                failures: self.consecutive.load(Ordering::Relaxed),
            });
        }
        Ok(())
    }

    /// Counts a newly created instance.
    pub(crate) fn instance_created(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn success(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// Records a failed call; quarantines the plugin at the threshold.
    pub(crate) fn failure(&self, error: &CallError) {
        let counter = match error {
            CallError::Timeout { .. } => &self.timeouts,
            CallError::OutOfMemory { .. } => &self.out_of_memory,
            CallError::Trap { .. } => &self.traps,
            // Not the plugin's fault (pool exhausted) or already counted.
            CallError::Quarantined { .. } | CallError::Instantiate { .. } => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let n = self
            .consecutive
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        tracing::warn!(plugin = %self.plugin, kind = error.kind(), consecutive = n, "plugin call failed: {error}");
        if n >= self.threshold && !self.quarantined.swap(true, Ordering::AcqRel) {
            self.quarantines.fetch_add(1, Ordering::Relaxed);
            tracing::error!(plugin = %self.plugin, failures = n, "plugin quarantined after {n} consecutive failed calls");
        }
    }

    /// Lifts the quarantine and clears the consecutive count.
    pub(crate) fn reset(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
        self.quarantined.store(false, Ordering::Release);
    }

    pub(crate) fn stats(&self) -> PluginStats {
        PluginStats {
            calls: self.calls.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            out_of_memory: self.out_of_memory.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            quarantines: self.quarantines.load(Ordering::Relaxed),
            instances_created: self.instances.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            quarantined: self.quarantined.load(Ordering::Acquire),
        }
    }
}
