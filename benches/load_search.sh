#!/usr/bin/env bash
# Search load benchmark: the demo marketplace (100,000 products by default) served by a
# release `souk serve`, which builds its search index at start; then /health, a mix of
# 1-3 word searches with facets and typos, and as-you-type suggestions, all over HTTPS
# with wrk in the same run so the ratios to /health mean something. Prints requests/s,
# p50/p99 per scenario and the index build time the server logged. The harness is
# benches/lib.sh.
#
# Usage: benches/load_search.sh
#        PRODUCTS=100000 CONNECTIONS=32 DURATION=20s THREADS=2 benches/load_search.sh
#        DATA=/path/to/demo-dir benches/load_search.sh   (reuse a generated dir)
#        SKIP_BUILD=1 ...                                (use the binaries as built)
#        BENCH_BIN=target/debug/souk ...                 (another binary, e.g. a smoke
#                                                         run on a debug build)
# Every search is recorded on the telemetry topic, as in production; the run ends with
# the count of telemetry events dropped (souk_telemetry_dropped_total) and the trending
# and analytics answers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PRODUCTS="${PRODUCTS:-100000}"
CONNECTIONS="${CONNECTIONS:-32}"


bench_need_wrk
bench_build "cargo bench --quiet --bench catalog_demo --no-run"
bench_workdir
DATA="${DATA:-$WORK/data}"

if [ -f "$DATA/souk.redb" ]; then
    log "reusing the demo catalog in $DATA"
else
    log "generating the demo catalog in $DATA"
    CATALOG_BENCH_DIR="$DATA" CATALOG_BENCH_PRODUCTS="$PRODUCTS" \
        cargo bench --quiet --bench catalog_demo 2>/dev/null >&2
fi

STARTED="$(date +%s.%N)"
bench_start "$DATA"
bench_wait_search "$STARTED"
printf 'index on disk: %s\n' "$(du -sh "$DATA/search" | cut -f1)"

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
SCENARIOS=(
    "health /health"
    "search /api/v1/search $WORK/search.lua"
    "suggest /api/v1/search/suggestions $WORK/suggest.lua"
    "trending /api/v1/search/trending"
)

bench_table
for entry in "${SCENARIOS[@]}"; do
    read -r name path script <<<"$entry"
    bench_run "$name" "$path" "$script"
done

printf 'telemetry events dropped: %s\n' \
    "$(bench_curl /metrics | awk '/^souk_telemetry_dropped_total/ { print $2 }')"
printf 'trending now: %s\n' "$(bench_curl '/api/v1/search/trending?limit=3' | head -c 300)"

bench_stop
