//! The live set of subscriptions, compiled for matching, and the planning of
//! firings for one stored signal instance.
//!
//! The catalog keeps one matcher [`Engine`] per signal name, so a signal is only
//! matched against subscriptions that name it. Subscriptions are compiled when
//! they are added (pattern and templates); a subscription that does not compile is
//! rejected then, with the error naming the field, and never reaches the engine.
//! Readers ([`Catalog::plan`]) take a read lock on the name map only long enough to
//! clone an `Arc` to the engine; the engine itself never blocks readers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use signalbox_matcher::{Engine, Explanation, OperatorRegistry, Pattern};
use signalbox_model::{
    Binding, FieldError, Firing, SignalInstance, SignalRef, Subscription, Template,
    dedup_firing_id, firing_id,
};

/// A subscription compiled for matching.
#[derive(Debug)]
pub struct Compiled {
    /// The subscription as stored.
    pub subscription: Subscription,
    /// The compiled pattern of its (single) signal.
    pub pattern: Pattern,
    params: Vec<(String, Template)>,
    dedup: Option<Template>,
}

/// Subscriptions by id, and an engine per signal name.
#[derive(Default)]
pub struct Catalog {
    operators: OperatorRegistry,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    subs: BTreeMap<String, Arc<Compiled>>,
    engines: HashMap<String, Arc<Engine>>,
}

/// What matching one instance produced.
#[derive(Debug, Default)]
pub struct Plan {
    /// Ids of the subscriptions that matched.
    pub matched: Vec<String>,
    /// One firing per matched subscription.
    pub firings: Vec<Firing>,
}

impl Catalog {
    /// An empty catalog with the given custom operators.
    pub fn new(operators: OperatorRegistry) -> Catalog {
        Catalog {
            operators,
            inner: RwLock::default(),
        }
    }

    /// Compiles a subscription without adding it: the check run before storing.
    pub fn compile(&self, sub: &Subscription) -> Result<Compiled, FieldError> {
        compile(sub, &self.operators)
    }

    /// Adds (or replaces) a compiled subscription.
    pub fn insert(&self, compiled: Compiled) {
        let compiled = Arc::new(compiled);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = inner.subs.remove(&compiled.subscription.id) {
            remove_from_engines(&mut inner, &old);
        }
        let name = compiled.subscription.signals[0].name.clone();
        let engine = inner
            .engines
            .entry(name)
            .or_insert_with(|| Arc::new(Engine::new()))
            .clone();
        engine.add(&compiled.subscription.id, compiled.pattern.clone());
        inner
            .subs
            .insert(compiled.subscription.id.clone(), compiled);
    }

    /// Removes a subscription; false if it was not there.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match inner.subs.remove(id) {
            Some(old) => {
                remove_from_engines(&mut inner, &old);
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
        self.inner.read().unwrap_or_else(|e| e.into_inner()).subs.len()
    }

    /// True when no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Matches one stored instance and builds its firings.
    pub fn plan(&self, instance: &SignalInstance, now_ms: i64) -> Plan {
        let engine = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            match inner.engines.get(&instance.signal.name) {
                Some(engine) => engine.clone(),
                None => return Plan::default(),
            }
        };
        let ids = engine.matches(&instance.signal.params);
        let mut plan = Plan::default();
        if ids.is_empty() {
            return plan;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            // A subscription removed between matching and here is simply skipped.
            let Some(compiled) = inner.subs.get(&id) else {
                continue;
            };
            plan.firings.push(compiled.firing(instance, now_ms));
            plan.matched.push(id);
        }
        plan
    }

    /// Explains, condition by condition, why `instance` does or does not match `id`.
    pub fn explain(&self, id: &str, instance: &SignalInstance) -> Option<Explanation> {
        let compiled = self.get(id)?;
        let engine = Engine::new();
        engine.add(id, compiled.pattern.clone());
        engine.explain(id, &instance.signal.params)
    }
}

impl Compiled {
    /// Builds the firing of this subscription for one matched instance.
    pub fn firing(&self, instance: &SignalInstance, now_ms: i64) -> Firing {
        let sub = &self.subscription;
        let spec = &sub.signals[0];
        let bindings = [Binding {
            alias: &spec.alias,
            instance,
        }];
        let signals = vec![SignalRef {
            alias: spec.alias.clone(),
            name: instance.signal.name.clone(),
            id: instance.id.clone(),
            seq: instance.seq,
        }];
        let id = match &self.dedup {
            Some(t) => dedup_firing_id(&sub.id, &t.render(&bindings).render()),
            None => firing_id(&sub.id, sub.version, &signals),
        };
        let params = self
            .params
            .iter()
            .map(|(k, t)| (k.clone(), t.render(&bindings)))
            .collect();
        let mut payloads = serde_json::Map::new();
        if let Some(p) = &instance.signal.payload {
            payloads.insert(spec.alias.clone(), p.clone());
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
        }
    }
}

fn remove_from_engines(inner: &mut Inner, old: &Compiled) {
    let name = &old.subscription.signals[0].name;
    if let Some(engine) = inner.engines.get(name) {
        engine.remove(&old.subscription.id);
        if engine.is_empty() {
            inner.engines.remove(name);
        }
    }
}

fn compile(sub: &Subscription, operators: &OperatorRegistry) -> Result<Compiled, FieldError> {
    if sub.signals.len() != 1 {
        return Err(FieldError::new(
            "signals",
            "joins of several signals are not supported by this router version yet; name one signal",
        ));
    }
    let spec = &sub.signals[0];
    let has_where = spec.pattern.as_object().is_some_and(|o| !o.is_empty());
    let pattern = match (&spec.match_params, has_where) {
        (Some(_), true) => {
            return Err(FieldError::new(
                "match_params",
                "give either `where` or `match_params`, not both",
            ));
        }
        (Some(mp), false) => Pattern::from_match_params(mp)
            .map_err(|e| FieldError::new(prefixed("match_params", &e.path), e.problem))?,
        (None, _) => Pattern::parse(&spec.pattern, operators)
            .map_err(|e| FieldError::new(prefixed("where", &e.path), e.problem))?,
    };
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
        pattern,
        params,
        dedup,
    })
}

fn prefixed(root: &str, path: &str) -> String {
    if path.is_empty() {
        root.to_string()
    } else {
        format!("{root}.{path}")
    }
}
