//! Who else serves the same signal subjects: every router registers the NATS
//! micro service `signalbox` with metadata saying its mode (`single` or
//! `group`), its group, and the subject prefix and queue group it takes
//! signals from. A router asks `$SRV.INFO.signalbox` at start and gathers the
//! answers for a moment; the rules ([`conflict`]) are what keeps the truth
//! from splitting silently:
//! - a router alone refuses to start when any other router serves its
//!   subjects (two stores would each dedup, number and join on their own);
//! - a router in a group refuses when a router alone, or one of another
//!   group, serves its subjects.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

/// Metadata keys of the `signalbox` service.
pub const MODE: &str = "mode";
/// The group, in group mode.
pub const GROUP: &str = "group";
/// The subject prefix signals come in on.
pub const PREFIX: &str = "subject_prefix";
/// The queue group of the core ingest.
pub const QUEUE: &str = "queue_group";

/// One other router, as its service info says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its service instance id.
    pub id: String,
    /// Its metadata.
    pub metadata: HashMap<String, String>,
}

/// The service metadata of a router in `group` (or alone), taking signals on
/// `prefix` with queue group `queue`.
pub fn metadata(group: Option<&str>, prefix: &str, queue: &str) -> HashMap<String, String> {
    let mut m = HashMap::from([
        (
            MODE.to_string(),
            if group.is_some() { "group" } else { "single" }.to_string(),
        ),
        (PREFIX.to_string(), prefix.to_string()),
        (QUEUE.to_string(), queue.to_string()),
    ]);
    if let Some(g) = group {
        m.insert(GROUP.to_string(), g.to_string());
    }
    m
}

/// The routers that answer `$SRV.INFO.signalbox` within `wait` (not `me`).
pub async fn gather(client: &async_nats::Client, me: &str, wait: Duration) -> Vec<Peer> {
    let inbox = client.new_inbox();
    let Ok(mut sub) = client.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    if client
        .publish_with_reply("$SRV.INFO.signalbox", inbox, bytes::Bytes::new())
        .await
        .is_err()
    {
        return Vec::new();
    }
    let _ = client.flush().await;
    let mut peers = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let Ok(info) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
            continue;
        };
        let id = info["id"].as_str().unwrap_or_default().to_string();
        if id.is_empty() || id == me {
            continue;
        }
        let metadata = info["metadata"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        peers.push(Peer { id, metadata });
    }
    peers
}

/// Why this router must not serve next to `peer`, if it must not.
pub fn conflict(mine: &HashMap<String, String>, peer: &Peer) -> Option<String> {
    let get = |m: &HashMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    let theirs = &peer.metadata;
    // Routers on other subjects do not share signals.
    if get(mine, PREFIX) != get(theirs, PREFIX) {
        return None;
    }
    let prefix = get(mine, PREFIX);
    match (get(mine, MODE).as_str(), get(theirs, MODE).as_str()) {
        ("single", "group") => Some(format!(
            "router {} serves {prefix}.> in group {:?}: a router alone beside it would split the truth; add [cluster] group = {:?} to join it",
            peer.id,
            get(theirs, GROUP),
            get(theirs, GROUP)
        )),
        ("single", _) => Some(format!(
            "router {} already serves {prefix}.> alone (queue group {:?}): two routers alone would each dedup, number and join their half of the signals; run one, or run both in a group ([cluster] in the config)",
            peer.id,
            get(theirs, QUEUE)
        )),
        ("group", "group") if get(mine, GROUP) != get(theirs, GROUP) => Some(format!(
            "router {} serves {prefix}.> in group {:?}, not {:?}: two groups on one subject prefix would split the signals (cluster.group must match, or use another subject_prefix)",
            peer.id,
            get(theirs, GROUP),
            get(mine, GROUP)
        )),
        ("group", "group") => None,
        ("group", _) => Some(format!(
            "router {} serves {prefix}.> alone: stop it, or give it the same [cluster] table",
            peer.id
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The rules, case by case.

    use super::*;

    fn peer(group: Option<&str>, prefix: &str) -> Peer {
        Peer {
            id: "other".into(),
            metadata: metadata(group, prefix, "signalbox"),
        }
    }

    #[test]
    fn who_may_serve_beside_whom() {
        let alone = metadata(None, "signals", "signalbox");
        let in_a = metadata(Some("a"), "signals", "signalbox");
        assert!(conflict(&alone, &peer(None, "signals")).is_some());
        assert!(conflict(&alone, &peer(Some("a"), "signals")).is_some());
        assert!(conflict(&alone, &peer(None, "other")).is_none());
        assert!(conflict(&in_a, &peer(Some("a"), "signals")).is_none());
        assert!(conflict(&in_a, &peer(Some("b"), "signals")).is_some_and(|w| w.contains("\"b\"")));
        assert!(conflict(&in_a, &peer(None, "signals")).is_some());
    }
}
