#!/usr/bin/env bash
# The reliability suite: crash safety, durable pushes, serve stopping on SIGTERM, connection
# cuts, hostile peers, a convergence soak, load, three devices through remote storage, and agents
# killed, restarted and cut off while commands go through their sockets, each repeated and
# counted. Prints `NAME: PASSED/TOTAL` per part, then `reliability: all passed` or
# `reliability: FAILED` (and exits non-zero).
# Usage: scripts/reliability.sh [--quick] [--only NAME]
# RELIABILITY_PROFILE=debug reuses a debug build (CI's tests already made one).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${RELIABILITY_PROFILE:-release}"
if [ "$profile" = release ]; then
    cargo build --release --locked -q -p redoubt-cli -p redoubt-reliability
else
    cargo build --locked -q -p redoubt-cli -p redoubt-reliability
    profile=debug
fi
exec "target/$profile/redoubt-reliability" "$@"
