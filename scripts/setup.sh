#!/usr/bin/env bash
# Installs what signalbox needs and is missing, then returns. Safe to run again:
# each step checks first. Used by scripts/dev.sh, scripts/test.sh and .ci/run.
#   - nats-server (Debian package) for the embedded default and the tests
#   - the Rust target wasm32-wasip2 for the plugins in plugins/
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

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

find_nats() {
  [ -n "${SIGNALBOX_NATS_SERVER:-}" ] && [ -x "$SIGNALBOX_NATS_SERVER" ] && return 0
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || [ -x /usr/bin/nats-server ]
}

if ! find_nats; then
  apt_install nats-server
  # The Debian package enables a system service; signalbox starts its own servers.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
fi
find_nats || { say "nats-server is still missing"; exit 1; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is missing: install Rust 1.95 with rustup first"; exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2 >/dev/null
  fi
fi
say "ready: $(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version), $(cargo --version)"
