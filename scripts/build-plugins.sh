#!/usr/bin/env bash
# Builds the guest plugins in plugins/ (their own Cargo workspace) as
# WebAssembly components for wasm32-wasip2, release profile, and prints where
# the components are. The .wasm files are build output: never commit them.
#   scripts/build-plugins.sh            # build all
#   scripts/build-plugins.sh -p operator-semver   # extra args go to cargo build
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "[build-plugins] the wasm32-wasip2 target is missing: run scripts/setup.sh (or rustup target add wasm32-wasip2)" >&2
  exit 1
fi

# The guests must not inherit the host workspace's target settings.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir plugins/target "$@"

out="plugins/target/wasm32-wasip2/release"
echo "[build-plugins] components in $out:" >&2
for f in "$out"/*.wasm; do
  [ -e "$f" ] || continue
  printf '  %s (%s bytes)\n' "$f" "$(wc -c <"$f" | tr -d ' ')"
done
echo "[build-plugins] run the host tests against them with: SIGNALBOX_PLUGINS_DIR=$PWD/$out cargo test -p signalbox-plugin" >&2
