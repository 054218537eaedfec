//! The admin verbs that read one store: signals, firings, waits, lineage,
//! explain. A router alone runs them on its store; in a group each owner runs
//! them on the stores of the partitions it works and the asking router puts
//! the answers together (`group_query.rs`). They only read, and they block:
//! call them off the async threads.

use serde_json::json;
use signalbox_model::{ErrorReply, FieldError};
use signalbox_store::Store;

use super::reply::{AdminResult, invalid, not_found, unavailable};
use crate::pipeline::catalog::Catalog;

/// The verbs of this module.
pub(crate) const VERBS: &[&str] = &[
    "signals.ls",
    "signals.show",
    "signals.search",
    "firing.show",
    "explain",
    "wait.show",
    "wait.ls",
    "lineage.signal",
    "lineage.sub",
    "lineage.firing",
    "lineage.wait",
    "lineage.export",
];

/// Runs one of [`VERBS`] on `store` (the partition's, or the router's).
pub(crate) fn run(store: &Store, catalog: &Catalog, verb: &str, body: &str) -> AdminResult {
    match verb {
        "signals.ls" => signals_ls(store, body),
        "signals.show" => Ok(json!({"signal": load_signal(store, &parse_signal_key(body)?)?})),
        "signals.search" => signals_search(store, body),
        "firing.show" => match store.firing(body).map_err(unavailable)? {
            Some(f) => Ok(json!({"firing": f})),
            None => Err(not_found("id", format!("no firing {body:?}"))),
        },
        "explain" => explain(store, catalog, body),
        "wait.show" => match store.wait(body).map_err(unavailable)? {
            Some(w) => Ok(json!({"wait": w})),
            None => Err(not_found("id", format!("no wait {body:?}"))),
        },
        "wait.ls" => {
            let waiting_only = body == "waiting";
            // A watch (group mode) is the group's own bookkeeping, not a wait.
            let waits: Vec<_> = store
                .waits(waiting_only)
                .map_err(unavailable)?
                .into_iter()
                .filter(|w| crate::pipeline::catalog::remote::parse_watch_id(&w.wait.id).is_none())
                .collect();
            Ok(json!({ "waits": waits }))
        }
        "lineage.signal" => {
            let inst = load_signal(store, &parse_signal_key(body)?)?;
            super::lineage::signal_lineage(store, &inst).map_err(unavailable)
        }
        "lineage.sub" => {
            super::lineage::subscription_lineage(store, body, 1000).map_err(unavailable)
        }
        "lineage.firing" => match store.firing(body).map_err(unavailable)? {
            Some(f) => Ok(super::lineage::firing_summary(&f)),
            None => Err(not_found("id", format!("no firing {body:?}"))),
        },
        "lineage.wait" => match store.wait(body).map_err(unavailable)? {
            Some(w) => Ok(
                json!({"wait": w.wait.id, "consumer": w.wait.consumer, "state": w.state, "registered_at": signalbox_model::signal::format_rfc3339(w.registered_at_ms)}),
            ),
            None => Err(not_found("id", format!("no wait {body:?}"))),
        },
        "lineage.export" => lineage_export(store, body),
        other => Err(invalid(FieldError::new(
            "subject",
            format!("{other:?} is not a data verb"),
        ))),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignalsQuery {
    name: Option<String>,
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

fn signals_ls(store: &Store, body: &str) -> AdminResult {
    let q: SignalsQuery = if body.is_empty() {
        SignalsQuery::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{\"name\", \"after\", \"limit\"}}: {e}"),
            ))
        })?
    };
    match q.name {
        None => {
            let names = store.signal_names().map_err(unavailable)?;
            Ok(
                json!({"names": names.into_iter().map(|(name, last_seq)| json!({"name": name, "last_seq": last_seq})).collect::<Vec<_>>()}),
            )
        }
        Some(name) => {
            let list = store
                .signals(&name, q.after, q.limit.unwrap_or(100).min(10_000))
                .map_err(unavailable)?;
            Ok(json!({"signals": list}))
        }
    }
}

/// A reference to one stored signal: `NAME:SEQ`, or a JSON object.
pub(crate) enum SignalKey {
    Seq(String, u64),
    Id(String, String),
}

pub(crate) fn parse_signal_key(body: &str) -> Result<SignalKey, ErrorReply> {
    if body.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| invalid(FieldError::new("", format!("not valid JSON: {e}"))))?;
        let name = v
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| invalid(FieldError::new("name", "required")))?
            .to_string();
        if let Some(seq) = v.get("seq").and_then(serde_json::Value::as_u64) {
            return Ok(SignalKey::Seq(name, seq));
        }
        if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
            return Ok(SignalKey::Id(name, id.to_string()));
        }
        return Err(invalid(FieldError::new("seq", "give seq or id")));
    }
    let (name, seq) = body.rsplit_once(':').ok_or_else(|| {
        invalid(FieldError::new(
            "signal",
            "expected NAME:SEQ, e.g. table_updated:42",
        ))
    })?;
    let seq = seq.parse::<u64>().map_err(|_| {
        invalid(FieldError::new(
            "signal",
            format!("{seq:?} is not a sequence number"),
        ))
    })?;
    Ok(SignalKey::Seq(name.to_string(), seq))
}

fn load_signal(
    store: &Store,
    key: &SignalKey,
) -> Result<signalbox_model::SignalInstance, ErrorReply> {
    let found = match key {
        SignalKey::Seq(name, seq) => store.signal(name, *seq),
        SignalKey::Id(name, id) => store.signal_by_id(name, id),
    }
    .map_err(unavailable)?;
    found.ok_or_else(|| {
        let what = match key {
            SignalKey::Seq(n, q) => format!("{n}:{q}"),
            SignalKey::Id(n, i) => format!("{n} with id {i:?}"),
        };
        not_found("signal", format!("no stored signal {what}"))
    })
}

fn lineage_export(store: &Store, body: &str) -> AdminResult {
    let q: super::lineage::ExportQuery = if body.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{format, since, until, signal, sub, firing, limit}}: {e}"),
            ))
        })?
    };
    {
        let graph = super::lineage::export(store, &q).map_err(|e| match e {
            super::lineage::ExportError::Invalid { field, rule } => {
                invalid(FieldError::new(field, rule))
            }
            other => unavailable(other),
        })?;
        match q.format.as_deref().unwrap_or("json") {
            "json" => Ok(graph.to_json()),
            "dot" => Ok(json!({"dot": graph.to_dot()})),
            other => Err(invalid(FieldError::new(
                "format",
                format!("{other:?} is not json or dot"),
            ))),
        }
    }
}

fn signals_search(store: &Store, body: &str) -> AdminResult {
    let q: super::lineage::SearchQuery = if body.is_empty() {
        Default::default()
    } else {
        serde_json::from_str(body).map_err(|e| {
            invalid(FieldError::new(
                "",
                format!("expected {{\"name\", \"where\", \"limit\"}}: {e}"),
            ))
        })?
    };
    super::lineage::search(store, &q).map_err(|e| match e {
        super::lineage::ExportError::Invalid { field, rule } => {
            invalid(FieldError::new(field, rule))
        }
        other => unavailable(other),
    })
}

fn explain(store: &Store, catalog: &Catalog, body: &str) -> AdminResult {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        invalid(FieldError::new(
            "",
            format!("expected {{\"sub\", \"signal\"}}: {e}"),
        ))
    })?;
    let sub = v
        .get("sub")
        .and_then(|s| s.as_str())
        .ok_or_else(|| invalid(FieldError::new("sub", "required")))?
        .to_string();
    let signal = v
        .get("signal")
        .and_then(|s| s.as_str())
        .ok_or_else(|| invalid(FieldError::new("signal", "required: NAME:SEQ")))?;
    let key = parse_signal_key(signal)?;
    {
        let instance = load_signal(store, &key)?;
        let compiled = catalog
            .get(&sub)
            .ok_or_else(|| not_found("sub", format!("no subscription {sub:?}")))?;
        let Some((alias, explanation)) = catalog.explain(&sub, &instance) else {
            let wanted: Vec<&str> = compiled
                .subscription
                .signals
                .iter()
                .map(|sp| sp.name.as_str())
                .collect();
            return Ok(json!({
                "matches": false,
                "verdict": format!(
                    "{}:{} cannot fire {sub}: the subscription waits for {wanted:?}, not {:?}",
                    instance.signal.name, instance.seq, instance.signal.name
                ),
                "explain": [],
            }));
        };
        let fed: Vec<String> = store
            .firings_of_signal(&instance.signal.name, instance.seq)
            .map_err(unavailable)?
            .into_iter()
            .filter(|f| f.firing.subscription == sub)
            .map(|f| f.firing.firing_id)
            .collect();
        let mut out = json!({
            "matches": explanation.matched,
            "alias": alias,
            "explain": explanation.conditions,
            "firings": fed,
        });
        let name = format!("{}:{}", instance.signal.name, instance.seq);
        let mut verdict = if !explanation.matched {
            let failed: Vec<String> = explanation
                .conditions
                .iter()
                .filter(|c| c.verdict == signalbox_matcher::Verdict::Failed)
                .map(|c| c.path.clone())
                .collect();
            format!(
                "{name} does not match {sub}: the condition(s) on {} failed",
                failed.join(", ")
            )
        } else if !fed.is_empty() {
            format!("{name} matched {sub} and fed firing {}", fed.join(", "))
        } else {
            format!("{name} matched {sub} but fed no firing")
        };
        if let Some(join) = &compiled.subscription.join {
            let key = join.key_for(&alias, &instance.signal.params);
            let pending = store
                .pending_joins(&sub, compiled.subscription.version)
                .map_err(unavailable)?;
            let waiting_here: Vec<_> = pending
                .iter()
                .filter(|p| Some(&p.key) == key.as_ref())
                .collect();
            let present: std::collections::BTreeSet<&str> =
                waiting_here.iter().map(|p| p.alias.as_str()).collect();
            let missing: Vec<&str> = compiled
                .subscription
                .signals
                .iter()
                .map(|sp| sp.alias.as_str())
                .filter(|a| !present.contains(a))
                .collect();
            let this_waits = waiting_here
                .iter()
                .any(|p| p.name == instance.signal.name && p.seq == instance.seq);
            out["join"] = json!({
                "key": key,
                "within_ms": join.within_ms,
                "waiting": waiting_here,
                "missing": missing,
            });
            if explanation.matched && fed.is_empty() {
                verdict = match (&key, this_waits) {
                    (None, _) => format!(
                        "{name} matched {sub} but lacks its join key ({})",
                        join.paths_for(&alias).collect::<Vec<_>>().join(", ")
                    ),
                    (Some(k), true) => format!(
                        "{name} matched {sub} and waits to join on key {k}: still missing {}",
                        missing.join(", ")
                    ),
                    (Some(k), false) => format!(
                        "{name} matched {sub} on key {k} but is no longer waiting (consumed by another firing, expired after within, or from an older version)"
                    ),
                };
            }
        }
        if let Some(value) = compiled.dedup_value(&[(alias.as_str(), &instance)]) {
            let fid = signalbox_model::dedup_firing_id(&sub, &value);
            let existing = store.firing(&fid).map_err(unavailable)?;
            out["dedup"] = json!({"value": value, "firing_id": fid, "fired": existing.is_some()});
            if explanation.matched
                && fed.is_empty()
                && existing.is_some()
                && compiled.subscription.join.is_none()
            {
                verdict = format!(
                    "{name} matched {sub} but dedup value {value:?} already fired as {fid}"
                );
            }
        }
        out["verdict"] = json!(verdict);
        Ok(out)
    }
}
