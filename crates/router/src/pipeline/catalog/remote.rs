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
//!
//! Waits go the same way when their signals live in several partitions: the
//! wait lives in its first signal's partition, which sends a **watch** of the
//! other sides to their partitions (`_watch`, with the wait's document); a
//! watching partition keeps the watch as a wait of its own (id
//! `watch:<w>:<wait>`, those sides only), runs its lookback there and sends
//! every match back as a **wait offer** (`_woffer`, carrying the instance);
//! the wait's partition takes the offers in input order and answers the wait
//! when it completes. A watch ends at the wait's deadline, or when the wait's
//! partition answers it.

use std::collections::{BTreeMap, BTreeSet};

use signalbox_model::{
    ActionKind, Carry, Firing, Lookback, Map, SignalInstance, SignalRef, Subscription, Value, Wait,
    WaitRecord, dedup_firing_id,
};

/// Where a group's join offers and wait watches go: its input prefix,
/// partition count and signal subject prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRoute {
    /// `sbx.<group>.in.`
    pub in_prefix: String,
    /// The group's partitions.
    pub partitions: u32,
    /// The subject prefix signals are published under (a name's partition
    /// is the hash of `<prefix>.<name>`).
    pub subject_prefix: String,
}

impl GroupRoute {
    /// The partition of signals named `name`.
    pub fn partition_of(&self, name: &str) -> u32 {
        crate::group::hash::signal_partition(&self.subject_prefix, name, self.partitions)
    }

    /// The partition a wait lives in: its first signal's.
    pub fn wait_partition(&self, wait: &Wait) -> u32 {
        wait.signals
            .first()
            .map_or(0, |s| self.partition_of(&s.name))
    }

    /// The aliases of `wait` whose signals live in other partitions than
    /// the wait (watched there). None for a watch itself.
    pub fn remote_sides(&self, wait: &Wait) -> BTreeSet<String> {
        if parse_watch_id(&wait.id).is_some() {
            return BTreeSet::new();
        }
        let w = self.wait_partition(wait);
        wait.signals
            .iter()
            .filter(|s| self.partition_of(&s.name) != w)
            .map(|s| s.alias.clone())
            .collect()
    }

    /// The partitions that watch `wait`'s remote sides, each with the
    /// aliases it watches.
    pub fn watchers(&self, wait: &Wait) -> BTreeMap<u32, Vec<String>> {
        let remote = self.remote_sides(wait);
        let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for s in wait.signals.iter().filter(|s| remote.contains(&s.alias)) {
            out.entry(self.partition_of(&s.name))
                .or_default()
                .push(s.alias.clone());
        }
        out
    }

    /// The ends of every watch of `wait` (it was answered in its partition).
    pub fn unwatches(&self, wait: &Wait, now_ms: i64) -> Vec<Firing> {
        let w = self.wait_partition(wait);
        self.watchers(wait)
            .into_keys()
            .map(|pn| unwatch_firing(self, &wait.id, w, pn, now_ms))
            .collect()
    }
}

/// How a watch's id starts.
pub const WATCH_PREFIX: &str = "watch:";

/// The id of the watch, in another partition, of wait `wait` living in
/// partition `w`: `watch:<w>:<wait>`.
pub fn watch_id(w: u32, wait: &str) -> String {
    format!("{WATCH_PREFIX}{w}:{wait}")
}

/// The wait partition and wait id of a watch id.
pub fn parse_watch_id(id: &str) -> Option<(u32, &str)> {
    let rest = id.strip_prefix(WATCH_PREFIX)?;
    let (w, wait) = rest.split_once(':')?;
    Some((w.parse().ok()?, wait))
}

/// The watch firing that asks partition `pn` to watch the sides `aliases`
/// of the wait of `record` (living in `w`): the watch's wait document, with
/// only those sides and no join (each side is offered on its own). Its
/// lookback and deadline are the wait's, made absolute: a signal the watching
/// partition took in after the wait was registered counts even when it came
/// before the watch.
pub fn watch_firing(
    route: &GroupRoute,
    record: &WaitRecord,
    w: u32,
    pn: u32,
    aliases: &[String],
    now_ms: i64,
) -> Firing {
    let wait = &record.wait;
    let mut watch = wait.clone();
    watch.id = watch_id(w, &wait.id);
    watch.signals.retain(|s| aliases.contains(&s.alias));
    watch.join = None;
    watch.lookback = match record.lookback_floor_ms() {
        Some(i64::MIN) => Lookback::All,
        Some(floor) => Lookback::SinceMs(floor),
        None => Lookback::SinceMs(record.registered_at_ms),
    };
    watch.timeout_ms = record
        .deadline_ms
        .map(|d| u64::try_from(d.saturating_sub(now_ms)).unwrap_or(0));
    let mut params = Map::new();
    params.insert(
        "watch".into(),
        Value::String(serde_json::to_string(&watch).unwrap_or_default()),
    );
    Firing {
        firing_id: dedup_firing_id("@watch", &format!("{}\0{pn}", wait.id)),
        subscription: format!("@{}", wait.id),
        version: 0,
        action: ActionKind::Publish,
        subject: format!(
            "{}{pn}.{}",
            route.in_prefix,
            crate::group::names::KIND_WATCH
        ),
        params,
        signals: Vec::new(),
        created_at_ms: now_ms,
        traceparent: None,
    }
}

/// The watch a watch firing carries.
pub fn read_watch(firing: &Firing) -> Option<Wait> {
    match firing.params.get("watch")? {
        Value::String(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

/// The end of the watch of `wait` (living in `w`) in partition `pn`: its
/// wait was answered.
pub fn unwatch_firing(route: &GroupRoute, wait: &str, w: u32, pn: u32, now_ms: i64) -> Firing {
    let id = watch_id(w, wait);
    let mut params = Map::new();
    params.insert("watch".into(), Value::String(id.clone()));
    Firing {
        firing_id: dedup_firing_id("@unwatch", &format!("{id}\0{pn}")),
        subscription: format!("@{wait}"),
        version: 0,
        action: ActionKind::Publish,
        subject: format!(
            "{}{pn}.{}",
            route.in_prefix,
            crate::group::names::KIND_UNWATCH
        ),
        params,
        signals: Vec::new(),
        created_at_ms: now_ms,
        traceparent: None,
    }
}

/// The watch id an unwatch firing names.
pub fn read_unwatch(firing: &Firing) -> Option<String> {
    match firing.params.get("watch")? {
        Value::String(id) => Some(id.clone()),
        _ => None,
    }
}

/// The offer of `instance` for side `alias` of wait `wait`, sent by a
/// watching partition to the wait's partition `w`.
pub fn wait_offer_firing(
    route: &GroupRoute,
    wait: &str,
    w: u32,
    alias: &str,
    instance: &SignalInstance,
    now_ms: i64,
) -> Firing {
    let mut params = Map::new();
    params.insert("key".into(), Value::String(wait.to_string()));
    params.insert("received_at_ms".into(), Value::Int(instance.received_at_ms));
    Firing {
        firing_id: dedup_firing_id(
            "@woffer",
            &format!(
                "{wait}\0{alias}\0{}\0{}\0{}",
                instance.signal.name, instance.id, instance.seq
            ),
        ),
        subscription: format!("@{wait}"),
        version: 0,
        action: ActionKind::Publish,
        subject: format!(
            "{}{w}.{}",
            route.in_prefix,
            crate::group::names::KIND_WAIT_OFFER
        ),
        params,
        signals: vec![SignalRef::of(alias, instance, Carry::Full)],
        created_at_ms: now_ms,
        traceparent: instance.origin.details.get(Firing::TRACEPARENT).cloned(),
    }
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
