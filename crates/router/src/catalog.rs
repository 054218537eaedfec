//! The live set of subscriptions, compiled for matching, and the planning of
//! firings for one stored signal instance (single signals and joins).
//!
//! The catalog keeps one matcher [`Engine`] per signal name. Each signal of a
//! subscription is an engine entry with id `<subscription>#<alias>`, so a
//! self-join (two aliases of one signal name) has two entries. Subscriptions are
//! compiled when they are added (patterns and templates); one that does not
//! compile is rejected then, with the error naming the field, and never reaches
//! an engine. [`Catalog::plan`] runs inside the store's ingest transaction: a
//! single-signal match fires at once; a join side records an offer through the
//! store's [`PlanContext`] and fires when the join completes.
//!
//! Readers take a read lock on the name map only long enough to clone an `Arc`
//! to the engine; the engines themselves never block readers.
//!
//! Custom operators can change while the router runs (a plugin deploy or
//! rollback): [`Catalog::reprepare`] recompiles every subscription and wait that
//! uses the operator against the new registry and swaps each one in place. The
//! swap replaces engine entries with one engine write each (never a remove then
//! an add), so a signal matched meanwhile sees the old or the new pattern, never
//! neither. One that no longer compiles keeps running on the version it was
//! prepared with and is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use signalbox_matcher::{CustomOperator, Engine, Explanation, OperatorRegistry, Pattern};
use signalbox_model::{
    Binding, FieldError, Firing, SignalInstance, SignalRef, SignalSpec, Subscription, Template,
    WaitRecord, WaitState, dedup_firing_id, firing_id,
};
use signalbox_store::{JoinOffer, PlanContext};

/// A subscription compiled for matching.
#[derive(Debug)]
pub struct Compiled {
    /// The subscription as stored.
    pub subscription: Subscription,
    /// The compiled pattern of each of its signals, in `signals` order.
    pub patterns: Vec<Pattern>,
    aliases: Vec<String>,
    params: Vec<(String, Template)>,
    dedup: Option<Template>,
}

/// A live wait compiled for matching.
#[derive(Debug)]
pub struct CompiledWait {
    /// The wait as stored.
    pub record: WaitRecord,
    /// The compiled pattern of each of its signals, in `signals` order.
    pub patterns: Vec<Pattern>,
    /// Its aliases, in `signals` order.
    pub aliases: Vec<String>,
}

/// Subscriptions and live waits by id, and an engine per signal name.
#[derive(Default)]
pub struct Catalog {
    operators: RwLock<OperatorRegistry>,
    wait_prefix: String,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    subs: BTreeMap<String, Arc<Compiled>>,
    waits: BTreeMap<String, Arc<CompiledWait>>,
    engines: HashMap<String, Arc<Engine>>,
}

/// What [`Catalog::reprepare`] did.
#[derive(Debug, Default)]
pub struct Reprepared {
    /// Subscriptions (and `wait:<id>` waits) now prepared with the new operator.
    pub reprepared: Vec<String>,
    /// Those that no longer compile, with why; they keep their old preparation.
    pub failed: Vec<(String, FieldError)>,
}

/// What matching one instance produced.
#[derive(Debug, Default)]
pub struct Plan {
    /// Ids of the subscriptions that matched (a join side counts).
    pub matched: Vec<String>,
    /// The firings: one per single-signal match, one per completed join, one
    /// answer per wait satisfied.
    pub firings: Vec<Firing>,
    /// Waits this instance satisfied (to be dropped from the catalog after commit).
    pub settled_waits: Vec<String>,
}

/// The engine entry id of one signal of a subscription.
fn entry_id(subscription: &str, alias: &str) -> String {
    format!("{subscription}#{alias}")
}

/// The engine entry id of one signal of a wait (`@` never starts a subscription id).
fn wait_entry_id(wait: &str, alias: &str) -> String {
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
        }
    }

    /// Where wait answers are published.
    pub fn wait_prefix(&self) -> &str {
        &self.wait_prefix
    }

    /// Compiles a wait's patterns (the check run before storing it).
    pub fn compile_wait(&self, record: &WaitRecord) -> Result<CompiledWait, FieldError> {
        Ok(CompiledWait {
            patterns: compile_patterns(&record.wait.signals, &self.operators())?,
            aliases: record
                .wait
                .signals
                .iter()
                .map(|s| s.alias.clone())
                .collect(),
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

    /// Compiles a subscription without adding it: the check run before storing.
    pub fn compile(&self, sub: &Subscription) -> Result<Compiled, FieldError> {
        compile(sub, &self.operators())
    }

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

    /// Matches one stored instance and builds its firings; join sides go
    /// through `joins` (the open ingest transaction).
    pub fn plan(
        &self,
        instance: &SignalInstance,
        joins: &mut PlanContext<'_, '_>,
        now_ms: i64,
    ) -> Plan {
        let engine = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            match inner.engines.get(&instance.signal.name) {
                Some(engine) => engine.clone(),
                None => return Plan::default(),
            }
        };
        let ids = engine.matches_shared(&instance.signal.params);
        let mut plan = Plan::default();
        if ids.is_empty() {
            return plan;
        }
        let (subs, waits) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let mut subs: Vec<(Arc<Compiled>, String)> = Vec::new();
            let mut waits: Vec<(Arc<CompiledWait>, String)> = Vec::new();
            for entry in &ids {
                let Some((owner, alias)) = entry.split_once('#') else {
                    continue;
                };
                // Anything removed between matching and here is skipped.
                if let Some(wait) = owner.strip_prefix('@') {
                    if let Some(w) = inner.waits.get(wait) {
                        waits.push((w.clone(), alias.to_string()));
                    }
                } else if let Some(c) = inner.subs.get(owner) {
                    subs.push((c.clone(), alias.to_string()));
                }
            }
            (subs, waits)
        };
        for (wait, alias) in waits {
            if let Some(answer) = self.offer_to_wait(&wait, &alias, instance, joins, now_ms) {
                plan.settled_waits.push(wait.record.wait.id.clone());
                plan.firings.push(answer);
            }
        }
        for (compiled, alias) in subs {
            let sub = &compiled.subscription;
            if plan.matched.last() != Some(&sub.id) {
                plan.matched.push(sub.id.clone());
                joins.record_match(instance, &sub.id);
            }
            match &sub.join {
                None => plan
                    .firings
                    .push(compiled.firing(&[(alias.as_str(), instance)], now_ms)),
                Some(join) => {
                    let Some(key) = join.key_for(&alias, &instance.signal.params) else {
                        tracing::debug!(subscription = %sub.id, %alias, seq = instance.seq, "join key missing; not offered");
                        continue;
                    };
                    let offer = JoinOffer {
                        subscription: &sub.id,
                        version: sub.version,
                        key: &key,
                        alias: &alias,
                        aliases: &compiled.aliases,
                        within_ms: join.within_ms,
                    };
                    if let Some(complete) = joins.offer(offer, instance) {
                        let bindings: Vec<(&str, &SignalInstance)> =
                            complete.iter().map(|(a, i)| (a.as_str(), i)).collect();
                        plan.firings.push(compiled.firing(&bindings, now_ms));
                    }
                }
            }
        }
        plan.matched.sort();
        plan.matched.dedup();
        plan
    }

    /// Offers `instance` (which matched side `alias`) to a wait; returns the
    /// answer firing when this completes and settles the wait.
    pub fn offer_to_wait(
        &self,
        wait: &CompiledWait,
        alias: &str,
        instance: &SignalInstance,
        joins: &mut PlanContext<'_, '_>,
        now_ms: i64,
    ) -> Option<Firing> {
        let id = &wait.record.wait.id;
        let complete: Vec<(String, SignalInstance)> = match &wait.record.wait.join {
            None => vec![(alias.to_string(), instance.clone())],
            Some(join) => {
                let key = join.key_for(alias, &instance.signal.params)?;
                let owner = format!("@{id}");
                joins.offer(
                    JoinOffer {
                        subscription: &owner,
                        version: 0,
                        key: &key,
                        alias,
                        aliases: &wait.aliases,
                        within_ms: None,
                    },
                    instance,
                )?
            }
        };
        let refs: Vec<SignalRef> = complete
            .iter()
            .map(|(a, i)| SignalRef {
                alias: a.clone(),
                name: i.signal.name.clone(),
                id: i.id.clone(),
                seq: i.seq,
            })
            .collect();
        if !joins.satisfy_wait(id, &refs, now_ms) {
            return None;
        }
        let mut record = wait.record.clone();
        record.state = WaitState::Satisfied {
            at_ms: now_ms,
            signals: refs,
        };
        let matched: Vec<(&str, &SignalInstance)> =
            complete.iter().map(|(a, i)| (a.as_str(), i)).collect();
        Some(record.answer(&self.wait_prefix, &matched, now_ms))
    }

    /// Explains, condition by condition, why `instance` does or does not match
    /// the side of subscription `id` that waits for its signal name (the first
    /// such side). `None` if the subscription does not exist or has no side for
    /// that name.
    pub fn explain(&self, id: &str, instance: &SignalInstance) -> Option<(String, Explanation)> {
        let compiled = self.get(id)?;
        let (spec, pattern) = compiled
            .subscription
            .signals
            .iter()
            .zip(&compiled.patterns)
            .find(|(s, _)| s.name == instance.signal.name)?;
        let engine = Engine::new();
        engine.add(id, pattern.clone());
        let explanation = engine.explain(id, &instance.signal.params)?;
        Some((spec.alias.clone(), explanation))
    }
}

impl Compiled {
    /// Builds the firing for the matched instances, given as `(alias, instance)`
    /// in the subscription's signal order.
    pub fn firing(&self, matched: &[(&str, &SignalInstance)], now_ms: i64) -> Firing {
        let sub = &self.subscription;
        let bindings: Vec<Binding<'_>> = matched
            .iter()
            .map(|(alias, instance)| Binding { alias, instance })
            .collect();
        let signals: Vec<SignalRef> = matched
            .iter()
            .map(|(alias, instance)| SignalRef {
                alias: (*alias).to_string(),
                name: instance.signal.name.clone(),
                id: instance.id.clone(),
                seq: instance.seq,
            })
            .collect();
        let id = match &self.dedup {
            Some(t) => dedup_firing_id(&sub.id, &t.render(&bindings).render()),
            None => {
                let newest = matched
                    .iter()
                    .map(|(_, i)| i.received_at_ms)
                    .max()
                    .unwrap_or_default();
                firing_id(&sub.id, sub.version, &signals, newest)
            }
        };
        let params = self
            .params
            .iter()
            .map(|(k, t)| (k.clone(), t.render(&bindings)))
            .collect();
        let mut payloads = serde_json::Map::new();
        for (alias, instance) in matched {
            if let Some(p) = &instance.signal.payload {
                payloads.insert((*alias).to_string(), p.clone());
            }
        }
        Firing {
            firing_id: id,
            subscription: sub.id.clone(),
            version: sub.version,
            action: sub.action.kind,
            subject: sub.action.subject.clone(),
            params,
            signals,
            payloads,
            created_at_ms: now_ms,
            // The instance that completed the firing carries the trace on.
            traceparent: matched
                .last()
                .and_then(|(_, i)| i.origin.details.get(Firing::TRACEPARENT).cloned()),
        }
    }

    /// The rendered dedup value for these instances, when the subscription has one.
    pub fn dedup_value(&self, matched: &[(&str, &SignalInstance)]) -> Option<String> {
        let bindings: Vec<Binding<'_>> = matched
            .iter()
            .map(|(alias, instance)| Binding { alias, instance })
            .collect();
        self.dedup.as_ref().map(|t| t.render(&bindings).render())
    }
}

/// Removes `old`'s engine entries except those in `keep` (`(signal name, entry id)`).
fn remove_from_engines(inner: &mut Inner, old: &Compiled, keep: &BTreeSet<(String, String)>) {
    for spec in &old.subscription.signals {
        let entry = entry_id(&old.subscription.id, &spec.alias);
        if keep.contains(&(spec.name.clone(), entry.clone())) {
            continue;
        }
        if let Some(engine) = inner.engines.get(&spec.name).cloned() {
            engine.remove(&entry);
            if engine.is_empty() {
                inner.engines.remove(&spec.name);
            }
        }
    }
}

/// Removes `old`'s engine entries except those in `keep` (`(signal name, entry id)`).
fn remove_wait_entries(inner: &mut Inner, old: &CompiledWait, keep: &BTreeSet<(String, String)>) {
    for spec in &old.record.wait.signals {
        let entry = wait_entry_id(&old.record.wait.id, &spec.alias);
        if keep.contains(&(spec.name.clone(), entry.clone())) {
            continue;
        }
        if let Some(engine) = inner.engines.get(&spec.name).cloned() {
            engine.remove(&entry);
            if engine.is_empty() {
                inner.engines.remove(&spec.name);
            }
        }
    }
}

fn compile(sub: &Subscription, operators: &OperatorRegistry) -> Result<Compiled, FieldError> {
    let patterns = compile_patterns(&sub.signals, operators)?;
    let params = sub
        .params
        .iter()
        .map(|(k, text)| {
            Template::parse(text)
                .map(|t| (k.clone(), t))
                .map_err(|r| FieldError::new(format!("params.{k}"), r))
        })
        .collect::<Result<_, _>>()?;
    let dedup = sub
        .dedup
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(|r| FieldError::new("dedup", r))?;
    Ok(Compiled {
        subscription: sub.clone(),
        patterns,
        aliases: sub.signals.iter().map(|s| s.alias.clone()).collect(),
        params,
        dedup,
    })
}

/// Compiles the pattern of each signal; error paths name the field as written:
/// `where` for the one-signal shorthand, `signals[i].where` for lists.
fn compile_patterns(
    signals: &[SignalSpec],
    operators: &OperatorRegistry,
) -> Result<Vec<Pattern>, FieldError> {
    let mut patterns = Vec::with_capacity(signals.len());
    for (i, spec) in signals.iter().enumerate() {
        let base = if signals.len() == 1 {
            String::new()
        } else {
            format!("signals[{i}].")
        };
        let has_where = spec.pattern.as_object().is_some_and(|o| !o.is_empty());
        let pattern = match (&spec.match_params, has_where) {
            (Some(_), true) => {
                return Err(FieldError::new(
                    format!("{base}match_params"),
                    "give either `where` or `match_params`, not both",
                ));
            }
            (Some(mp), false) => Pattern::from_match_params(mp).map_err(|e| {
                FieldError::new(prefixed(&format!("{base}match_params"), &e.path), e.problem)
            })?,
            (None, _) => Pattern::parse(&spec.pattern, operators).map_err(|e| {
                FieldError::new(prefixed(&format!("{base}where"), &e.path), e.problem)
            })?,
        };
        patterns.push(pattern);
    }
    Ok(patterns)
}

fn prefixed(root: &str, path: &str) -> String {
    if path.is_empty() {
        root.to_string()
    } else {
        format!("{root}.{path}")
    }
}
