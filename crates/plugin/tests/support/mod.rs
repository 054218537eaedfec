//! Test support: builds the guest workspace in `plugins/` once per test process
//! and hands out the components' bytes.
//!
//! `cargo build --release --target wasm32-wasip2` runs at most once per process
//! (a `OnceLock`); concurrent test processes are serialised by cargo's own lock
//! on `plugins/target`. Set `SIGNALBOX_PLUGINS_DIR` to a directory of prebuilt
//! components (e.g. from `scripts/build-plugins.sh`) to skip the build.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use signalbox_plugin::{HostConfig, PluginHost};

pub mod cases;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding the built components, building them on first use.
pub fn components_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SIGNALBOX_PLUGINS_DIR") {
            return PathBuf::from(dir);
        }
        let root = repo_root();
        let target = root.join("plugins/target");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build the guest plugins");
        assert!(
            status.success(),
            "building plugins/ for wasm32-wasip2 failed (is the target installed? rustup target add wasm32-wasip2)"
        );
        target.join("wasm32-wasip2/release")
    })
}

/// The Python plugins in `plugins/python/<name>` built with componentize-py
/// (once per process). The first compile of an 18 MB Python component by a
/// debug build of wasmtime takes minutes, so the tests that call this are
/// `#[ignore]`d (opt-in); a missing componentize-py fails them.
pub fn python_component(name: &str) -> Option<Vec<u8>> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let available = Command::new("componentize-py")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            available,
            "the Python plugin tests need componentize-py (pip install componentize-py==0.25.1)"
        );
        let root = repo_root();
        let out = root.join("plugins/target/python");
        let status = Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .arg("--python-only")
            .status()
            .expect("cannot run scripts/build-plugins.sh");
        assert!(status.success(), "building the Python plugins failed");
        Some(out)
    });
    let path = dir.as_ref()?.join(format!("{name}.wasm"));
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}

/// The bytes of a built component, e.g. `operator_semver`.
pub fn component(name: &str) -> Vec<u8> {
    let path = components_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A config for functional tests: generous deadlines, because a loaded test
/// machine may stall a thread for a while and these tests are about results.
pub fn relaxed_config() -> HostConfig {
    HostConfig {
        operator_deadline: Duration::from_secs(2),
        prepare_deadline: Duration::from_secs(2),
        adapter_deadline: Duration::from_secs(2),
        max_instances: 32,
        cache_dir: Some(shared_cache_dir()),
        ..HostConfig::default()
    }
}

/// A compiled-artefact cache shared by the functional tests, so only the first
/// run compiles each component.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("signalbox-plugin-cache")
}

/// A host with [`relaxed_config`].
pub fn relaxed_host() -> PluginHost {
    PluginHost::new(relaxed_config()).unwrap()
}

/// The JavaScript plugins in `plugins/js/<name>` built with jco /
/// ComponentizeJS (`scripts/build-plugins.sh --js-only`, once per process)
/// into `plugins/target/js/<name>.wasm`. A missing toolchain (node, or
/// `plugins/js/node_modules` — `scripts/setup.sh --test` installs both) fails
/// the test rather than skipping it.
pub fn js_component(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = repo_root();
        let available = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            available,
            "the JavaScript plugin tests need node and npm (scripts/setup.sh --test installs them)"
        );
        assert!(
            root.join("plugins/js/node_modules/.bin/componentize-js").exists(),
            "the JavaScript plugin tests need ComponentizeJS: npm ci in plugins/js (scripts/setup.sh --test)"
        );
        let status = Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .arg("--js-only")
            .status()
            .expect("cannot run scripts/build-plugins.sh");
        assert!(status.success(), "building the JavaScript plugins failed");
        root.join("plugins/target/js")
    });
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
