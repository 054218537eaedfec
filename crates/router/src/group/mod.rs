//! Group mode's protocol with NATS, below everything that runs a partition:
//! the names of a group's streams and buckets ([`names`]), joining a group
//! and checking its record ([`setup`]), where a key lives ([`hash`]) and which
//! member should own a partition ([`assign`]), membership ([`members`]),
//! partition leases ([`lease`]), the changelog and its fence ([`changelog`]),
//! the front door that puts every signal on its partition ([`front`]), and
//! the group's subscriptions ([`subs`]).
//! docs/SCALING.md tells the whole design; `crate::ownership` runs the
//! partitions this router owns.

pub mod assign;
pub mod changelog;
pub mod front;
pub mod hash;
pub mod lease;
pub mod members;
pub mod names;
pub mod setup;
pub mod subs;

use async_nats::jetstream;

use crate::config::ClusterConfig;

/// A group this router has joined: its settings, names and NATS handles.
pub struct Group {
    /// The `[cluster]` table.
    pub config: ClusterConfig,
    /// This router's name in the group.
    pub member: String,
    /// The group's names.
    pub names: names::GroupNames,
    /// The streams, buckets and the group's record.
    pub joined: setup::Joined,
    /// JetStream.
    pub js: jetstream::Context,
    /// Partition leases, written as this member.
    pub leases: lease::Leases,
    /// The front door.
    pub front: front::FrontDoor,
}

impl Group {
    /// The group's partition count (from its record).
    pub fn partitions(&self) -> u32 {
        self.joined.record.partitions
    }
}
