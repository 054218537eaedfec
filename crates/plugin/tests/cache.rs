//! The compiled-artefact cache: a second load of the same bytes does not
//! compile, in the same host (memory) or in a new host (cache directory).

#![allow(clippy::unwrap_used)]

use crate::support;
use signalbox_plugin::{CacheStats, HostConfig, PluginHost};

#[test]
fn second_load_hits_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = || HostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..HostConfig::default()
    };
    let bytes = support::component("operator_semver");
    let first = PluginHost::new(config()).unwrap();
    first.load(&bytes, "semver").unwrap();
    let path = first.cache_path(&bytes).unwrap();
    assert!(path.is_file(), "{} was written", path.display());
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 0,
            compiles: 1
        }
    );
    first.load(&bytes, "semver-again").unwrap();
    assert_eq!(first.cache_stats().memory_hits, 1);

    // A new host (a restart) deserializes instead of compiling.
    let second = PluginHost::new(config()).unwrap();
    let plugin = second.load(&bytes, "semver").unwrap();
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 1,
            compiles: 0
        }
    );
    assert_eq!(plugin.description.name, "semver");

    // A damaged artefact is discarded and the component recompiled.
    std::fs::write(&path, b"garbage").unwrap();
    let third = PluginHost::new(config()).unwrap();
    third.load(&bytes, "semver").unwrap();
    assert_eq!(
        third.cache_stats(),
        CacheStats {
            memory_hits: 0,
            disk_hits: 0,
            compiles: 1
        }
    );
    assert!(path.is_file());
}
