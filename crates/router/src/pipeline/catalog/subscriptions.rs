//! The catalog itself: live subscriptions by id and one matcher engine per
//! signal name, where each signal of a subscription is an entry
//! `<subscription>#<alias>` (a self-join has two). Adding a new version
//! replaces the entries the old one shared with it in place (one engine write
//! each) and removes the rest. Readers take the read lock on the name map
//! only long enough to clone an `Arc` to an engine; engines never block readers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use signalbox_matcher::{Engine, OperatorRegistry};
use signalbox_model::{FieldError, Subscription};

use super::compile::{self, Compiled, CompiledWait};

/// Subscriptions and live waits by id, and an engine per signal name.
#[derive(Default)]
pub struct Catalog {
    pub(super) operators: RwLock<OperatorRegistry>,
    wait_prefix: String,
    pub(super) inner: RwLock<Inner>,
    /// Group mode: where join offers go (`remote.rs`); none alone.
    pub(super) group_route: RwLock<Option<Arc<super::remote::GroupRoute>>>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) subs: BTreeMap<String, Arc<Compiled>>,
    pub(super) waits: BTreeMap<String, Arc<CompiledWait>>,
    pub(super) engines: HashMap<String, Arc<Engine>>,
}

/// The engine entry id of one signal of a subscription.
pub(super) fn entry_id(subscription: &str, alias: &str) -> String {
    format!("{subscription}#{alias}")
}

/// The engine entry id of one signal of a wait (`@` never starts a subscription id).
pub(super) fn wait_entry_id(wait: &str, alias: &str) -> String {
    format!("@{wait}#{alias}")
}

impl Catalog {
    /// An empty catalog with the given custom operators; wait answers go to
    /// `<wait_prefix>.<wait id>`.
    pub fn new(operators: OperatorRegistry, wait_prefix: &str) -> Catalog {
        Catalog {
            operators: RwLock::new(operators),
            wait_prefix: wait_prefix.to_string(),
            inner: RwLock::default(),
            group_route: RwLock::new(None),
        }
    }

    /// Group mode: where join offers and wait watches go (`remote.rs`).
    pub fn group_route(&self) -> Option<Arc<super::remote::GroupRoute>> {
        self.group_route
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Group mode: join sides go to their join's partition (`remote.rs`).
    pub fn set_group_route(&self, route: super::remote::GroupRoute) {
        *self.group_route.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(route));
    }

    /// Where wait answers are published.
    pub fn wait_prefix(&self) -> &str {
        &self.wait_prefix
    }

    /// Compiles a subscription without adding it: the check run before storing.
    pub fn compile(&self, sub: &Subscription) -> Result<Compiled, FieldError> {
        compile::compile(sub, &self.operators())
    }

    /// Adds (or replaces) a compiled subscription.
    pub fn insert(&self, compiled: Compiled) {
        let compiled = Arc::new(compiled);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.subs.remove(&compiled.subscription.id) {
            // Entries the new version also has are replaced below, not removed.
            let keep: BTreeSet<(String, String)> = compiled
                .subscription
                .signals
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        entry_id(&compiled.subscription.id, &s.alias),
                    )
                })
                .collect();
            remove_from_engines(&mut inner, &old, &keep);
        }
        for (spec, pattern) in compiled.subscription.signals.iter().zip(&compiled.patterns) {
            let engine = inner
                .engines
                .entry(spec.name.clone())
                .or_insert_with(|| Arc::new(Engine::new()))
                .clone();
            engine.add(
                &entry_id(&compiled.subscription.id, &spec.alias),
                pattern.clone(),
            );
        }
        inner
            .subs
            .insert(compiled.subscription.id.clone(), compiled);
    }

    /// Removes a subscription; false if it was not there.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match inner.subs.remove(id) {
            Some(old) => {
                remove_from_engines(&mut inner, &old, &BTreeSet::new());
                true
            }
            None => false,
        }
    }

    /// The compiled subscription with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Compiled>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.subs.get(id).cloned()
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .subs
            .len()
    }

    /// True when no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes `old`'s engine entries except those in `keep` (`(signal name, entry id)`).
fn remove_from_engines(inner: &mut Inner, old: &Compiled, keep: &BTreeSet<(String, String)>) {
    let entries = old.subscription.signals.iter().map(|spec| {
        (
            spec.name.clone(),
            entry_id(&old.subscription.id, &spec.alias),
        )
    });
    remove_entries(inner, entries, keep);
}

/// Removes the engine entries `(signal name, entry id)` not in `keep`, and an
/// engine left empty (subscriptions and waits alike).
pub(super) fn remove_entries(
    inner: &mut Inner,
    entries: impl Iterator<Item = (String, String)>,
    keep: &BTreeSet<(String, String)>,
) {
    for (name, entry) in entries {
        if keep.contains(&(name.clone(), entry.clone())) {
            continue;
        }
        if let Some(engine) = inner.engines.get(&name).cloned() {
            engine.remove(&entry);
            if engine.is_empty() {
                inner.engines.remove(&name);
            }
        }
    }
}
