//! Which member of a group should own each partition: rendezvous (highest
//! random weight) hashing over the live members. Every router computes the
//! same answer from the same member list, so no coordinator is needed; adding
//! a member moves about 1/N of the partitions to it and removing one moves
//! only its own. The answer is a wish, not a right: a router acts on it only
//! by taking the partition's lease, and only the changelog's
//! compare-and-set decides who commits (`group/changelog.rs`).

use super::hash::fnv1a32;

/// The member that should own `partition`, or `None` with no members.
pub fn desired_owner(partition: u32, members: &[String]) -> Option<&str> {
    members
        .iter()
        .max_by_key(|m| (weight(m, partition), m.as_str()))
        .map(String::as_str)
}

/// The partitions `member` should own among `members`.
pub fn wanted_by(member: &str, members: &[String], partitions: u32) -> Vec<u32> {
    (0..partitions)
        .filter(|p| desired_owner(*p, members) == Some(member))
        .collect()
}

fn weight(member: &str, partition: u32) -> u32 {
    let mut key = Vec::with_capacity(member.len() + 5);
    key.extend_from_slice(member.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    // A second mixing round: FNV alone clusters on short similar keys.
    let h = fnv1a32(&key);
    let mut x = h ^ (h >> 16);
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests {
    //! Every partition has one owner, shares are even, and a change of
    //! membership moves only what it must.

    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("router-{i}")).collect()
    }

    #[test]
    fn every_partition_has_exactly_one_owner_and_shares_are_even() {
        let m = members(3);
        let mut counts = [0usize; 3];
        for p in 0..64 {
            let owner = desired_owner(p, &m).expect("owner");
            counts[m.iter().position(|x| x == owner).expect("member")] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), 64);
        assert!(counts.iter().all(|c| (12..=32).contains(c)), "{counts:?}");
        assert_eq!(desired_owner(3, &[]), None);
    }

    #[test]
    fn adding_a_member_moves_only_partitions_to_it() {
        let three = members(3);
        let four = members(4);
        for p in 0..256 {
            let before = desired_owner(p, &three).expect("owner");
            let after = desired_owner(p, &four).expect("owner");
            assert!(
                after == before || after == "router-3",
                "{p}: {before} -> {after}"
            );
        }
        let moved = (0..256)
            .filter(|p| desired_owner(*p, &four) == Some("router-3"))
            .count();
        assert!((32..=100).contains(&moved), "moved {moved} of 256");
    }

    #[test]
    fn removing_a_member_moves_only_its_partitions() {
        let three = members(3);
        let two: Vec<String> = three.iter().filter(|m| *m != "router-1").cloned().collect();
        for p in 0..256 {
            let before = desired_owner(p, &three).expect("owner");
            if before != "router-1" {
                assert_eq!(desired_owner(p, &two), Some(before), "{p}");
            }
        }
        assert_eq!(wanted_by("router-1", &two, 256), Vec::<u32>::new());
    }
}
