//! The Wasm components of the plugins in `plugins/`, built for the tests
//! (the wasmtime way: guest programs come from a build step, never from the
//! repository): Rust ones with cargo for `wasm32-wasip2`, Python ones with
//! componentize-py and JavaScript ones with jco through
//! `scripts/build-plugins.sh`.
//!
//! Invariants: each kind is built at most once per test process (a
//! `OnceLock` per kind); the output is always under `plugins/target/`,
//! whatever `CARGO_TARGET_DIR` the tests run with (the guests are their own
//! workspace, as in `scripts/build-plugins.sh`).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Result;

use crate::binary::{cargo_command, workspace_root};

type Built = OnceLock<std::result::Result<PathBuf, String>>;

/// The component file of a plugin from `plugins/` (e.g. `operator_semver`),
/// built once per test process for `wasm32-wasip2`.
pub fn plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: Built = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("plugins/target");
        let mut cargo = cargo_command();
        // The guests must not inherit the host workspace's target settings.
        for key in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            cargo.env_remove(key);
        }
        let status = cargo
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .map_err(|e| format!("cannot run cargo to build plugins/: {e}"))?;
        if !status.success() {
            return Err(
                "building plugins/ for wasm32-wasip2 failed (scripts/setup.sh installs the target)"
                    .into(),
            );
        }
        Ok(target_dir.join("wasm32-wasip2/release"))
    });
    let dir = dir.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = dir.join(format!("{name}.wasm"));
    anyhow::ensure!(file.is_file(), "no component {}", file.display());
    Ok(file)
}

/// Runs `scripts/build-plugins.sh <flag>` once per process (kept in `built`)
/// and returns `plugins/target/<out>/<name>.wasm`; `what` and `tool` name the
/// language and its build tool in the errors.
fn scripted_component(
    built: &'static Built,
    flag: &str,
    out: &str,
    what: &str,
    tool: &str,
    name: &str,
) -> Result<PathBuf> {
    let dir = built.get_or_init(|| {
        let root = workspace_root();
        let status = std::process::Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .arg(flag)
            .status()
            .map_err(|e| format!("cannot run scripts/build-plugins.sh: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building the {what} plugins failed (scripts/setup.sh --test installs {tool})"
            ));
        }
        Ok(root.join("plugins/target").join(out))
    });
    let dir = dir.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = dir.join(format!("{name}.wasm"));
    anyhow::ensure!(
        file.is_file(),
        "no {what} component {} (is {tool} installed? scripts/setup.sh --test)",
        file.display()
    );
    Ok(file)
}

/// The component file of a Python plugin from `plugins/python/<name>`, built
/// once per test process with componentize-py (installed by
/// `scripts/setup.sh --test`) into `plugins/target/python/<name>.wasm`.
pub fn python_plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: Built = OnceLock::new();
    scripted_component(
        &BUILT,
        "--python-only",
        "python",
        "Python",
        "componentize-py",
        name,
    )
}

/// The JavaScript plugin component `name` (`plugins/js/<name>/app.js`), built
/// once per test process with jco (installed in `plugins/js/node_modules` by
/// `scripts/setup.sh --test`) into `plugins/target/js/<name>.wasm`.
pub fn js_plugin_component(name: &str) -> Result<PathBuf> {
    static BUILT: Built = OnceLock::new();
    scripted_component(&BUILT, "--js-only", "js", "JavaScript", "jco", name)
}
