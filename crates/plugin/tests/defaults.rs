//! The host's defaults as documented, and one load with them.

#![allow(clippy::unwrap_used)]

use crate::support;
use std::time::Duration;

use signalbox_plugin::{HostConfig, PluginHost, World};

#[test]
fn defaults_are_the_documented_ones() {
    let c = HostConfig::default();
    assert_eq!(c.operator_deadline, Duration::from_millis(5));
    assert_eq!(c.adapter_deadline, Duration::from_millis(50));
    assert_eq!(c.prepare_deadline, Duration::from_millis(100));
    assert_eq!(c.epoch_tick, Duration::from_millis(1));
    assert_eq!(c.max_memory_bytes, 64 << 20);
    assert_eq!(c.quarantine_after, 5);
    assert_eq!(c.max_signals_per_decode, 1000);
    assert_eq!(c.instances_per_plugin, 4);
    assert!(c.cache_dir.is_none());
}

#[test]
fn a_default_host_loads_and_describes() {
    // Only the load (describe gets the 50 ms adapter deadline); calls with the
    // 5 ms default are not asserted, since a loaded test machine may stall.
    let host = PluginHost::new(HostConfig {
        cache_dir: Some(support::shared_cache_dir()),
        adapter_deadline: Duration::from_secs(2),
        ..HostConfig::default()
    })
    .unwrap();
    let p = host
        .load(&support::component("adapter_github"), "github")
        .unwrap();
    assert_eq!(p.world(), World::SourceAdapter);
    assert_eq!(p.description.name, "github");
    assert_eq!(p.content_hash.len(), 64);
    assert_eq!(p.stats().calls, 1, "describe is one call");
}
