//! Wasm operators: a loaded `operator` plugin as a matcher [`CustomOperator`].
//!
//! [`WasmOperator::prepare`] serializes the pattern's argument to JSON and calls
//! the guest's `condition.prepare` once to validate it; the resulting
//! [`WasmCondition`] then tests values. A prepared condition is a guest resource
//! and lives in one instance, so each pooled instance prepares a condition the
//! first time it tests it and caches it by argument (at most
//! `max_conditions_per_instance`, then that cache is cleared); an instance that
//! fails is dropped with its conditions. Every call is bounded by the operator
//! deadline (`prepare` by the prepare deadline) and counted for quarantine; a
//! failed call is an error, which the matcher counts as "does not match".

use std::fmt;
use std::sync::Arc;

use signalbox_matcher::{CustomOperator, PreparedOperator};
use signalbox_model::Value;
use wasmtime::component::ResourceAny;

use crate::bindings::operator::exports::signalbox::plugin::conditions::Value as WitValue;
use crate::bindings::operator::{Operator, OperatorPre};
use crate::error::CallError;
use crate::pool::{Pool, Slot};
use crate::quarantine::PluginStats;
use crate::state::HostState;
use crate::types::Description;

/// A loaded operator plugin; register it in an `OperatorRegistry`.
pub struct WasmOperator {
    pub(crate) inner: Arc<OperatorInner>,
}

pub(crate) struct OperatorInner {
    pub(crate) pool: Pool<OperatorPre<HostState>>,
    pub(crate) description: Description,
}

impl fmt::Debug for WasmOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmOperator")
            .field("name", &&*self.inner.pool.plugin)
            .field("description", &self.inner.description)
            .finish()
    }
}

/// A condition prepared by a Wasm operator: the argument and the plugin.
pub struct WasmCondition {
    inner: Arc<OperatorInner>,
    argument: String,
}

impl fmt::Debug for WasmCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmCondition")
            .field("operator", &&*self.inner.pool.plugin)
            .field("argument", &self.argument)
            .finish()
    }
}

/// Converts a model value to the WIT value (arrays and objects as JSON text).
fn to_wit(value: &Value) -> WitValue {
    match value {
        Value::Null => WitValue::Null,
        Value::Bool(b) => WitValue::Boolean(*b),
        Value::Int(i) => WitValue::Integer(*i),
        Value::Float(f) => WitValue::Float(*f),
        Value::String(s) => WitValue::Text(s.clone()),
        Value::Array(_) => WitValue::Array(value.to_json().to_string()),
        Value::Object(_) => WitValue::Object(value.to_json().to_string()),
    }
}

/// The condition for `argument` in this instance, preparing it on first use.
/// The inner `Err` is the guest's refusal of the argument.
fn condition_in(
    slot: &mut Slot<Operator>,
    argument: &str,
    max_cached: usize,
) -> wasmtime::Result<Result<ResourceAny, String>> {
    if let Some(r) = slot.conditions.get(argument) {
        return Ok(Ok(*r));
    }
    if slot.conditions.len() >= max_cached {
        for (_, r) in slot.conditions.drain() {
            r.resource_drop(&mut slot.store)?;
        }
    }
    let prepared = slot
        .bindings
        .signalbox_plugin_conditions()
        .condition()
        .call_prepare(&mut slot.store, argument)?;
    if let Ok(r) = &prepared {
        slot.conditions.insert(argument.to_string(), *r);
    }
    Ok(prepared)
}

impl WasmOperator {
    /// The plugin's name (the key used in patterns).
    pub fn name(&self) -> &str {
        &self.inner.pool.plugin
    }

    /// What the plugin said about itself when it was loaded.
    pub fn description(&self) -> &Description {
        &self.inner.description
    }

    /// The plugin's call counters and quarantine state.
    pub fn stats(&self) -> PluginStats {
        self.inner.pool.health.stats()
    }

    /// Lifts a quarantine and drops the idle instances.
    pub fn reset_quarantine(&self) {
        self.inner.pool.clear();
        self.inner.pool.health.reset();
    }

    /// Prepares a condition from its JSON argument: `Ok(Err(_))` is the
    /// plugin's refusal of the argument, `Err(_)` a failed call.
    pub fn prepare_condition(
        &self,
        argument: &serde_json::Value,
    ) -> Result<Result<WasmCondition, String>, CallError> {
        let argument = argument.to_string();
        let max = self.inner.pool.config.max_conditions_per_instance;
        let deadline = self.inner.pool.config.prepare_deadline;
        let verdict = self
            .inner
            .pool
            .call(deadline, |slot| condition_in(slot, &argument, max))?;
        Ok(verdict.map(|_| WasmCondition {
            inner: self.inner.clone(),
            argument,
        }))
    }
}

impl WasmCondition {
    /// Tests one value: `Ok(Err(_))` is the plugin's own error for this value,
    /// `Err(_)` a failed call.
    pub fn test_value(&self, value: &Value) -> Result<Result<bool, String>, CallError> {
        let wit = to_wit(value);
        let pool = &self.inner.pool;
        let max = pool.config.max_conditions_per_instance;
        pool.call(pool.config.operator_deadline, |slot| {
            let condition = match condition_in(slot, &self.argument, max)? {
                Ok(c) => c,
                Err(e) => return Ok(Err(format!("the argument no longer prepares: {e}"))),
            };
            slot.bindings
                .signalbox_plugin_conditions()
                .condition()
                .call_test(&mut slot.store, condition, &wit)
        })
    }
}

impl CustomOperator for WasmOperator {
    fn name(&self) -> &str {
        &self.inner.pool.plugin
    }

    fn prepare(&self, arg: &serde_json::Value) -> Result<Box<dyn PreparedOperator>, String> {
        match self.prepare_condition(arg) {
            Ok(Ok(c)) => Ok(Box::new(c)),
            Ok(Err(refusal)) => Err(refusal),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl PreparedOperator for WasmCondition {
    fn test(&self, value: &Value) -> Result<bool, String> {
        match self.test_value(value) {
            Ok(verdict) => verdict,
            Err(e) => Err(e.to_string()),
        }
    }
}
