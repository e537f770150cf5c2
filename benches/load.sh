#!/usr/bin/env bash
# Load benchmark: a release `souk serve` on a throwaway data dir and a free port, driven
# over HTTPS with keep-alive by wrk (installed from apt if missing). Every endpoint in
# ENDPOINTS runs for the same duration; /health comes first so the others can be read
# as a ratio of it. Prints requests/s and p50/p99 latency per endpoint.
#
# Usage: benches/load.sh            (defaults: 64 connections, 20 s each, 2 wrk threads)
#        CONNECTIONS=128 DURATION=30s THREADS=2 benches/load.sh
#        SKIP_BUILD=1 benches/load.sh   (use target/release/souk as it is)
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-20s}"
THREADS="${THREADS:-2}"

# "name path" pairs; later issues add their read endpoints here (GET, no auth needed).
ENDPOINTS=(
    "health /health"
    "ready /ready"
)

log() { printf '%s\n' "$*" >&2; }

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    }
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    log "building release binary"
    cargo build --release --quiet --bin souk
fi
BIN="$(pwd)/target/release/souk"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The measured server runs as in production (access log included, to a file nobody
# reads), except that the per-address rate limit is lifted: every wrk connection comes
# from 127.0.0.1 and would otherwise be throttled after the first burst.
(
    cd "$WORK"
    export SOUK_HTTP__RATE_LIMIT__PER_SECOND=100000000
    export SOUK_HTTP__RATE_LIMIT__BURST=100000000
    exec "$BIN" serve --data "$WORK/data" --listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/stderr"
) &
SERVER_PID=$!

URL=""
for _ in $(seq 1 100); do
    URL="$(sed -n 's/^souk: listening on \(https\?:\/\/[^ ]*\).*/\1/p' "$WORK/stdout" | head -n1)"
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "souk serve exited early:"
        cat "$WORK/stderr" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    log "souk serve did not report its address; stderr follows"
    cat "$WORK/stderr" >&2
    exit 1
fi
log "server at $URL (pid $SERVER_PID)"

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
    local secs = summary.duration / 1e6
    local errors = summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.timeout
    io.write(string.format("RESULT %.0f %.3f %.3f %d %d\n",
        summary.requests / secs,
        latency:percentile(50) / 1000,
        latency:percentile(99) / 1000,
        errors,
        summary.errors.status))
end
LUA

printf '%-12s %-28s %12s %10s %10s %8s %8s\n' endpoint path "req/s" "p50 ms" "p99 ms" errors "vs health"
BASE=""
for entry in "${ENDPOINTS[@]}"; do
    read -r name path <<<"$entry"
    # Warm up connections and caches so the first endpoint is not penalised.
    wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s "$URL$path" >/dev/null 2>&1 || true
    out="$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$WORK/report.lua" "$URL$path")"
    read -r _ rps p50 p99 errs non2xx <<<"$(grep '^RESULT ' <<<"$out")"
    if [ -z "$BASE" ]; then BASE="$rps"; fi
    ratio="$(awk -v a="$rps" -v b="$BASE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    printf '%-12s %-28s %12s %10s %10s %8s %8s\n' "$name" "$path" "$rps" "$p50" "$p99" \
        "$((errs + non2xx))" "$ratio"
done

log "stopping server"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
