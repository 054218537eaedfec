//! Custom operators of the catalog: the registry subscriptions compile
//! against, and re-preparing the subscriptions and waits that use an operator
//! when a plugin deploy or rollback replaces it. The swap replaces engine
//! entries with one engine write each (never a remove then an add), so a
//! signal matched meanwhile sees the old or the new pattern, never neither;
//! one that no longer compiles keeps running on the version it was prepared
//! with and is reported.

use std::sync::Arc;

use signalbox_matcher::{CustomOperator, OperatorRegistry, Pattern};
use signalbox_model::{FieldError, Subscription, WaitRecord};

use super::subscriptions::Catalog;

/// What [`Catalog::reprepare`] did.
#[derive(Debug, Default)]
pub struct Reprepared {
    /// Subscriptions (and `wait:<id>` waits) now prepared with the new operator.
    pub reprepared: Vec<String>,
    /// Those that no longer compile, with why; they keep their old preparation.
    pub failed: Vec<(String, FieldError)>,
}

impl Catalog {
    /// The custom operators subscriptions may use now.
    pub fn operators(&self) -> OperatorRegistry {
        self.operators
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registers (or replaces) a custom operator; subscriptions already
    /// compiled keep their prepared form until [`Catalog::reprepare`].
    pub fn register_operator(&self, op: Arc<dyn CustomOperator>) -> Result<(), String> {
        self.operators
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register(op)
    }

    /// Removes a custom operator; false if it was not registered.
    pub fn unregister_operator(&self, name: &str) -> bool {
        self.operators
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .unregister(name)
    }

    /// Ids of the live subscriptions and waits whose patterns use custom
    /// operator `name` (waits as `wait:<id>`), sorted.
    pub fn operator_users(&self, name: &str) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let uses =
            |patterns: &[Pattern]| patterns.iter().any(|p| p.custom_operators().contains(name));
        let mut out: Vec<String> = inner
            .subs
            .values()
            .filter(|c| uses(&c.patterns))
            .map(|c| c.subscription.id.clone())
            .collect();
        out.extend(
            inner
                .waits
                .values()
                .filter(|w| uses(&w.patterns))
                .map(|w| format!("wait:{}", w.record.wait.id)),
        );
        out.sort();
        out
    }

    /// Recompiles every live subscription and wait that uses custom operator
    /// `name` with the operators registered now, and swaps each one in place
    /// (module docs). Returns the ids swapped and those that failed to compile
    /// (still running on their previous preparation).
    pub fn reprepare(&self, name: &str) -> Reprepared {
        let (subs, waits) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let uses =
                |patterns: &[Pattern]| patterns.iter().any(|p| p.custom_operators().contains(name));
            let subs: Vec<Subscription> = inner
                .subs
                .values()
                .filter(|c| uses(&c.patterns))
                .map(|c| c.subscription.clone())
                .collect();
            let waits: Vec<WaitRecord> = inner
                .waits
                .values()
                .filter(|w| uses(&w.patterns))
                .map(|w| w.record.clone())
                .collect();
            (subs, waits)
        };
        let mut out = Reprepared::default();
        for sub in subs {
            match self.compile(&sub) {
                Ok(compiled) => {
                    self.insert(compiled);
                    out.reprepared.push(sub.id);
                }
                Err(e) => out.failed.push((sub.id, e)),
            }
        }
        for record in waits {
            let id = format!("wait:{}", record.wait.id);
            match self.compile_wait(&record) {
                Ok(compiled) => {
                    self.insert_wait(compiled);
                    out.reprepared.push(id);
                }
                Err(e) => out.failed.push((id, e)),
            }
        }
        out
    }
}
