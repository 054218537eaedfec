#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, checks formatting and
# lints, builds everything, and runs every test (unit, property, case files,
# conformance data, and end-to-end against real nats-server processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
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
