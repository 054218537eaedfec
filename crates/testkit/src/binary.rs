//! The `signalbox` binary of this build, for tests that run it as a process
//! (Kafka workers of in-process routers, `signalbox serve` in kill tests),
//! and the `cargo` command the test kit builds things with.
//!
//! Invariant: a test process builds the binary at most once (kept in a
//! `OnceLock`), and only when the one in `target/<profile>` is older than a
//! workspace source (see `fresh.rs` for why a second build is avoided).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Result;

/// The workspace root (the test kit lives in `crates/testkit`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A `cargo` command (the one running the tests, when known) without the
/// variables cargo gives a test about its own package.
///
/// Cargo gives a test its package's variables (CARGO_PKG_NAME,
/// CARGO_MANIFEST_DIR, OUT_DIR …). Build scripts that track them (ring's
/// does) would see them changed and rebuild, and the next `cargo test` would
/// rebuild again: they are not passed on. Cargo's own settings are.
pub(crate) fn cargo_command() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let kept = [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_BUILD_",
            "CARGO_PROFILE_",
            "CARGO_TERM_",
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
        ]
        .iter()
        .any(|k| key.starts_with(k));
        if (key.starts_with("CARGO_") && !kept) || key == "OUT_DIR" {
            cargo.env_remove(key);
        }
    }
    cargo
}

/// The `signalbox` binary of this build (`target/<profile>/signalbox`). Used
/// as it is when it is newer than every workspace source (`cargo test
/// --workspace` builds it: see the `fresh` module for why a second build is
/// avoided); otherwise built once per test process with `cargo build -p
/// signalbox-cli` in the profile of the running test. The router runs Kafka
/// sources as `signalbox kafka-worker` processes, so in-process test routers
/// need it.
pub fn signalbox_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("{} is not in target/<profile>/deps", exe.display()))?
            .to_path_buf();
        let root = workspace_root();
        let bin = profile_dir.join("signalbox");
        if crate::fresh::binary_is_fresh(&bin, &root) {
            return Ok(bin);
        }
        let mut cargo = cargo_command();
        cargo
            .args([
                "build",
                "-p",
                "signalbox-cli",
                "--bin",
                "signalbox",
                "--manifest-path",
            ])
            .arg(root.join("Cargo.toml"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo
            .status()
            .map_err(|e| format!("cannot run cargo to build the signalbox binary: {e}"))?;
        if !status.success() {
            return Err("building the signalbox binary failed".into());
        }
        if !bin.is_file() {
            return Err(format!("no signalbox binary at {}", bin.display()));
        }
        Ok(bin)
    });
    built.as_ref().cloned().map_err(|e| anyhow::anyhow!("{e}"))
}
