//! Whether a built `signalbox` binary is newer than every source it is built
//! from, so a test can use it without asking cargo again.
//!
//! Why: `cargo test --workspace` already builds `target/<profile>/signalbox`
//! (the CLI's own integration tests need it), with the features of the whole
//! workspace. A second `cargo build -p signalbox-cli` from inside a test
//! resolves features for that one package, which differ, and so rebuilds
//! wasmtime, async-nats and the router a second time into `target/` (about
//! 100 s and 745 MB here). Invariant: "fresh" means the binary's mtime is
//! later than that of every file under `crates/*/src`, every
//! `crates/*/Cargo.toml` and `crates/*/build.rs`, `wit/`, and the root
//! `Cargo.toml` and `Cargo.lock`; anything unreadable counts as not fresh.

use std::path::Path;
use std::time::SystemTime;

/// True when `bin` exists and was written after every source file of the
/// workspace at `root` was last changed.
pub(crate) fn binary_is_fresh(bin: &Path, root: &Path) -> bool {
    let Some(built) = modified(bin) else {
        return false;
    };
    let mut inputs = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("wit"),
    ];
    let Ok(crates) = std::fs::read_dir(root.join("crates")) else {
        return false;
    };
    for krate in crates.flatten() {
        let dir = krate.path();
        inputs.push(dir.join("src"));
        inputs.push(dir.join("Cargo.toml"));
        if dir.join("build.rs").exists() {
            inputs.push(dir.join("build.rs"));
        }
    }
    inputs.iter().all(|p| older_than(p, built))
}

/// True when `path` (a file, or every file below a directory) was modified
/// before `built`.
fn older_than(path: &Path, built: SystemTime) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_dir() {
        return meta.modified().is_ok_and(|m| m < built);
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    entries.flatten().all(|e| older_than(&e.path(), built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, b"x").expect("write");
    }

    #[test]
    fn a_binary_is_fresh_until_a_source_changes() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        for f in [
            "Cargo.toml",
            "Cargo.lock",
            "wit/a.wit",
            "crates/a/Cargo.toml",
            "crates/a/src/lib.rs",
        ] {
            touch(&root.join(f));
        }
        let bin = root.join("target/debug/signalbox");
        assert!(!binary_is_fresh(&bin, root), "no binary yet");
        std::thread::sleep(std::time::Duration::from_millis(20));
        touch(&bin);
        assert!(binary_is_fresh(&bin, root));
        std::thread::sleep(std::time::Duration::from_millis(20));
        touch(&root.join("crates/a/src/deep/mod.rs"));
        assert!(!binary_is_fresh(&bin, root), "a new source file is newer");
    }
}
