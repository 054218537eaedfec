//! Lineage queries and the graph export (docs/DESIGN.md section 5), read from the store.
//!
//! The graph has five node kinds — `producer` (a workflow step or other origin),
//! `signal` (`name:seq`), `subscription`, `firing`, `target` (a subject), and
//! `wait` — and edges `produced`, `matched`, `fired`, `fed`, `delivered_to`,
//! `satisfied`. A graph is built from a set of seed signal instances (a time
//! range, one instance, a subscription's firings, a firing's inputs) by following
//! the stored lineage rows; it is rendered as JSON (`{nodes, edges}`) or DOT.
//! Everything here is a read: nothing blocks ingest (redb MVCC).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};
use signalbox_model::SignalInstance;
use signalbox_model::signal::format_rfc3339;
use signalbox_store::{FiringRecord, FiringState, ReadError, Store};

/// One node of the lineage graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Node {
    /// Unique id, `kind:name`.
    pub id: String,
    /// `producer`, `signal`, `subscription`, `firing`, `target` or `wait`.
    pub kind: String,
    /// Human label.
    pub label: String,
}

/// One edge of the lineage graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// `produced`, `matched`, `fired`, `fed`, `delivered_to`, `satisfied`.
    pub kind: String,
}

/// A lineage graph.
#[derive(Debug, Default, Serialize)]
pub struct Graph {
    /// Nodes, sorted by id.
    pub nodes: BTreeSet<Node>,
    /// Edges, sorted.
    pub edges: BTreeSet<Edge>,
}

impl Graph {
    fn node(&mut self, kind: &str, name: &str, label: String) -> String {
        let id = format!("{kind}:{name}");
        self.nodes.insert(Node {
            id: id.clone(),
            kind: kind.into(),
            label,
        });
        id
    }

    fn edge(&mut self, from: &str, to: &str, kind: &str) {
        self.edges.insert(Edge {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
        });
    }

    /// Adds a signal instance and everything its lineage rows reach.
    pub fn add_signal(&mut self, store: &Store, inst: &SignalInstance) -> Result<(), ReadError> {
        let key = format!("{}:{}", inst.signal.name, inst.seq);
        let sig = self.node("signal", &key, format!("{key} ({})", inst.id));
        if let Some(p) = &inst.signal.producer {
            let parts: Vec<&str> = [&p.workflow, &p.run, &p.step]
                .into_iter()
                .filter_map(|x| x.as_deref())
                .collect();
            if !parts.is_empty() {
                let name = parts.join("/");
                let prod = self.node("producer", &name, name.clone());
                self.edge(&prod, &sig, "produced");
            }
        }
        for sub in store.matches_of_signal(&inst.signal.name, inst.seq)? {
            let s = self.node("subscription", &sub, sub.clone());
            self.edge(&sig, &s, "matched");
        }
        for record in store.firings_of_signal(&inst.signal.name, inst.seq)? {
            self.add_firing(&record);
            self.edge(&sig, &format!("firing:{}", record.firing.firing_id), "fed");
        }
        for wait in store.waits_of_signal(&inst.signal.name, inst.seq)? {
            let w = self.node("wait", &wait, wait.clone());
            self.edge(&sig, &w, "satisfied");
        }
        Ok(())
    }

    /// Adds a firing, its subscription and its target.
    pub fn add_firing(&mut self, record: &FiringRecord) {
        let f = &record.firing;
        let state = match record.state {
            FiringState::Pending => "pending".to_string(),
            FiringState::Delivered { .. } => "delivered".to_string(),
            FiringState::DeadLettered { .. } => "dead-lettered".to_string(),
        };
        let short: String = f.firing_id.chars().take(12).collect();
        let fid = self.node("firing", &f.firing_id, format!("{short}… ({state})"));
        let owner = if let Some(wait) = f.subscription.strip_prefix('@') {
            self.node("wait", wait, wait.to_string())
        } else {
            self.node("subscription", &f.subscription, f.subscription.clone())
        };
        self.edge(&owner, &fid, "fired");
        for input in &f.signals {
            let key = format!("{}:{}", input.name, input.seq);
            let s = self.node("signal", &key, format!("{key} ({})", input.id));
            self.edge(&s, &fid, "fed");
        }
        let target = self.node("target", &f.subject, f.subject.clone());
        self.edge(&fid, &target, "delivered_to");
    }

    /// The graph as JSON.
    pub fn to_json(&self) -> Value {
        json!({"nodes": self.nodes, "edges": self.edges})
    }

    /// The graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let shape = |kind: &str| match kind {
            "producer" => "house",
            "signal" => "ellipse",
            "subscription" => "box",
            "firing" => "diamond",
            "target" => "cds",
            _ => "octagon",
        };
        let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
        for n in &self.nodes {
            out.push_str(&format!(
                "  {:?} [label={:?}, shape={}];\n",
                n.id,
                n.label,
                shape(&n.kind)
            ));
        }
        for e in &self.edges {
            out.push_str(&format!(
                "  {:?} -> {:?} [label={:?}];\n",
                e.from, e.to, e.kind
            ));
        }
        out.push_str("}\n");
        out
    }
}

/// What a graph export starts from.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `dot`.
    #[serde(default)]
    pub format: Option<String>,
    /// Signals received at or after this RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
    /// Signals received before this RFC 3339 time.
    #[serde(default)]
    pub until: Option<String>,
    /// Only around this signal instance, `NAME:SEQ`.
    #[serde(default)]
    pub signal: Option<String>,
    /// Only around this subscription (its firings and their inputs).
    #[serde(default)]
    pub sub: Option<String>,
    /// Only around this firing.
    #[serde(default)]
    pub firing: Option<String>,
    /// At most this many signal instances (default 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Why an export could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A query field is invalid.
    #[error("{field}: {rule}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule.
        rule: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Builds the graph a query asks for.
pub fn export(store: &Store, q: &ExportQuery) -> Result<Graph, ExportError> {
    let time = |field: &'static str, v: &Option<String>| -> Result<Option<i64>, ExportError> {
        v.as_deref()
            .map(signalbox_model::signal::parse_rfc3339)
            .transpose()
            .map_err(|rule| ExportError::Invalid { field, rule })
    };
    let since = time("since", &q.since)?.unwrap_or(i64::MIN);
    let until = time("until", &q.until)?.unwrap_or(i64::MAX);
    let limit = q.limit.unwrap_or(1000).min(100_000);
    let mut g = Graph::default();
    if let Some(key) = &q.signal {
        let (name, seq) = key
            .rsplit_once(':')
            .and_then(|(n, s)| Some((n, s.parse::<u64>().ok()?)))
            .ok_or(ExportError::Invalid {
                field: "signal",
                rule: "expected NAME:SEQ".into(),
            })?;
        if let Some(inst) = store.signal(name, seq)? {
            g.add_signal(store, &inst)?;
        }
        return Ok(g);
    }
    if let Some(id) = &q.firing {
        if let Some(record) = store.firing(id)? {
            g.add_firing(&record);
        }
        return Ok(g);
    }
    if let Some(sub) = &q.sub {
        for record in store.firings_for(sub, limit)? {
            g.add_firing(&record);
        }
        g.node("subscription", sub, sub.clone());
        return Ok(g);
    }
    let mut taken = 0usize;
    'names: for (name, _) in store.signal_names()? {
        let mut after = 0;
        loop {
            let page = store.signals(&name, after, 512)?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for inst in page
                .iter()
                .filter(|i| i.received_at_ms >= since && i.received_at_ms < until)
            {
                if taken >= limit {
                    break 'names;
                }
                g.add_signal(store, inst)?;
                taken += 1;
            }
        }
    }
    Ok(g)
}

/// Everything known about one signal instance.
pub fn signal_lineage(store: &Store, inst: &SignalInstance) -> Result<Value, ReadError> {
    let firings: Vec<Value> = store
        .firings_of_signal(&inst.signal.name, inst.seq)?
        .iter()
        .map(firing_summary)
        .collect();
    Ok(json!({
        "signal": inst,
        "received_at": format_rfc3339(inst.received_at_ms),
        "producer": inst.signal.producer,
        "origin": inst.origin,
        "matched": store.matches_of_signal(&inst.signal.name, inst.seq)?,
        "firings": firings,
        "waits": store.waits_of_signal(&inst.signal.name, inst.seq)?,
    }))
}

/// A firing with its inputs, target, delivery state and attempts.
pub fn firing_summary(record: &FiringRecord) -> Value {
    let (state, delivered_at) = match record.state {
        FiringState::Pending => ("pending", None),
        FiringState::Delivered { at_ms } => ("delivered", Some(format_rfc3339(at_ms))),
        FiringState::DeadLettered { at_ms } => ("dead_lettered", Some(format_rfc3339(at_ms))),
    };
    json!({
        "firing_id": record.firing.firing_id,
        "subscription": record.firing.subscription,
        "version": record.firing.version,
        "target": record.firing.subject,
        "inputs": record.firing.signals,
        "params": record.firing.params,
        "state": state,
        "delivered_at": delivered_at,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "created_at": format_rfc3339(record.firing.created_at_ms),
    })
}

/// A subscription's firings, newest first, each with its inputs.
pub fn subscription_lineage(store: &Store, id: &str, limit: usize) -> Result<Value, ReadError> {
    let firings: Vec<Value> = store
        .firings_for(id, limit)?
        .iter()
        .map(firing_summary)
        .collect();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for f in &firings {
        *by_state
            .entry(f["state"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let dropped: Vec<Value> = store
        .dropped_joins(id)?
        .into_iter()
        .map(|(version, offers)| json!({"new_version": version, "dropped": offers}))
        .collect();
    Ok(json!({
        "subscription": store.subscription(id)?,
        "versions": store
            .subscription_history(id)?
            .iter()
            .map(|s| s.version)
            .collect::<Vec<_>>(),
        "firings": firings,
        "counts": by_state,
        "dropped_partial_joins": dropped,
    }))
}

/// A search for stored signal instances (the `signals.search` verb and
/// `GET /v1/signals/search`), newest first.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Only this signal name; every name when absent or empty.
    #[serde(default)]
    pub name: Option<String>,
    /// A pattern over the params (the subscription `where` language, built-in
    /// operators only), as a JSON object or as JSON text.
    #[serde(default, rename = "where")]
    pub pattern: Option<Value>,
    /// At most this many results (default 50, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Most instances one search reads before it stops (`truncated` in the reply).
const SEARCH_SCAN_MAX: usize = 20_000;

/// Finds stored instances by name and params: the newest `limit` that match,
/// each with the subscriptions it matched and the firings it fed. Reads at
/// most [`SEARCH_SCAN_MAX`] instances, newest first within each name.
pub fn search(store: &Store, q: &SearchQuery) -> Result<Value, ExportError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let pattern = match &q.pattern {
        None => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(p) => {
            let doc = match p {
                Value::String(text) => {
                    serde_json::from_str(text).map_err(|e| ExportError::Invalid {
                        field: "where",
                        rule: format!("not a JSON pattern: {e}"),
                    })?
                }
                other => other.clone(),
            };
            let registry = signalbox_matcher::OperatorRegistry::default();
            Some(
                signalbox_matcher::Pattern::parse(&doc, &registry).map_err(|e| {
                    ExportError::Invalid {
                        field: "where",
                        rule: e.to_string(),
                    }
                })?,
            )
        }
    };
    let names: Vec<(String, u64)> = match q.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => store
            .signal_names()?
            .into_iter()
            .filter(|(n, _)| n == name)
            .collect(),
        None => store.signal_names()?,
    };
    const PAGE: u64 = 512;
    let mut found: Vec<SignalInstance> = Vec::new();
    let mut scanned = 0usize;
    let mut truncated = false;
    'names: for (name, last) in names {
        let mut taken_here = 0usize;
        let mut upper = last;
        while upper > 0 {
            let lower = upper.saturating_sub(PAGE);
            let page = store.signals(&name, lower, PAGE as usize)?;
            for inst in page.into_iter().rev().filter(|i| i.seq <= upper) {
                if scanned >= SEARCH_SCAN_MAX {
                    truncated = true;
                    break 'names;
                }
                scanned += 1;
                if pattern
                    .as_ref()
                    .is_none_or(|p| signalbox_matcher::naive::matches(p, &inst.signal.params))
                {
                    found.push(inst);
                    taken_here += 1;
                    if taken_here >= limit {
                        continue 'names;
                    }
                }
            }
            upper = lower;
        }
    }
    found.sort_by(|a, b| {
        b.received_at_ms
            .cmp(&a.received_at_ms)
            .then_with(|| b.seq.cmp(&a.seq))
    });
    found.truncate(limit);
    let mut signals = Vec::with_capacity(found.len());
    for inst in &found {
        let key = format!("{}:{}", inst.signal.name, inst.seq);
        signals.push(json!({
            "signal": key,
            "name": inst.signal.name,
            "seq": inst.seq,
            "id": inst.id,
            "received_at": format_rfc3339(inst.received_at_ms),
            "params": inst.signal.params,
            "producer": inst.signal.producer,
            "matched": store.matches_of_signal(&inst.signal.name, inst.seq)?,
            "firings": store
                .firings_of_signal(&inst.signal.name, inst.seq)?
                .iter()
                .map(|f| f.firing.firing_id.clone())
                .collect::<Vec<_>>(),
        }));
    }
    Ok(json!({"signals": signals, "scanned": scanned, "truncated": truncated}))
}
