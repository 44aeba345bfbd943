#!/bin/sh
# Walltime precision: how long after `--limit-walltime 1` the sandbox of `sleep 5` is gone,
# from the report's real_time (clone3 to init reaped), over N runs (default 20).
# Usage: tests/bench/walltime.sh [HAKONIWA [N]]
set -eu
bin=${1:-target/x86_64-unknown-linux-musl/release/hakoniwa}
n=${2:-20}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
i=0
while [ "$i" -lt "$n" ]; do
    "$bin" run --limit-walltime 1 --report-file "$report" -- sleep 5 || true
    sed 's/.*"real_time":{"secs":\([0-9]*\),"nanos":\([0-9]*\)}.*/\1 \2/' "$report"
    i=$((i + 1))
done | awk '{ printf "%.3f\n", ($1 - 1) * 1000 + $2 / 1e6 }' | sort -n | awk '
    { ms[NR] = $1 }
    END {
        median = NR % 2 ? ms[(NR + 1) / 2] : (ms[NR / 2] + ms[NR / 2 + 1]) / 2
        printf "%d runs, overshoot past the walltime in ms: min %.3f, median %.3f, max %.3f\n",
            NR, ms[1], median, ms[NR]
    }'
