#!/usr/bin/env bash
# Search load benchmark: the demo marketplace (100,000 products by default) served by a
# release `souk serve`, which builds its search index at start; then /health, a mix of
# 1-3 word searches with facets and typos, and as-you-type suggestions, all over HTTPS
# with wrk in the same run so the ratios to /health mean something. Prints requests/s,
# p50/p99 per scenario and the index build time the server logged.
#
# Usage: benches/load_search.sh
#        PRODUCTS=100000 CONNECTIONS=32 DURATION=20s THREADS=2 benches/load_search.sh
#        DATA=/path/to/demo-dir benches/load_search.sh   (reuse a generated dir)
#        SKIP_BUILD=1 ...                                (use the binaries as built)
set -euo pipefail
cd "$(dirname "$0")/.."

PRODUCTS="${PRODUCTS:-100000}"
CONNECTIONS="${CONNECTIONS:-32}"
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
    cargo bench --quiet --bench catalog_demo 2>/dev/null >&2

STARTED="$(date +%s.%N)"
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
log "server at $URL (pid $SERVER_PID); waiting for the search index"

# Search answers 503 until the index is built from the catalog.
for _ in $(seq 1 1200); do
    code="$(curl -sk -o /dev/null -w '%{http_code}' "$URL/api/v1/search?q=mug" || true)"
    [ "$code" = "200" ] && break
    sleep 0.1
done
[ "$code" = "200" ] || { log "search never became ready"; exit 1; }
READY="$(date +%s.%N)"
printf 'index ready %.1f s after start; on disk: %s\n' \
    "$(awk -v a="$STARTED" -v b="$READY" 'BEGIN { print b - a }')" \
    "$(du -sh "$DATA/search" | cut -f1)"

# Each request takes the next path of the mix (1-3 words, typos, unfinished words, facets).
cat >"$WORK/search.lua" <<'LUA'
local paths = {
    "/api/v1/search?q=mug&facets=category,brand,price",
    "/api/v1/search?q=ceramic%20teapot&facets=category,brand,price",
    "/api/v1/search?q=leathr%20boot&facets=brand,price",
    "/api/v1/search?q=oak%20cutting%20board&facets=category",
    "/api/v1/search?q=cast%20iron%20pa&facets=category,brand,price",
    "/api/v1/search?q=wool%20scarf&sort=price_asc&facets=price",
    "/api/v1/search?q=terracota%20planter&facets=category,brand",
    "/api/v1/search?q=linen%20shirt&in_stock=true&facets=brand",
}
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
LUA
cat >"$WORK/suggest.lua" <<'LUA'
local paths = { "mu", "cera", "leath", "terrac", "cast%20ir", "linen%20sh", "woo", "blu" }
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("GET", "/api/v1/search/suggestions?q=" .. paths[i])
end
LUA
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
cat "$WORK/search.lua" "$WORK/report.lua" >"$WORK/search_run.lua"
cat "$WORK/suggest.lua" "$WORK/report.lua" >"$WORK/suggest_run.lua"

SCENARIOS=(
    "health /health $WORK/report.lua"
    "search /api/v1/search $WORK/search_run.lua"
    "suggest /api/v1/search/suggestions $WORK/suggest_run.lua"
)

printf '%-9s %12s %10s %10s %8s %8s\n' scenario "req/s" "p50 ms" "p99 ms" errors "vs health"
BASE=""
for entry in "${SCENARIOS[@]}"; do
    read -r name path script <<<"$entry"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s -s "$script" "$URL$path" >/dev/null 2>&1 || true
    out="$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$script" "$URL$path")"
    read -r _ rps p50 p99 errs non2xx <<<"$(grep '^RESULT ' <<<"$out")"
    if [ -z "$BASE" ]; then BASE="$rps"; fi
    ratio="$(awk -v a="$rps" -v b="$BASE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    printf '%-9s %12s %10s %10s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$((errs + non2xx))" "$ratio"
done

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
