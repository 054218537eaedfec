//! Planning the firings of one stored instance, inside the store's ingest
//! transaction: the instance's engine returns the entries it matches; a
//! single-signal subscription fires at once, a join side offers the instance
//! through the store's [`PlanContext`] and fires when the join completes, a
//! wait side answers the wait. Also `explain`: which conditions of one side of
//! a subscription an instance passes.

use std::sync::Arc;

use signalbox_matcher::{Engine, Explanation};
use signalbox_model::{Carry, Firing, SignalInstance, SignalRef, WaitState};
use signalbox_store::{JoinOffer, PlanContext};

use super::compile::{Compiled, CompiledWait};
use super::remote::{offer_firing, parse_watch_id, wait_offer_firing};
use super::subscriptions::Catalog;

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

impl Catalog {
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
        let route = self
            .group_route
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (wait, alias) in waits {
            // A watch (group mode) sends the match to its wait's partition.
            if let (Some(route), Some((w, id))) =
                (route.as_ref(), parse_watch_id(&wait.record.wait.id))
            {
                plan.firings
                    .push(wait_offer_firing(route, id, w, &alias, instance, now_ms));
                continue;
            }
            if let Some(answer) = self.offer_to_wait(&wait, &alias, instance, joins, false, now_ms)
            {
                plan.settled_waits.push(wait.record.wait.id.clone());
                plan.firings.push(answer);
                if let Some(route) = route.as_ref() {
                    plan.firings
                        .extend(route.unwatches(&wait.record.wait, now_ms));
                }
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
                    if let Some(route) = route.as_ref() {
                        plan.firings
                            .push(offer_firing(route, sub, &alias, &key, instance, now_ms));
                        continue;
                    }
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
    /// `carried`: the instance is stored in another partition (a wait offer
    /// in group mode): the join keeps it, and takes it at most once.
    pub fn offer_to_wait(
        &self,
        wait: &CompiledWait,
        alias: &str,
        instance: &SignalInstance,
        joins: &mut PlanContext<'_, '_>,
        carried: bool,
        now_ms: i64,
    ) -> Option<Firing> {
        let id = &wait.record.wait.id;
        let complete: Vec<(String, SignalInstance)> = match &wait.record.wait.join {
            None => vec![(alias.to_string(), instance.clone())],
            Some(join) => {
                let key = join.key_for(alias, &instance.signal.params)?;
                let owner = format!("@{id}");
                let offer = JoinOffer {
                    subscription: &owner,
                    version: 0,
                    key: &key,
                    alias,
                    aliases: &wait.aliases,
                    within_ms: None,
                };
                if carried {
                    joins.offer_carried(offer, instance)?
                } else {
                    joins.offer(offer, instance)?
                }
            }
        };
        let refs: Vec<SignalRef> = complete
            .iter()
            .map(|(a, i)| SignalRef::of(a, i, Carry::Refs))
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
        Some(record.answer(self.wait_prefix(), &matched, now_ms))
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

impl Catalog {
    /// Group mode, in the join's partition: takes the join offers `offers`
    /// (in input order) and returns the firings of the joins they complete.
    /// An offer for another version than the live one is dropped: partial
    /// state is never mixed across versions.
    pub fn plan_offers(
        &self,
        offers: &[super::remote::RemoteOffer],
        joins: &mut PlanContext<'_, '_>,
        now_ms: i64,
    ) -> Vec<Firing> {
        let mut firings = Vec::new();
        for o in offers {
            let Some(compiled) = self.get(&o.subscription) else {
                continue;
            };
            let sub = &compiled.subscription;
            let Some(join) = &sub.join else {
                continue;
            };
            if sub.version != o.version {
                tracing::debug!(subscription = %sub.id, offered = o.version, live = sub.version, "join offer of another version dropped");
                continue;
            }
            let offer = JoinOffer {
                subscription: &sub.id,
                version: sub.version,
                key: &o.key,
                alias: &o.alias,
                aliases: &compiled.aliases,
                within_ms: join.within_ms,
            };
            if let Some(complete) = joins.offer_carried(offer, &o.instance) {
                let bindings: Vec<(&str, &SignalInstance)> =
                    complete.iter().map(|(a, i)| (a.as_str(), i)).collect();
                firings.push(compiled.firing(&bindings, now_ms));
            }
        }
        firings
    }
}
