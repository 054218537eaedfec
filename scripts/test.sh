#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, checks formatting and
# lints, builds everything, and runs every test (unit, property, case files,
# conformance data, and end-to-end against real nats-server processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# The pinned nats-server that setup.sh links (unless one is chosen already):
# for `signalbox dev` run by the tests; the test kit looks there itself.
export SIGNALBOX_NATS_SERVER="${SIGNALBOX_NATS_SERVER:-$PWD/.tools/bin/nats-server}"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One pass over a clean tree gains nothing from incremental caches, which
# would add gigabytes to target/ (override with CARGO_INCREMENTAL=1).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# A full disk shows up as dozens of unrelated test failures ("No space left on
# device" from redb, cargo or nats-server): say how much room there is first.
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_mb() { df -Pm "$1" | awk 'NR==2 {print $4}'; }
# Measured on a clean clone (docs/DECISIONS.md, "Build footprint"): the run
# grew the disk's use by 7.7 GB at its peak; with some room to spare:
need_mb=9000
echo "== disk: $(free_mb "$target_dir") MB free for $target_dir, $(free_mb "${TMPDIR:-/tmp}") MB for ${TMPDIR:-/tmp}; a clean run needs about $need_mb MB"
if [ "$(free_mb "$target_dir")" -lt "$need_mb" ]; then
  echo "!! less than $need_mb MB free for $target_dir: the suite may run out of disk midway" >&2
fi
trap 'echo "== disk at exit: $(free_mb "$target_dir") MB free; target/ holds $(du -sm "$target_dir" 2>/dev/null | cut -f1) MB"' EXIT
echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build"
cargo build --workspace --all-targets --locked
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
echo "== plugin unit tests (host target)"
cargo test --manifest-path plugins/Cargo.toml --locked -p plugin-mapping -p adapter-kv-lines
