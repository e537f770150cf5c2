#!/usr/bin/env bash
# Checkout load benchmark: durable checkouts per second (cart → order → wallet payment,
# every one committed with fsync before its 201) with many buyers, and their latency.
# A release `souk serve` on a throwaway data dir (harness: benches/lib.sh) gets a shop
# over the API: an admin (made on the command line), a vendor, one product with plenty of
# stock, BUYERS buyers whose wallets are topped up by test card. Then, per store mode
# (store.group_commit_max: 64 = group commit, 1 = one fsync per command), ROUNDS times:
# every buyer's cart gets one unit (not measured), then all buyers check out at once
# through curl --parallel, CONNECTIONS requests in flight (curl may multiplex them over
# fewer HTTP/2 connections) (measured). Elapsed time is the wall clock of the checkout
# phases only; latency is each checkout's total time as curl saw it.
#
# Prints per mode: checkouts, paid, refused, elapsed seconds, checkouts/s, p50/p99 ms.
#
# Usage: benches/load_checkout.sh                      (1000 buyers, 3 rounds, 64 connections)
#        BUYERS=2000 ROUNDS=5 CONNECTIONS=128 benches/load_checkout.sh
#        MODES="64" benches/load_checkout.sh           (group commit only)
#        SKIP_BUILD=1 BENCH_BIN=target/debug/souk BUYERS=20 ROUNDS=1 benches/load_checkout.sh
#                                                      (smoke run on a dev build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUYERS="${BUYERS:-1000}"
ROUNDS="${ROUNDS:-3}"
MODES="${MODES:-64 1}"
SETUP_JOBS="${SETUP_JOBS:-16}"
export PASSWORD="bench-password-2026"
PRICE=1000

command -v curl >/dev/null || { log "curl is needed"; exit 1; }
bench_build
bench_workdir

# The test card gateway pays the top-ups; fraud rules would hold a thousand new accounts
# topping up from one address. Light password hashing only speeds up the set-up (register
# and login): a checkout never hashes a password.
export SOUK_PAYMENTS__TEST_GATEWAY=true
export SOUK_PAYMENTS__FRAUD__ENABLED=false
export SOUK_AUTH__ARGON2_MEMORY_KIB=64
export SOUK_AUTH__ARGON2_ITERATIONS=1

# A JSON string field of stdin: `field` for one that occurs once, `first_field` for the
# first of several ("id" at the top level comes first).
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }
first_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; }
json_post() { bench_curl "$1" -X "${3:-POST}" -H 'content-type: application/json' ${4:+-H "authorization: Bearer $4"} -d "$2"; }
export -f bench_curl json_post field first_field

log "creating the admin"
(cd "$WORK" && printf '%s\n' "$PASSWORD" |
    "$BIN" admin create --email admin@bench.example --data "$WORK/data" >/dev/null 2>"$WORK/admin.err") ||
    { cat "$WORK/admin.err" >&2; exit 1; }

start_mode() {
    export SOUK_STORE__GROUP_COMMIT_MAX="$1"
    bench_start "$WORK/data"
    export URL
}

start_mode "${MODES%% *}"
login() { json_post /api/v1/auth/login "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" | field access_token; }
export -f login

log "setting up the shop"
ADMIN="$(login admin@bench.example)"
OWNER="$(json_post /api/v1/auth/register '{"email":"vendor@bench.example","password":"'"$PASSWORD"'","name":"Bench Vendor"}' | first_field id)"
json_post /api/v1/admin/vendors "{\"name\":\"Bench Goods\",\"owner_user_id\":\"$OWNER\"}" POST "$ADMIN" >/dev/null
VENDOR="$(login vendor@bench.example)"
CAT="$(json_post /api/v1/categories '{"name":"Tools","parent":null}' POST "$ADMIN" | first_field id)"
PRODUCT_JSON="$(json_post /api/v1/products '{"title":"Hammer","description":"Hits nails.","category_id":"'"$CAT"'","brand":"Acme","attributes":{},"status":"active","variants":[{"sku":"HM-1","options":{},"price":{"amount":'"$PRICE"',"currency":"EUR"},"weight_grams":500}]}' POST "$VENDOR")"
export PID="$(first_field id <<<"$PRODUCT_JSON")"
export VID="$(sed -n 's/.*"variants":\[{"id":"\([^"]*\)".*/\1/p' <<<"$PRODUCT_JSON")"
WID="$(json_post /api/v1/vendor/warehouses '{"name":"Depot","code":"W-1"}' POST "$VENDOR" | first_field id)"
STOCK=$((BUYERS * ROUNDS * 4 + 100))
json_post "/api/v1/inventory/$PID" "{\"version\":0,\"levels\":[{\"variant_id\":\"$VID\",\"warehouse_id\":\"$WID\",\"on_hand\":$STOCK}]}" PUT "$VENDOR" >/dev/null
[ -n "$PID" ] && [ -n "$VID" ] && [ -n "$WID" ] || { log "shop set-up failed"; exit 1; }

log "registering $BUYERS buyers and topping up their wallets"
mkdir -p "$WORK/tokens"
buyer_setup() {
    local i="$1" email="buyer$1@bench.example" token pay
    json_post /api/v1/auth/register "{\"email\":\"$email\",\"password\":\"$PASSWORD\",\"name\":\"Buyer $i\"}" >/dev/null
    token="$(login "$email")"
    pay="$(json_post /api/v1/wallets/topup '{"amount":{"amount":100000,"currency":"EUR"},"method":"card","card":{"number":"4242424242424242","exp_month":12,"exp_year":2040,"cvc":"123"}}' POST "$token")"
    grep -q '"status":"succeeded"' <<<"$pay" || { echo "top-up of $email failed: $pay" >&2; return 1; }
    printf '%s\n' "$token" >"$WORK/tokens/$i"
}
export -f buyer_setup
export WORK
seq 1 "$BUYERS" | xargs -P "$SETUP_JOBS" -I{} bash -c 'buyer_setup {}'

# One curl config per phase: a POST per buyer, all run with --parallel.
write_config() { # $1 name, $2 path, $3 JSON body, $4 out dir ("" = discard)
    local f="$WORK/$1.curl" i token
    : >"$f"
    for i in $(seq 1 "$BUYERS"); do
        token="$(cat "$WORK/tokens/$i")"
        {
            printf 'url = "%s%s"\n' "$URL" "$2"
            printf 'header = "authorization: Bearer %s"\n' "$token"
            printf 'header = "content-type: application/json"\n'
            printf "data = \"%s\"\n" "${3//\"/\\\"}"
            if [ -n "$4" ]; then printf 'output = "%s/%s.json"\n' "$4" "$i"; else printf 'output = "/dev/null"\n'; fi
            printf 'write-out = "%%{http_code} %%{time_total}\\n"\n'
            printf 'insecure\n'
            if [ "$i" -lt "$BUYERS" ]; then printf 'next\n'; fi
        } >>"$f"
    done
    printf '%s' "$f"
}

run_parallel() { # $1 config → one "code seconds" line per transfer on stdout
    curl --no-progress-meter --parallel --parallel-immediate --parallel-max "$CONNECTIONS" -K "$1"
}

ADDRESS='{"name":"Bench Buyer","line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"}'
printf '%-6s %9s %7s %8s %9s %12s %9s %9s\n' mode checkouts paid refused "elapsed s" "checkouts/s" "p50 ms" "p99 ms"
first=1
for mode in $MODES; do
    if [ -z "$first" ]; then
        bench_stop
        start_mode "$mode"
    fi
    first=""
    : >"$WORK/times-$mode"
    total_secs=0
    paid=0
    for round in $(seq 1 "$ROUNDS"); do
        add_cfg="$(write_config add /api/v1/cart/items "{\"product_id\":\"$PID\",\"variant_id\":\"$VID\",\"quantity\":1}" "")"
        run_parallel "$add_cfg" | awk '$1 != 201 { bad++; codes = codes " " $1 } END { if (bad) { print bad " cart adds failed:" codes > "/dev/stderr"; exit 1 } }'
        out="$WORK/out-$mode-$round"
        mkdir -p "$out"
        co_cfg="$(write_config checkout /api/v1/orders "{\"shipping_address\":$ADDRESS,\"payment_method\":\"wallet\"}" "$out")"
        t0="$(date +%s.%N)"
        run_parallel "$co_cfg" >>"$WORK/times-$mode"
        t1="$(date +%s.%N)"
        total_secs="$(awk -v a="$total_secs" -v b="$t0" -v c="$t1" 'BEGIN { printf "%.3f", a + c - b }')"
        paid=$((paid + $(grep -l '"payment_error":null' "$out"/*.json 2>/dev/null | xargs -r grep -l '"status":"paid"' | wc -l)))
    done
    n="$(wc -l <"$WORK/times-$mode")"
    ok="$(awk '$1 == 201' "$WORK/times-$mode" | wc -l)"
    awk '{ printf "%.3f\n", $2 * 1000 }' "$WORK/times-$mode" | sort -n >"$WORK/sorted-$mode"
    p50="$(sed -n "$(((n - 1) * 50 / 100 + 1))p" "$WORK/sorted-$mode")"
    p99="$(sed -n "$(((n - 1) * 99 / 100 + 1))p" "$WORK/sorted-$mode")"
    rate="$(awk -v ok="$ok" -v s="$total_secs" 'BEGIN { printf "%.1f", (s > 0 ? ok / s : 0) }')"
    printf '%-6s %9d %7d %8d %9.2f %12s %9.1f %9.1f\n' "$mode" "$n" "$paid" "$((n - ok))" \
        "$total_secs" "$rate" "$p50" "$p99"
done
printf 'modes: store.group_commit_max (64 = group commit, 1 = one fsync per command); %s buyers, %s rounds, %s connections\n' \
    "$BUYERS" "$ROUNDS" "$CONNECTIONS"
bench_stop
