//! Group membership: each router keeps a key in the members bucket (KV
//! `SBX_<GROUP>_MEMBERS`, whose keys expire one lease TTL after their last
//! write) and rewrites it every third of that. The live members are the keys
//! present now; a router that died or froze drops out by itself. Every
//! router reads the same list and computes the same wished-for owners
//! (`assign.rs`).

use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// What a member says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its name in the group.
    pub member: String,
    /// When it started.
    pub started_at_ms: i64,
    /// Its HTTP listener, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Partitions it owns now.
    #[serde(default)]
    pub owned: Vec<u32>,
    /// When it last wrote this.
    pub at_ms: i64,
}

/// Writes this member's key.
pub async fn heartbeat(bucket: &kv::Store, info: &MemberInfo) -> Result<(), String> {
    let body = serde_json::to_vec(info).map_err(|e| e.to_string())?;
    bucket
        .put(&info.member, body.into())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Removes this member's key (a clean stop: its partitions move at once).
pub async fn leave(bucket: &kv::Store, member: &str) -> Result<(), String> {
    bucket.purge(member).await.map_err(|e| e.to_string())
}

/// The live members, sorted by name.
pub async fn live(bucket: &kv::Store) -> Result<Vec<MemberInfo>, String> {
    let mut keys = bucket.keys().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        if let Ok(Some(bytes)) = bucket.get(&key).await
            && let Ok(info) = serde_json::from_slice::<MemberInfo>(&bytes)
        {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.member.cmp(&b.member));
    Ok(out)
}
