//! Compiling a subscription or a wait for matching — each signal's pattern
//! (the `where` form or Maestro's `match_params`), the `params` and `dedup`
//! templates — and building the firing a compiled subscription makes for its
//! matched instances. A subscription that does not compile is rejected with an
//! error naming the field as written (`where` for one signal,
//! `signals[i].where` for several) and never reaches an engine.

use signalbox_matcher::{OperatorRegistry, Pattern};
use signalbox_model::{
    Binding, FieldError, Firing, SignalInstance, SignalRef, SignalSpec, Subscription, Template,
    WaitRecord, dedup_firing_id, firing_id,
};

/// A subscription compiled for matching.
#[derive(Debug)]
pub struct Compiled {
    /// The subscription as stored.
    pub subscription: Subscription,
    /// The compiled pattern of each of its signals, in `signals` order.
    pub patterns: Vec<Pattern>,
    pub(super) aliases: Vec<String>,
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
    /// Group mode: the aliases whose signals live in other partitions than
    /// the wait's; they are watched there (`remote.rs`), not matched here.
    pub remote_sides: std::collections::BTreeSet<String>,
}

impl CompiledWait {
    /// Whether side `alias` is matched in this partition.
    pub fn local(&self, alias: &str) -> bool {
        !self.remote_sides.contains(alias)
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
            .map(|(alias, instance)| SignalRef::of(alias, instance, sub.carry))
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
        Firing {
            firing_id: id,
            subscription: sub.id.clone(),
            version: sub.version,
            action: sub.action.kind,
            subject: sub.action.subject.clone(),
            params,
            signals,
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

pub(super) fn compile(
    sub: &Subscription,
    operators: &OperatorRegistry,
) -> Result<Compiled, FieldError> {
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
pub fn compile_patterns(
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
