//! Group mode: a join's state lives in the join's partition — chosen by
//! subscription and join key (`group::hash::join_partition`), as Kafka
//! Streams co-partitions by repartitioning — while each side's instance is
//! stored in its name's partition. So when an instance matches a join side,
//! its partition does not offer it locally: it sends an offer to the join
//! partition, through its outbox, as an internal firing on
//! `sbx.<group>.in.<q>._offer` (delivered exactly once into the input stream
//! by its deterministic id, after the commit that matched it). The join
//! partition takes the offers in its input's order, keeps each instance in
//! the offer, and fires when the join completes: the "earliest unconsumed
//! instance" rule holds over the offers in that order.
//!
//! The carrier is a [`Firing`] whose `signals[0]` is the instance (params
//! and payload) and whose `params` hold the join key, the instance's receive
//! time and trace context.

use signalbox_model::{
    ActionKind, Carry, Firing, Map, SignalInstance, SignalRef, Subscription, Value, dedup_firing_id,
};

/// Where a group's join offers go: its input prefix and partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoute {
    /// `sbx.<group>.in.`
    pub in_prefix: String,
    /// The group's partitions.
    pub partitions: u32,
}

/// A join offer as the join partition reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOffer {
    /// The subscription.
    pub subscription: String,
    /// Its version when the instance matched.
    pub version: u64,
    /// The side the instance matched.
    pub alias: String,
    /// The instance's join key.
    pub key: String,
    /// The instance.
    pub instance: SignalInstance,
}

/// The offer firing of `instance` for side `alias` of `sub` with `key`.
pub fn offer_firing(
    route: &GroupRoute,
    sub: &Subscription,
    alias: &str,
    key: &str,
    instance: &SignalInstance,
    now_ms: i64,
) -> Firing {
    let q = crate::group::hash::join_partition(&sub.id, key, route.partitions);
    let mut params = Map::new();
    params.insert("key".into(), Value::String(key.to_string()));
    params.insert("received_at_ms".into(), Value::Int(instance.received_at_ms));
    let traceparent = instance.origin.details.get(Firing::TRACEPARENT).cloned();
    Firing {
        firing_id: dedup_firing_id(
            "@offer",
            &format!(
                "{}\0{}\0{alias}\0{}\0{}\0{}",
                sub.id, sub.version, instance.signal.name, instance.id, instance.seq
            ),
        ),
        subscription: sub.id.clone(),
        version: sub.version,
        action: ActionKind::Publish,
        subject: format!("{}{q}.{}", route.in_prefix, crate::group::names::KIND_OFFER),
        params,
        signals: vec![SignalRef::of(alias, instance, Carry::Full)],
        created_at_ms: now_ms,
        traceparent,
    }
}

/// Reads an offer firing back; `None` for anything else.
pub fn read_offer(firing: &Firing) -> Option<RemoteOffer> {
    let r = firing.signals.first()?;
    let key = match firing.params.get("key")? {
        Value::String(k) => k.clone(),
        _ => return None,
    };
    let received_at_ms = match firing.params.get("received_at_ms")? {
        Value::Int(t) => *t,
        _ => return None,
    };
    let signal = signalbox_model::Signal {
        name: r.name.clone(),
        id: Some(r.id.clone()),
        params: r.params.clone().unwrap_or_default(),
        payload: r.payload.clone(),
        source: None,
        producer: None,
        occurred_at: None,
    };
    let mut origin = signalbox_model::Origin::default();
    if let Some(tp) = &firing.traceparent {
        origin
            .details
            .insert(Firing::TRACEPARENT.to_string(), tp.clone());
    }
    Some(RemoteOffer {
        subscription: firing.subscription.clone(),
        version: firing.version,
        alias: r.alias.clone(),
        key,
        instance: SignalInstance {
            signal,
            id: r.id.clone(),
            seq: r.seq,
            received_at_ms,
            origin,
        },
    })
}
