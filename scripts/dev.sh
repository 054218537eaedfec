#!/usr/bin/env bash
# The embedded default: installs what is missing, builds signalbox, and runs
# `signalbox dev` (a local nats-server it starts itself, the example
# subscriptions, the router). Extra arguments go to `signalbox dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The pinned nats-server that setup.sh links (unless one is chosen already).
export SIGNALBOX_NATS_SERVER="${SIGNALBOX_NATS_SERVER:-$PWD/.tools/bin/nats-server}"
cargo build --release --locked -p signalbox-cli
exec target/release/signalbox dev "$@"
