#!/usr/bin/env bash
# Runs every fuzz target for a short time on the stable toolchain.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-10}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >/dev/null
fi
for target in $(cargo fuzz list); do
    echo "fuzz: $target for ${seconds}s" >&2
    # A scratch copy of the committed seeds, so a short run does not rewrite them.
    work="$(mktemp -d)"
    cp -r "corpus/$target/." "$work/"
    cargo fuzz run -s none "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=1024 2>&1 | tail -n 3
    rm -rf "$work"
done
