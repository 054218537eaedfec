#!/usr/bin/env bash
# Builds the guest plugins in plugins/ and prints where the components are.
#   - Rust (plugins/ is its own Cargo workspace): wasm32-wasip2, release, into
#     plugins/target/wasm32-wasip2/release/*.wasm
#   - Python (plugins/python/<name>/app.py), when componentize-py is installed
#     (pip install componentize-py==0.25.1): into plugins/target/python/<name>.wasm
#   - JavaScript (plugins/js/<name>/app.js), when plugins/js/node_modules holds
#     ComponentizeJS (npm ci in plugins/js; scripts/setup.sh --test does it):
#     into plugins/target/js/<name>.wasm
# The .wasm files are build output: never commit them.
#   scripts/build-plugins.sh                 # everything
#   scripts/build-plugins.sh --python-only   # only the Python plugins
#   scripts/build-plugins.sh --js-only       # only the JavaScript plugins
#   scripts/build-plugins.sh -p operator-semver   # other args go to cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[build-plugins] %s\n' "$*" >&2; }

python_only=0
js_only=0
if [ "${1:-}" = "--python-only" ]; then python_only=1; shift; fi
if [ "${1:-}" = "--js-only" ]; then js_only=1; shift; fi

if [ "$python_only" = 0 ] && [ "$js_only" = 0 ]; then
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "the wasm32-wasip2 target is missing: run scripts/setup.sh (or rustup target add wasm32-wasip2)"
    exit 1
  fi
  # The guests must not inherit the host workspace's target settings.
  (
    unset CARGO_TARGET_DIR CARGO_BUILD_TARGET RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
    cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml --target-dir plugins/target "$@"
  )
  out="plugins/target/wasm32-wasip2/release"
  say "Rust components in $out:"
  for f in "$out"/*.wasm; do
    [ -e "$f" ] || continue
    printf '  %s (%s bytes)\n' "$f" "$(wc -c <"$f" | tr -d ' ')"
  done
fi

if [ "$js_only" = 1 ]; then
  :
elif command -v componentize-py >/dev/null 2>&1; then
  mkdir -p plugins/target/python
  for dir in plugins/python/*/; do
    # plugins/python/lib holds modules the plugins share (no WORLD: not a plugin).
    [ -e "$dir/WORLD" ] || continue
    name="$(basename "$dir")"
    world="$(cat "$dir/WORLD")"
    out="$PWD/plugins/target/python/$name.wasm"
    # Rebuild only when a source file is newer than the component.
    if [ -e "$out" ] && [ -z "$(find "$dir" plugins/python/lib wit -newer "$out" -type f -name '*.py' -o -newer "$out" -type f -name WORLD -o -newer "$out" -type f -name '*.wit' | head -1)" ]; then
      printf '  %s (up to date)\n' "plugins/target/python/$name.wasm"
      continue
    fi
    (cd "$dir" && PYTHONDONTWRITEBYTECODE=1 componentize-py -d ../../../wit -w "$world" componentize app -p . -p ../lib -o "$out.tmp" >/dev/null)
    mv "$out.tmp" "$out"
    printf '  %s (%s bytes)\n' "plugins/target/python/$name.wasm" "$(wc -c <"$out" | tr -d ' ')"
  done
elif [ "$python_only" = 1 ]; then
  say "componentize-py is not installed (pip install componentize-py==0.25.1)"
  exit 1
else
  say "componentize-py is not installed: skipping the Python plugins"
fi

# JavaScript: ComponentizeJS (StarlingMonkey) 0.23.0 called directly, with every
# WASI feature disabled, so the component imports only the signalbox world.
# Not through `jco componentize`: jco 1.34 and 1.35 bring ComponentizeJS 0.22,
# whose generated export glue runs a task queue that costs ~250 µs of CPU per
# call (0.23 glue: ~15 µs; docs/BENCHMARKS-LOG.md, "JavaScript call cost").
cjs="plugins/js/node_modules/.bin/componentize-js"
if [ "$python_only" = 1 ]; then
  :
elif [ -x "$cjs" ] && command -v node >/dev/null 2>&1; then
  mkdir -p plugins/target/js
  for dir in plugins/js/*/; do
    [ -f "$dir/app.js" ] || continue
    name="$(basename "$dir")"
    world="$(cat "$dir/WORLD")"
    out="plugins/target/js/$name.wasm"
    # Rebuild only when a source file (or the toolchain's lock file) is newer.
    if [ -e "$out" ] && [ -z "$(find "$dir" wit plugins/js/package-lock.json -newer "$out" -type f | head -1)" ]; then
      printf '  %s (up to date)\n' "$out"
      continue
    fi
    tmp="$PWD/$out.$$.tmp"
    # From the plugin's directory, so the path baked into stack traces is app.js.
    (cd "$dir" && "$OLDPWD/$cjs" app.js --wit "$OLDPWD/wit" --world-name "$world" \
      --disable stdio random clocks http fetch-event --out "$tmp" >/dev/null)
    mv "$tmp" "$out"
    printf '  %s (%s bytes)\n' "$out" "$(wc -c <"$out" | tr -d ' ')"
  done
elif [ "$js_only" = 1 ]; then
  say "ComponentizeJS is not installed: run scripts/setup.sh --test (or npm ci in plugins/js; needs node and npm)"
  exit 1
else
  say "ComponentizeJS is not installed (npm ci in plugins/js): skipping the JavaScript plugins"
fi
