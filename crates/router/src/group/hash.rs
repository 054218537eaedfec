//! Where a key lives in a group: FNV-1a 32 of the key, modulo the partition
//! count — the function nats-server's `partition(n)` subject mapping uses
//! (`fnv.New32a`, then `% n`), so a stream's own mapping of `<prefix>.>`
//! and the router agree on every signal's partition. Pure and stable: a key
//! never changes partition while the partition count stays (it is fixed when
//! the group is created).
//!
//! Keys: a signal is placed by its whole subject (`<prefix>.<name>`, what the
//! server hashes); a join's state by subscription and join key; a wait by its
//! id. So a signal name's instances, seqs and dedup entries live in one
//! partition, and so do all sides of one join key.

/// FNV-1a, 32 bits.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The partition of `key` among `partitions` (at least 1).
pub fn partition_of(key: &[u8], partitions: u32) -> u32 {
    fnv1a32(key) % partitions.max(1)
}

/// The partition of signals named `name` published under `prefix`: the hash
/// of the subject `<prefix>.<name>`.
pub fn signal_partition(prefix: &str, name: &str, partitions: u32) -> u32 {
    let mut key = Vec::with_capacity(prefix.len() + 1 + name.len());
    key.extend_from_slice(prefix.as_bytes());
    key.push(b'.');
    key.extend_from_slice(name.as_bytes());
    partition_of(&key, partitions)
}

/// The partition that holds the join state of `subscription` for `key`.
pub fn join_partition(subscription: &str, key: &str, partitions: u32) -> u32 {
    partition_of(
        format!("join\0{subscription}\0{key}").as_bytes(),
        partitions,
    )
}

/// The partition that holds wait `id`.
pub fn wait_partition(id: &str, partitions: u32) -> u32 {
    partition_of(format!("wait\0{id}").as_bytes(), partitions)
}

#[cfg(test)]
mod tests {
    //! Known FNV vectors, and the placements nats-server's `partition()`
    //! mapping gave on a 2.15.1 cluster (64 partitions, one token).

    use super::*;

    #[test]
    fn fnv1a32_known_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn the_servers_placements() {
        // `signals.*` -> `sp.{{partition(64,1)}}.{{wildcard(1)}}` stored
        // `orders` on 44, `payments` on 38, `user_created` on 1.
        assert_eq!(partition_of(b"orders", 64), 44);
        assert_eq!(partition_of(b"payments", 64), 38);
        assert_eq!(partition_of(b"user_created", 64), 1);
        // `signals.>` -> `sp.{{partition(4)}}.>` hashes the whole subject:
        // `signals.a.b` went to 3.
        assert_eq!(signal_partition("signals", "a.b", 4), 3);
    }

    #[test]
    fn joins_and_waits_spread_and_stay_put() {
        let n = 16;
        let parts: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| join_partition("sub", &i.to_string(), n))
            .collect();
        assert!(parts.len() > 8, "join keys spread: {parts:?}");
        assert_eq!(wait_partition("w-1", n), wait_partition("w-1", n));
        assert!(wait_partition("w-1", 1) == 0 && partition_of(b"x", 0) == 0);
    }
}
