#!/usr/bin/env bash
# Catalog load benchmark: generates the demo marketplace (100,000 products by default,
# timed), serves it with a release `souk serve`, and drives /health, one product by id,
# product lists, and the storefront's product and category pages over HTTPS with wrk,
# all in the same run so the ratios to /health are meaningful. Ends with the server's
# resident memory. The harness is benches/lib.sh.
#
# Usage: benches/load_catalog.sh
#        PRODUCTS=100000 CONNECTIONS=64 DURATION=20s THREADS=2 benches/load_catalog.sh
#        DATA=/path/to/demo-dir benches/load_catalog.sh   (reuse a generated dir)
#        SKIP_BUILD=1 ...                                 (use the binaries as built)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PRODUCTS="${PRODUCTS:-100000}"

bench_need_wrk
bench_build "cargo bench --quiet --bench catalog_demo --no-run"
bench_workdir
DATA="${DATA:-$WORK/data}"

bench_demo_data "$DATA" "$PRODUCTS"

STARTED="$(date +%s.%N)"
bench_start "$DATA"
# The category page lists through the search engine.
bench_wait_search "$STARTED"

PRODUCT="$(bench_curl "/api/v1/products?limit=1" | grep -o '"id":"[^"]*"' | head -n1 | cut -d'"' -f4)"
CATEGORY="$(bench_curl /api/v1/categories | grep -o '"slug":"[^"]*"' | head -n1 | cut -d'"' -f4)"
[ -n "$PRODUCT" ] && [ -n "$CATEGORY" ] || { log "no product or category served"; exit 1; }

ENDPOINTS=(
    "health /health"
    "product /api/v1/products/$PRODUCT"
    "list_cat /api/v1/products?limit=20&category=$CATEGORY"
    "list /api/v1/products?limit=20"
    "list_price /api/v1/products?limit=20&sort=price_asc"
    "page_prod /p/$PRODUCT"
    "page_cat /c/$CATEGORY"
)

bench_table
for entry in "${ENDPOINTS[@]}"; do
    read -r name path <<<"$entry"
    bench_run "$name" "$path"
done
printf 'paths: product=/api/v1/products/%s list_cat=category %s\n' "$PRODUCT" "$CATEGORY"
bench_memory

bench_stop
