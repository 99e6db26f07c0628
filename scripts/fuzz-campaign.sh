#!/usr/bin/env bash
# The fuzz campaign: every target until it has run RUNS inputs (default 10 million) or for
# SECONDS (default 1800), whichever comes first. Grown corpora go to OUT (default
# target/fuzz-campaign/<target>); one summary line per target goes to stdout:
#   TARGET: runs=N corpus=M seconds=S result=ok|crash
# Usage: scripts/fuzz-campaign.sh [RUNS] [SECONDS] [OUT]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-10000000}"
seconds="${2:-1800}"
out="${3:-$root/target/fuzz-campaign}"
cd "$root/fuzz"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked >/dev/null
fi
status=0
for target in $(cargo fuzz list); do
    corpus="$out/$target"
    mkdir -p "$corpus"
    cp -r "corpus/$target/." "$corpus/"
    log="$out/$target.log"
    start=$(date +%s)
    if cargo fuzz run -s none "$target" "$corpus" -- -runs="$runs" -max_total_time="$seconds" \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=crash
        status=1
    fi
    elapsed=$(( $(date +%s) - start ))
    done_runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
    size=$(find "$corpus" -type f | wc -l)
    echo "$target: runs=$done_runs corpus=$size seconds=$elapsed result=$result"
done
exit $status
