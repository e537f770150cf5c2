# Shared harness of the load scripts (benches/load*.sh): build the release binary, start
# a throwaway `souk serve` on a free port, wait until it is ready, drive endpoints over
# HTTPS with wrk and print one table row per endpoint, /health first so the others read
# as a ratio of it. Sourced, never run:
#
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"          # cds to the repository root
#   bench_need_wrk
#   bench_build                          # cargo build --release --bin souk (SKIP_BUILD=1 skips)
#   bench_workdir                        # WORK: temp dir, removed (server stopped) on exit
#   bench_start "$WORK/data"             # sets SERVER_PID and URL
#   bench_table
#   bench_run health /health
#   bench_run profile /api/v1/users/profile "$WORK/auth.lua"   # a wrk script of your own
#   bench_stop
#
# Knobs every script shares: CONNECTIONS, DURATION, THREADS, WARMUP, SKIP_BUILD, and
# BENCH_BIN (another souk binary to drive, e.g. target/debug/souk for a smoke run).

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-20s}"
THREADS="${THREADS:-2}"
WARMUP="${WARMUP:-2s}"
BIN="${BENCH_BIN:-target/release/souk}"
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
WORK=""
SERVER_PID=""
URL=""
BASE_RPS=""

log() { printf '%s\n' "$*" >&2; }

# Installs wrk from apt if it is missing.
bench_need_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    log "installing wrk"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
    }
}

# Builds the release binary, then runs each extra argument as a command (e.g.
# "cargo bench --quiet --bench catalog_demo --no-run"); nothing at all with SKIP_BUILD set.
bench_build() {
    if [ -n "${SKIP_BUILD:-}" ]; then return 0; fi
    if [ -z "${BENCH_BIN:-}" ]; then
        log "building release binaries"
        cargo build --release --quiet --bin souk
    fi
    local extra
    for extra in "$@"; do
        $extra
    done
}

# WORK: a fresh temp dir; on exit the server is stopped and the dir removed.
bench_workdir() {
    WORK="$(mktemp -d)"
    trap bench_cleanup EXIT
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
    -- A script may define note(summary) to print more lines ("NOTE ..."); see bench_run.
    if note then note(summary) end
end
LUA
}

bench_cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

# Starts `souk serve` on data dir $1 and a free port; waits up to $2 tenths of a second
# (default 300) for its address. Sets SERVER_PID and URL. The server runs as in
# production (access log to a file nobody reads) except that the per-address rate limit
# is lifted: every wrk connection comes from 127.0.0.1. Export further SOUK_* variables
# before calling to change its configuration.
bench_start() {
    local data="$1" tries="${2:-300}"
    (
        cd "$WORK"
        export SOUK_HTTP__RATE_LIMIT__PER_SECOND=100000000
        export SOUK_HTTP__RATE_LIMIT__BURST=100000000
        exec "$BIN" serve --data "$data" --listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/stderr"
    ) &
    SERVER_PID=$!
    URL=""
    local _
    for _ in $(seq 1 "$tries"); do
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
}

# curl against the server (its self-signed certificate accepted): a path, then curl's
# own options, e.g. bench_curl /api/v1/auth/login -H 'content-type: application/json' -d '{…}'
bench_curl() {
    local path="$1"
    shift
    curl -sk --max-time 30 "$@" "$URL$path"
}

# The header of the result table.
bench_table() {
    printf '%-12s %12s %10s %10s %8s %8s\n' endpoint "req/s" "p50 ms" "p99 ms" errors "vs first"
}

# Drives $URL$2 with wrk for DURATION after a WARMUP run and prints a row: requests/s,
# p50/p99 latency, errors (socket errors and non-2xx/3xx answers) and the ratio to the
# first row. $3, optional, is a wrk Lua script (request/headers); the report is appended,
# and it calls the script's own `note(summary)` if there is one: each line it writes
# starting with "NOTE " is printed under the row. THREADS/CONNECTIONS may be set per call.
bench_run() {
    local name="$1" path="$2" script="${3:-}"
    local run="$WORK/run-$name.lua"
    if [ -n "$script" ]; then
        cat "$script" "$WORK/report.lua" >"$run"
    else
        cp "$WORK/report.lua" "$run"
    fi
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$run" "$URL$path" >/dev/null 2>&1 || true
    local out rps p50 p99 errs non2xx
    out="$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$run" "$URL$path")"
    read -r _ rps p50 p99 errs non2xx <<<"$(grep '^RESULT ' <<<"$out")"
    if [ -z "$BASE_RPS" ]; then BASE_RPS="$rps"; fi
    local ratio
    ratio="$(awk -v a="$rps" -v b="$BASE_RPS" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    printf '%-12s %12s %10s %10s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$((errs + non2xx))" "$ratio"
    grep '^NOTE ' <<<"$out" | sed "s/^NOTE /  $name: /" || true
}

# Waits (up to 2 minutes) until search answers: it is 503 until the index is built from
# the catalog. Prints how long after $1 (a `date +%s.%N` stamp) it became ready.
bench_wait_search() {
    local started="$1" code="" _
    log "waiting for the search index"
    for _ in $(seq 1 1200); do
        code="$(bench_curl "/api/v1/search?q=mug" -o /dev/null -w '%{http_code}' || true)"
        [ "$code" = "200" ] && break
        sleep 0.1
    done
    [ "$code" = "200" ] || { log "search never became ready"; exit 1; }
    printf 'index ready %.1f s after start\n' \
        "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
}

# The server's resident memory now and at its peak.
bench_memory() {
    printf 'memory: %s, peak %s\n' \
        "$(grep VmRSS "/proc/$SERVER_PID/status" | awk '{print $2, $3}')" \
        "$(grep VmHWM "/proc/$SERVER_PID/status" | awk '{print $2, $3}')"
}

# Stops the server gracefully (SIGTERM: drain, flush the relay, close the stores).
bench_stop() {
    log "stopping server"
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}
