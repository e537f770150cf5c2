#!/usr/bin/env bash
# Catalog load benchmark: generates the demo marketplace (100,000 products by default,
# timed), serves it with a release `souk serve`, and drives /health, one product by id
# and product lists over HTTPS with wrk, all in the same run so the ratios to /health
# are meaningful. Ends with the server's resident memory.
#
# Usage: benches/load_catalog.sh
#        PRODUCTS=100000 CONNECTIONS=64 DURATION=20s THREADS=2 benches/load_catalog.sh
#        DATA=/path/to/demo-dir benches/load_catalog.sh   (reuse a generated dir)
#        SKIP_BUILD=1 ...                                 (use the binaries as built)
set -euo pipefail
cd "$(dirname "$0")/.."

PRODUCTS="${PRODUCTS:-100000}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-20s}"
THREADS="${THREADS:-2}"

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
    log "building release binaries"
    cargo build --release --quiet --bin souk
    cargo bench --quiet --bench catalog_demo --no-run
fi
BIN="$(pwd)/target/release/souk"

WORK="$(mktemp -d)"
DATA="${DATA:-$WORK/data}"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

log "generating (or reusing) the demo catalog in $DATA"
CATALOG_BENCH_DIR="$DATA" CATALOG_BENCH_PRODUCTS="$PRODUCTS" \
    cargo bench --quiet --bench catalog_demo 2>/dev/null | tee "$WORK/demo.txt" >&2

(
    cd "$WORK"
    export SOUK_HTTP__RATE_LIMIT__PER_SECOND=100000000
    export SOUK_HTTP__RATE_LIMIT__BURST=100000000
    exec "$BIN" serve --data "$DATA" --listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/stderr"
) &
SERVER_PID=$!

URL=""
for _ in $(seq 1 300); do
    URL="$(sed -n 's/^souk: listening on \(https\?:\/\/[^ ]*\).*/\1/p' "$WORK/stdout" | head -n1)"
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "souk serve exited early:"
        cat "$WORK/stderr" >&2
        exit 1
    fi
    sleep 0.1
done
[ -n "$URL" ] || { log "souk serve did not report its address"; cat "$WORK/stderr" >&2; exit 1; }
log "server at $URL (pid $SERVER_PID)"

PRODUCT="$(curl -sk "$URL/api/v1/products?limit=1" | grep -o '"id":"[^"]*"' | head -n1 | cut -d'"' -f4)"
CATEGORY="$(curl -sk "$URL/api/v1/categories" | grep -o '"slug":"[^"]*"' | head -n1 | cut -d'"' -f4)"
[ -n "$PRODUCT" ] && [ -n "$CATEGORY" ] || { log "no product or category served"; exit 1; }

ENDPOINTS=(
    "health /health"
    "product /api/v1/products/$PRODUCT"
    "list_cat /api/v1/products?limit=20&category=$CATEGORY"
    "list /api/v1/products?limit=20"
    "list_price /api/v1/products?limit=20&sort=price_asc"
)

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

printf '%-11s %12s %10s %10s %8s %8s\n' endpoint "req/s" "p50 ms" "p99 ms" errors "vs health"
BASE=""
for entry in "${ENDPOINTS[@]}"; do
    read -r name path <<<"$entry"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s "$URL$path" >/dev/null 2>&1 || true
    out="$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$WORK/report.lua" "$URL$path")"
    read -r _ rps p50 p99 errs non2xx <<<"$(grep '^RESULT ' <<<"$out")"
    if [ -z "$BASE" ]; then BASE="$rps"; fi
    ratio="$(awk -v a="$rps" -v b="$BASE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    printf '%-11s %12s %10s %10s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$((errs + non2xx))" "$ratio"
done
printf 'paths: product=/api/v1/products/%s list_cat=category %s\n' "$PRODUCT" "$CATEGORY"
printf 'memory: %s, peak %s\n' \
    "$(grep VmRSS "/proc/$SERVER_PID/status" | awk '{print $2, $3}')" \
    "$(grep VmHWM "/proc/$SERVER_PID/status" | awk '{print $2, $3}')"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
