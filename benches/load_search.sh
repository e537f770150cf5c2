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
# Set before lib.sh, whose default (64) would otherwise win.
CONNECTIONS="${CONNECTIONS:-32}"
. "$(dirname "$0")/lib.sh"

PRODUCTS="${PRODUCTS:-100000}"


bench_need_wrk
bench_build "cargo bench --quiet --bench catalog_demo --no-run"
bench_workdir
DATA="${DATA:-$WORK/data}"

bench_demo_data "$DATA" "$PRODUCTS"

STARTED="$(date +%s.%N)"
bench_start "$DATA"
bench_wait_search "$STARTED"
printf 'index on disk: %s\n' "$(du -sh "$DATA/search" | cut -f1)"

# Each request takes the next path of a fixed mix (1-3 words, typos, unfinished words,
# facets): after the first round these are answered from the answer cache, as a shop's
# popular queries are.
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
# The same kind of mix drawn at random from the demo's vocabulary (1-3 words, one in four
# with a letter dropped as a typo, facets varied): tens of thousands of distinct queries,
# so the answer cache rarely helps and this row measures the engine itself.
cat >"$WORK/search_mix.lua" <<'LUA'
local words = { "cast", "iron", "ceramic", "steel", "oak", "copper", "pan", "bowl", "knife",
    "teapot", "mug", "linen", "leather", "cotton", "wool", "canvas", "shirt", "sneaker",
    "tote", "boot", "scarf", "jacket", "terracotta", "teak", "bamboo", "stone", "trowel",
    "planter", "bench", "lantern", "speaker", "lamp", "charger", "headphones", "walnut",
    "glass", "bottle", "backpack", "helmet", "merino", "cork", "notebook", "planner",
    "brass", "paper", "print" }
local facets = { "category,brand,price", "brand,price", "category", "price", "category,brand" }
local threads = 0
setup = function(thread)
    threads = threads + 1
    thread:set("id", threads)
end
init = function()
    math.randomseed(os.time() * 100 + id)
end
local function typo(w)
    if #w < 5 or math.random(4) > 1 then return w end
    local k = math.random(2, #w)
    return w:sub(1, k - 1) .. w:sub(k + 1)
end
request = function()
    local q = {}
    for n = 1, math.random(3) do q[n] = typo(words[math.random(#words)]) end
    return wrk.format("GET", "/api/v1/search?q=" .. table.concat(q, "%20")
        .. "&facets=" .. facets[math.random(#facets)])
end
LUA
# As-you-type suggestions drawn the same way: 1-2 words, the last one unfinished (2 letters
# up to the whole word), a finished word with a letter dropped one time in four.
sed '/^local facets/d; /^request = function/,$d' "$WORK/search_mix.lua" >"$WORK/suggest.lua"
cat >>"$WORK/suggest.lua" <<'LUA'
request = function()
    local q = {}
    local n = math.random(2)
    for k = 1, n - 1 do q[k] = typo(words[math.random(#words)]) end
    local last = words[math.random(#words)]
    q[n] = last:sub(1, math.random(2, #last))
    return wrk.format("GET", "/api/v1/search/suggestions?q=" .. table.concat(q, "%20"))
end
LUA
SCENARIOS=(
    "health /health"
    "search /api/v1/search $WORK/search.lua"
    "search_mix /api/v1/search $WORK/search_mix.lua"
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
