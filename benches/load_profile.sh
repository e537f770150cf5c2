#!/usr/bin/env bash
# Authenticated load benchmark: a release `souk serve` on a throwaway data dir; one
# customer registers and logs in, then /health and `GET /api/v1/users/profile` with that
# customer's access token (signature check, verified-token cache, the session read every
# request makes, the profile read) run with wrk in the same run, so the profile's rate
# reads as a ratio of /health's (target: at least 0.5). The harness is benches/lib.sh.
#
# Usage: benches/load_profile.sh
#        CONNECTIONS=64 DURATION=20s THREADS=2 benches/load_profile.sh
#        SKIP_BUILD=1 benches/load_profile.sh   (use target/release/souk as it is)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bench_need_wrk
bench_build
bench_workdir
bench_start "$WORK/data" 100

EMAIL="load-profile@example.com"
PASSWORD="correct horse battery staple"
JSON=(-H 'content-type: application/json')
code="$(bench_curl /api/v1/auth/register "${JSON[@]}" -o /dev/null -w '%{http_code}' \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Load Test\"}")"
[ "$code" = "201" ] || { log "register answered $code"; exit 1; }
TOKEN="$(bench_curl /api/v1/auth/login "${JSON[@]}" \
    -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')"
[ -n "$TOKEN" ] || { log "login gave no access token"; exit 1; }
code="$(bench_curl /api/v1/users/profile -H "authorization: Bearer $TOKEN" -o /dev/null \
    -w '%{http_code}')"
[ "$code" = "200" ] || { log "profile answered $code"; exit 1; }

# Access tokens live 15 minutes: far longer than a run.
cat >"$WORK/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA

bench_table
bench_run health /health
bench_run profile /api/v1/users/profile "$WORK/auth.lua"

bench_stop
