#!/usr/bin/env bash
# Wallet payments load benchmark (durable: every acknowledged payment is fsynced, group
# commit on): a release `souk serve` on a throwaway data dir with one vendor selling one
# product with ample stock, and BUYERS customers whose wallets are funded by test card.
# Then, in one run with /health first:
#   topup     POST /api/v1/wallets/topup by test card: one payment (provider call,
#             ledger entry, audit, events) per request
#   wallet    each buyer on its own connection alternates "add to cart" and checkout paid
#             from the wallet (reservation, order, wallet payment, ledger, audit, events):
#             the payments/s line counts the orders whose payment succeeded
#   buynow    each request is a "buy now" checkout of one item paid from the wallet: one
#             payment per request, no cart write in between
# Target: 1,000 wallet payments/s. Fraud scoring is off (its velocity rules would hold a
# buyer paying hundreds of times a minute) and the test card gateway is on. The harness
# is benches/lib.sh.
#
# Usage: benches/load_wallet.sh
#        BUYERS=32 CONNECTIONS=64 DURATION=20s THREADS=2 benches/load_wallet.sh
#        SKIP_BUILD=1 benches/load_wallet.sh   (use target/release/souk as it is)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUYERS="${BUYERS:-32}"
PASSWORD="correct horse battery staple"

bench_need_wrk
bench_build
bench_workdir
DATA="$WORK/data"
export SOUK_PAYMENTS__TEST_GATEWAY=true
export SOUK_PAYMENTS__FRAUD__ENABLED=false

# The first administrator, made on the box before the server starts.
(cd "$WORK" && printf '%s\n' "$PASSWORD" |
    "$BIN" admin create --data "$DATA" --email admin@load.example >"$WORK/admin.log" 2>&1) ||
    { log "souk admin create failed:"; cat "$WORK/admin.log" >&2; exit 1; }
bench_start "$DATA" 100

# json_get KEY... : a field of the JSON on stdin (numbers index arrays).
json_get() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$@"
}
# api METHOD PATH TOKEN [BODY]: the answer's body; fails the script on a non-2xx answer.
api() {
    local args=(-X "$1" -H 'content-type: application/json' --fail-with-body)
    [ -n "$3" ] && args+=(-H "authorization: Bearer $3")
    [ -n "${4:-}" ] && args+=(-d "$4")
    bench_curl "$2" "${args[@]}" || { log "$1 $2 failed"; exit 1; }
}
login() {
    api POST /api/v1/auth/login "" "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}" |
        json_get access_token
}
register() {
    api POST /api/v1/auth/register "" \
        "{\"email\":\"$1\",\"password\":\"$PASSWORD\",\"name\":\"Load Test\"}" | json_get id
}

log "setting up a vendor, a product and $BUYERS funded buyers"
ADMIN="$(login admin@load.example)"
OWNER="$(register vendor@load.example)"
api POST /api/v1/admin/vendors "$ADMIN" \
    "{\"name\":\"Load Goods\",\"owner_user_id\":\"$OWNER\"}" >/dev/null
VENDOR="$(login vendor@load.example)"
CATEGORY="$(api POST /api/v1/categories "$ADMIN" '{"name":"Load","parent":null}' | json_get id)"
PRODUCT="$(api POST /api/v1/products "$VENDOR" "{\"title\":\"Load Mug\",\"description\":\"A mug.\",
    \"category_id\":\"$CATEGORY\",\"brand\":\"Acme\",\"status\":\"active\",\"variants\":[{\"sku\":\"LOAD-1\",
    \"options\":{},\"price\":{\"amount\":100,\"currency\":\"EUR\"},\"weight_grams\":250}]}")"
PRODUCT_ID="$(json_get id <<<"$PRODUCT")"
VARIANT_ID="$(json_get variants 0 id <<<"$PRODUCT")"
WAREHOUSE="$(api POST /api/v1/vendor/warehouses "$VENDOR" '{"name":"Depot","code":"W-LOAD"}' |
    json_get id)"
api PUT "/api/v1/inventory/$PRODUCT_ID" "$VENDOR" "{\"version\":0,\"levels\":[{\"variant_id\":
    \"$VARIANT_ID\",\"warehouse_id\":\"$WAREHOUSE\",\"on_hand\":100000000}]}" >/dev/null

CARD='{"number":"4242424242424242","exp_month":12,"exp_year":2040,"cvc":"123"}'
TOKENS=()
for i in $(seq 1 "$BUYERS"); do
    register "buyer$i@load.example" >/dev/null
    token="$(login "buyer$i@load.example")"
    for _ in 1 2; do
        api POST /api/v1/wallets/topup "$token" \
            "{\"amount\":{\"amount\":1000000,\"currency\":\"EUR\"},\"method\":\"card\",\"card\":$CARD}" \
            >/dev/null
    done
    TOKENS+=("\"$token\"")
done
LUA_TOKENS="$(IFS=,; echo "${TOKENS[*]}")"

# Each wrk thread gets one buyer; its requests carry that buyer's token.
cat >"$WORK/buyers.lua" <<LUA
local tokens = { $LUA_TOKENS }
local threads = {}
local next_buyer = 0
function setup(thread)
    next_buyer = next_buyer % #tokens + 1
    thread:set("token", tokens[next_buyer])
    table.insert(threads, thread)
end
LUA
cat "$WORK/buyers.lua" - >"$WORK/topup.lua" <<LUA
local body = '{"amount":{"amount":100,"currency":"EUR"},"method":"card","card":$CARD}'
request = function()
    return wrk.format("POST", "/api/v1/wallets/topup",
        { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
LUA
cat "$WORK/buyers.lua" - >"$WORK/wallet.lua" <<LUA
local add = '{"product_id":"$PRODUCT_ID","variant_id":"$VARIANT_ID","quantity":1}'
local checkout = '{"payment_method":"wallet","shipping_address":{"name":"Load Buyer",'
    .. '"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"}}'
local n = 0
paid = 0
-- One connection per thread: requests alternate strictly, so every checkout finds the
-- line the request before it added.
request = function()
    n = n + 1
    local h = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
    if n % 2 == 1 then
        return wrk.format("POST", "/api/v1/cart/items", h, add)
    end
    return wrk.format("POST", "/api/v1/orders", h, checkout)
end
response = function(status, headers, body)
    if status == 201 and body:find('"payment":{', 1, true)
        and body:find('"status":"succeeded"', 1, true) then
        paid = paid + 1
    end
end
note = function(summary)
    local total = 0
    for _, t in ipairs(threads) do total = total + (t:get("paid") or 0) end
    io.write(string.format("NOTE %d wallet payments succeeded, %.0f payments/s\n",
        total, total / (summary.duration / 1e6)))
end
LUA

# "Buy now": each request is one checkout of the item given in the body, paid from the
# wallet (reservation, order, wallet payment, ledger, audit, events): one payment, one
# durable command per request, the cart untouched.
cat "$WORK/buyers.lua" - >"$WORK/buynow.lua" <<LUA
local body = '{"items":[{"product_id":"$PRODUCT_ID","variant_id":"$VARIANT_ID","quantity":1}],'
    .. '"payment_method":"wallet","shipping_address":{"name":"Load Buyer",'
    .. '"line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"}}'
paid = 0
request = function()
    return wrk.format("POST", "/api/v1/orders",
        { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
LUA
sed -n '/^response = function/,$p' "$WORK/wallet.lua" >>"$WORK/buynow.lua"

bench_table
bench_run health /health
bench_run topup /api/v1/wallets/topup "$WORK/topup.lua"
THREADS="$BUYERS" CONNECTIONS="$BUYERS" bench_run wallet /api/v1/orders "$WORK/wallet.lua"
THREADS="$BUYERS" CONNECTIONS="$BUYERS" bench_run buynow /api/v1/orders "$WORK/buynow.lua"

bench_stop
