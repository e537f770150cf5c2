#!/usr/bin/env bash
# Load benchmark: a release `souk serve` on a throwaway data dir and a free port, driven
# over HTTPS with keep-alive by wrk (installed from apt if missing). Every endpoint in
# ENDPOINTS runs for the same duration; /health comes first so the others can be read
# as a ratio of it. Prints requests/s and p50/p99 latency per endpoint. The harness is
# benches/lib.sh.
#
# Usage: benches/load.sh            (defaults: 64 connections, 20 s each, 2 wrk threads)
#        CONNECTIONS=128 DURATION=30s THREADS=2 benches/load.sh
#        SKIP_BUILD=1 benches/load.sh   (use target/release/souk as it is)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# "name path" pairs; later issues add their read endpoints here (GET, no auth needed).
ENDPOINTS=(
    "health /health"
    "ready /ready"
)

bench_need_wrk
bench_build
bench_workdir
bench_start "$WORK/data" 100

bench_table
for entry in "${ENDPOINTS[@]}"; do
    read -r name path <<<"$entry"
    bench_run "$name" "$path"
done

bench_stop
