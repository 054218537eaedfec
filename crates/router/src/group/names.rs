//! The NATS names of one group: its streams, buckets and subjects, all derived
//! from the group's name so that two groups on one NATS account never share
//! anything.
//!
//! | what | name |
//! |---|---|
//! | input stream (signals and internal messages per partition) | `SBX_<GROUP>_IN`, subjects `sbx.<group>.in.<p>.>` |
//! | changelog stream (one subject per partition) | `SBX_<GROUP>_LOG`, `sbx.<group>.log.<p>` |
//! | leases (per-message TTL, one subject per partition) | `SBX_<GROUP>_LEASE`, `sbx.<group>.lease.<p>` |
//! | members (a key per live router, expiring) | KV `SBX_<GROUP>_MEMBERS` |
//! | the group's record (partition count, prefix, ingest) | KV `SBX_<GROUP>_CONFIG`, key `group` |
//! | subscriptions | KV `SBX_<GROUP>_SUBS` |
//! | snapshots of partition stores | object store `SBX_<GROUP>_SNAP` (stream `OBJ_SBX_<GROUP>_SNAP`), object `p<p>.<changelog position>`; an upload's chunks on `$O.SBX_<GROUP>_SNAP.C.<nuid>` |
//! | plugins (the active version of each) | KV `SBX_<GROUP>_PLUGINS`; components in object store `SBX_<GROUP>_BLOBS` (stream `OBJ_SBX_<GROUP>_BLOBS`) by hash; an upload's chunks on `$O.SBX_<GROUP>_BLOBS.C.<nuid>` |
//! | queries to every router / to a partition's owner | `sbx.<group>.q.<verb>` / `sbx.<group>.qp.<p>.<verb>` |
//!
//! Input subjects by kind (the token after the partition): `_sig` (a signal a
//! router took in: an `Incoming` as JSON), `_offer` (a join side for the join
//! partition), `_wait` / `_watch` / `_cancel` (waits), and, in JetStream
//! ingest, `<subject_prefix>.<name>` as producers published it (the stream
//! maps `<prefix>.>` onto its partition with the server's `partition()`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

/// Kind of an input message: a signal a router took in.
pub const KIND_SIGNAL: &str = "_sig";
/// Kind of an input message: a join side for this (the join) partition.
pub const KIND_OFFER: &str = "_offer";
/// Kind of an input message: a wait registration for this (the wait) partition.
pub const KIND_WAIT: &str = "_wait";
/// Kind of an input message: a wait's watch on a signal name's partition.
pub const KIND_WATCH: &str = "_watch";
/// Kind of an input message: a wait's cancel.
pub const KIND_CANCEL: &str = "_cancel";
/// Kind of an input message: a match of a watched side, for its wait's partition.
pub const KIND_WAIT_OFFER: &str = "_woffer";
/// Kind of an input message: the end of a watch (its wait was answered).
pub const KIND_UNWATCH: &str = "_unwatch";

/// The names of group `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNames {
    group: String,
    upper: String,
}

impl GroupNames {
    /// The names of `group` (already checked: `[A-Za-z0-9_-]`).
    pub fn new(group: &str) -> GroupNames {
        GroupNames {
            group: group.to_string(),
            upper: group.to_ascii_uppercase().replace('-', "_"),
        }
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The input stream.
    pub fn in_stream(&self) -> String {
        format!("SBX_{}_IN", self.upper)
    }

    /// The changelog stream.
    pub fn log_stream(&self) -> String {
        format!("SBX_{}_LOG", self.upper)
    }

    /// The lease stream.
    pub fn lease_stream(&self) -> String {
        format!("SBX_{}_LEASE", self.upper)
    }

    /// The members bucket.
    pub fn members_bucket(&self) -> String {
        format!("SBX_{}_MEMBERS", self.upper)
    }

    /// The group record's bucket.
    pub fn config_bucket(&self) -> String {
        format!("SBX_{}_CONFIG", self.upper)
    }

    /// The subscriptions bucket.
    pub fn subs_bucket(&self) -> String {
        format!("SBX_{}_SUBS", self.upper)
    }

    /// The plugins bucket (the active version of each plugin).
    pub fn plugins_bucket(&self) -> String {
        format!("SBX_{}_PLUGINS", self.upper)
    }

    /// The plugin components object store (by content hash).
    pub fn plugin_blobs_bucket(&self) -> String {
        format!("SBX_{}_BLOBS", self.upper)
    }

    /// The snapshot object store.
    pub fn snapshot_bucket(&self) -> String {
        format!("SBX_{}_SNAP", self.upper)
    }

    /// Every input subject: `sbx.<group>.in.>`.
    pub fn in_all(&self) -> String {
        format!("sbx.{}.in.>", self.group)
    }

    /// Partition `p`'s input: `sbx.<group>.in.<p>.>`.
    pub fn in_filter(&self, p: u32) -> String {
        format!("sbx.{}.in.{p}.>", self.group)
    }

    /// The input subject of a message of `kind` for partition `p`.
    pub fn in_subject(&self, p: u32, kind: &str) -> String {
        format!("sbx.{}.in.{p}.{kind}", self.group)
    }

    /// The prefix before a partition number in input subjects.
    pub fn in_prefix(&self) -> String {
        format!("sbx.{}.in.", self.group)
    }

    /// Every changelog subject.
    pub fn log_all(&self) -> String {
        format!("sbx.{}.log.*", self.group)
    }

    /// Partition `p`'s changelog.
    pub fn log_subject(&self, p: u32) -> String {
        format!("sbx.{}.log.{p}", self.group)
    }

    /// Every lease subject.
    pub fn lease_all(&self) -> String {
        format!("sbx.{}.lease.*", self.group)
    }

    /// Partition `p`'s lease.
    pub fn lease_subject(&self, p: u32) -> String {
        format!("sbx.{}.lease.{p}", self.group)
    }

    /// A query every router answers for the partitions it owns.
    pub fn query(&self, verb: &str) -> String {
        format!("sbx.{}.q.{verb}", self.group)
    }

    /// Every query subject (what a router subscribes to).
    pub fn query_all(&self) -> String {
        format!("sbx.{}.q.>", self.group)
    }

    /// A query for the owner of partition `p`.
    pub fn partition_query(&self, p: u32, verb: &str) -> String {
        format!("sbx.{}.qp.{p}.{verb}", self.group)
    }

    /// The stream under the snapshot object store (NATS names an object
    /// store's stream `OBJ_<bucket>`).
    pub fn snapshot_stream(&self) -> String {
        format!("OBJ_{}", self.snapshot_bucket())
    }

    /// The prefix of the snapshot store's metadata subjects; the rest of
    /// each is the object's name in URL-safe base64 (the object store's own
    /// layout, `$O.<bucket>.M.<name>`).
    pub fn snapshot_meta_prefix(&self) -> String {
        format!("$O.{}.M.", self.snapshot_bucket())
    }

    /// The metadata subject of snapshot object `object`.
    pub fn snapshot_meta_subject(&self, object: &str) -> String {
        format!("{}{}", self.snapshot_meta_prefix(), URL_SAFE.encode(object))
    }

    /// The snapshot object a metadata subject names, if it is one.
    pub fn snapshot_meta_object(&self, subject: &str) -> Option<String> {
        let encoded = subject.strip_prefix(&self.snapshot_meta_prefix())?;
        String::from_utf8(URL_SAFE.decode(encoded).ok()?).ok()
    }

    /// The prefix of the snapshot store's chunk subjects; the rest of each
    /// is the id (`nuid`) of the upload the chunks belong to (the object
    /// store's own layout, `$O.<bucket>.C.<nuid>`).
    pub fn snapshot_chunk_prefix(&self) -> String {
        format!("$O.{}.C.", self.snapshot_bucket())
    }

    /// The stream under the plugin components' object store.
    pub fn plugin_blobs_stream(&self) -> String {
        format!("OBJ_{}", self.plugin_blobs_bucket())
    }

    /// The prefix of the plugin components' metadata subjects
    /// (`$O.<bucket>.M.<name>`, as for snapshots).
    pub fn plugin_blobs_meta_prefix(&self) -> String {
        format!("$O.{}.M.", self.plugin_blobs_bucket())
    }

    /// The prefix of the plugin components' chunk subjects
    /// (`$O.<bucket>.C.<nuid>`, as for snapshots).
    pub fn plugin_blobs_chunk_prefix(&self) -> String {
        format!("$O.{}.C.", self.plugin_blobs_bucket())
    }

    /// The snapshot object of partition `p` at changelog position `at`: one
    /// object per position, so that a late put of an older snapshot adds an
    /// object beside the newer one instead of replacing it.
    pub fn snapshot_object(&self, p: u32, at: u64) -> String {
        format!("p{p}.{at}")
    }
}

/// The partition a snapshot object belongs to: `p12.858` → 12; also the
/// single object `p12` of versions that kept one per partition (its position
/// is in its metadata, as for every snapshot).
pub fn snapshot_partition(object: &str) -> Option<u32> {
    let rest = object.strip_prefix('p')?;
    let p = match rest.split_once('.') {
        Some((p, at)) if !at.is_empty() && at.bytes().all(|b| b.is_ascii_digit()) => p,
        Some(_) => return None,
        None => rest,
    };
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// The partition number and kind of an input subject, given the group's
/// input prefix: `sbx.g.in.7._sig` → `(7, "_sig")`; a mapped producer
/// subject `sbx.g.in.7.signals.orders` → `(7, "signals.orders")`.
pub fn parse_in_subject<'s>(prefix: &str, subject: &'s str) -> Option<(u32, &'s str)> {
    let rest = subject.strip_prefix(prefix)?;
    let (p, kind) = rest.split_once('.')?;
    Some((p.parse().ok()?, kind))
}

#[cfg(test)]
mod tests {
    //! Names are derived from the group and parse back.

    use super::*;

    #[test]
    fn names_of_a_group() {
        let n = GroupNames::new("prod-eu");
        assert_eq!(n.in_stream(), "SBX_PROD_EU_IN");
        assert_eq!(n.in_subject(7, KIND_SIGNAL), "sbx.prod-eu.in.7._sig");
        assert_eq!(n.log_subject(3), "sbx.prod-eu.log.3");
        assert_eq!(n.lease_subject(0), "sbx.prod-eu.lease.0");
        assert_eq!(
            parse_in_subject(&n.in_prefix(), "sbx.prod-eu.in.7._sig"),
            Some((7, "_sig"))
        );
        assert_eq!(
            parse_in_subject(&n.in_prefix(), "sbx.prod-eu.in.12.signals.a.b"),
            Some((12, "signals.a.b"))
        );
        assert_eq!(
            parse_in_subject(&n.in_prefix(), "sbx.other.in.1._sig"),
            None
        );
        assert_eq!(
            parse_in_subject(&n.in_prefix(), "sbx.prod-eu.in.x._sig"),
            None
        );
    }

    #[test]
    fn snapshot_objects_name_their_partition() {
        let n = GroupNames::new("prod-eu");
        assert_eq!(n.snapshot_stream(), "OBJ_SBX_PROD_EU_SNAP");
        assert_eq!(n.snapshot_chunk_prefix(), "$O.SBX_PROD_EU_SNAP.C.");
        assert_eq!(n.plugin_blobs_stream(), "OBJ_SBX_PROD_EU_BLOBS");
        assert_eq!(n.plugin_blobs_meta_prefix(), "$O.SBX_PROD_EU_BLOBS.M.");
        assert_eq!(n.plugin_blobs_chunk_prefix(), "$O.SBX_PROD_EU_BLOBS.C.");
        assert_eq!(n.snapshot_object(12, 858), "p12.858");
        assert_eq!(snapshot_partition(&n.snapshot_object(12, 858)), Some(12));
        let subject = n.snapshot_meta_subject("p12.858");
        assert_eq!(subject, "$O.SBX_PROD_EU_SNAP.M.cDEyLjg1OA==");
        assert_eq!(n.snapshot_meta_object(&subject).as_deref(), Some("p12.858"));
        assert_eq!(n.snapshot_meta_object("$O.SBX_PROD_EU_SNAP.C.abc"), None);
        assert_eq!(n.snapshot_chunk_prefix(), "$O.SBX_PROD_EU_SNAP.C.");
        assert_eq!(snapshot_partition("p1.858"), Some(1));
        assert_eq!(snapshot_partition("p12"), Some(12));
        for other in [
            "p", "p.5", "p12.", "p12.x", "px.5", "q12.5", "p12.5.6", "p-1",
        ] {
            assert_eq!(snapshot_partition(other), None, "{other}");
        }
    }
}
