//! The live waits of the catalog: compiled like a subscription's signals and
//! added to the same per-name engines under entry ids `@<wait>#<alias>` (`@`
//! never starts a subscription id), so arriving signals are matched against
//! them in the same pass. A wait leaves the registry when it is answered.

use std::collections::BTreeSet;
use std::sync::Arc;

use signalbox_matcher::Engine;
use signalbox_model::{FieldError, WaitRecord};

use super::compile::{CompiledWait, compile_patterns};
use super::subscriptions::{Catalog, Inner, remove_entries, wait_entry_id};

impl Catalog {
    /// Compiles a wait's patterns (the check run before storing it).
    pub fn compile_wait(&self, record: &WaitRecord) -> Result<CompiledWait, FieldError> {
        let remote_sides = match self.group_route() {
            Some(route) => route.remote_sides(&record.wait),
            None => Default::default(),
        };
        Ok(CompiledWait {
            patterns: compile_patterns(&record.wait.signals, &self.operators())?,
            aliases: record
                .wait
                .signals
                .iter()
                .map(|s| s.alias.clone())
                .collect(),
            remote_sides,
            record: record.clone(),
        })
    }

    /// Makes a wait live: arriving signals are matched against it.
    pub fn insert_wait(&self, compiled: CompiledWait) {
        let compiled = Arc::new(compiled);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let id = compiled.record.wait.id.clone();
        if let Some(old) = inner.waits.remove(&id) {
            // Entries the new version also has are replaced below, not removed.
            let keep: BTreeSet<(String, String)> = compiled
                .record
                .wait
                .signals
                .iter()
                .map(|s| (s.name.clone(), wait_entry_id(&id, &s.alias)))
                .collect();
            remove_wait_entries(&mut inner, &old, &keep);
        }
        for (spec, pattern) in compiled.record.wait.signals.iter().zip(&compiled.patterns) {
            if !compiled.local(&spec.alias) {
                continue;
            }
            let engine = inner
                .engines
                .entry(spec.name.clone())
                .or_insert_with(|| Arc::new(Engine::new()))
                .clone();
            engine.add(&wait_entry_id(&id, &spec.alias), pattern.clone());
        }
        inner.waits.insert(id, compiled);
    }

    /// Drops a wait from matching (it was answered).
    pub fn remove_wait(&self, id: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.waits.remove(id) {
            remove_wait_entries(&mut inner, &old, &BTreeSet::new());
        }
    }

    /// The live wait with this id.
    pub fn get_wait(&self, id: &str) -> Option<Arc<CompiledWait>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.waits.get(id).cloned()
    }

    /// Ids of live waits whose deadline is at or before `now_ms`.
    pub fn waits_due(&self, now_ms: i64) -> Vec<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .waits
            .values()
            .filter(|w| w.record.deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|w| w.record.wait.id.clone())
            .collect()
    }
}

/// Removes `old`'s engine entries except those in `keep` (`(signal name, entry id)`).
fn remove_wait_entries(inner: &mut Inner, old: &CompiledWait, keep: &BTreeSet<(String, String)>) {
    let entries = old.record.wait.signals.iter().map(|spec| {
        (
            spec.name.clone(),
            wait_entry_id(&old.record.wait.id, &spec.alias),
        )
    });
    remove_entries(inner, entries, keep);
}
