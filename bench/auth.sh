#!/usr/bin/env bash
# bench/auth.sh: the authenticated request path and the login flood (issue targets):
#   1. GET /api/v1/settings with a cached API key vs GET /health, same worker (workers = 1), same
#      wrk settings, rounds alternating; target: settings >= 0.5x the req/s of /health.
#   2. /health latency on the same worker while a login flood keeps argon2id hashing saturated;
#      target: /health p99 < 5 ms. The server is not pinned here: its hashing threads and its loop
#      must be able to run side by side, as on any multi-core box.
# Takes about 1.5 minutes.
#
#   ./scripts/ledger bench auth      (knobs: see bench/lib.sh)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

bench_init auth
bench_start_pg
bench_start_redis
bench_start_ledgerd

bench_account
KEY=$BENCH_KEY
EMAIL=$BENCH_EMAIL
PASSWORD=$BENCH_PASSWORD
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "$BENCH_LEDGERD_URL/api/v1/settings")
[[ $code == 200 ]] || die "GET /api/v1/settings with the bench key answered $code"

pin="unpinned (1 core)"
((${#BENCH_CLIENT_PIN[@]})) && pin="wrk on cpu 0, ledgerd on cpu 1"
bench_say "auth: wrk -t1 -c$BENCH_CONNECTIONS -d$BENCH_DURATION --latency, $BENCH_ROUNDS rounds alternating" \
    "after a $BENCH_WARMUP warm-up each; ledgerd workers = 1; $pin"

bench_wrk "$BENCH_LEDGERD_URL/health" "$BENCH_WARMUP" >/dev/null
bench_wrk "$BENCH_LEDGERD_URL/api/v1/settings" "$BENCH_WARMUP" -H "X-API-Key: $KEY" >/dev/null

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for what in health settings; do
        if [[ $what == health ]]; then
            out=$(bench_wrk "$BENCH_LEDGERD_URL/health")
        else
            out=$(bench_wrk "$BENCH_LEDGERD_URL/api/v1/settings" "$BENCH_DURATION" -H "X-API-Key: $KEY")
        fi
        bench_round "$what" "$round" "$out"
    done
done
bench_medians health settings
bench_say "ratio settings/health req/s: $(ratio "${BENCH_MED[settings.rps]}" "${BENCH_MED[health.rps]}") (target >= 0.5)"

# Login flood: 32 connections posting correct credentials (each costs one argon2id verify, or a
# fast 503 once the worker's hash queue is full) while 4 connections measure /health.
cat >"$BENCH_TMP/login.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email": "$EMAIL", "password": "$PASSWORD"}'
EOF
ledgerd_pid=$BENCH_LEDGERD_PID
taskset -p -c 0-$(($(nproc) - 1)) "$ledgerd_pid" >/dev/null 2>&1 || true
for t in /proc/"$ledgerd_pid"/task/*; do taskset -p -c 0-$(($(nproc) - 1)) "${t##*/}" >/dev/null 2>&1 || true; done
flood_secs=${BENCH_DURATION%s}
timeout $((flood_secs + 30)) wrk -t1 -c32 -d$((flood_secs + 2))s -s "$BENCH_TMP/login.lua" \
    "$BENCH_LEDGERD_URL/api/v1/accounts/login" >"$BENCH_TMP/flood.out" 2>&1 &
flood=$!
sleep 1
out=$(BENCH_CONNECTIONS=4 bench_wrk "$BENCH_LEDGERD_URL/health" "$BENCH_DURATION")
wait "$flood" || true
read -r r a b errs <<<"$out"
logins=$(awk '/^Requests\/sec:/ { print $2 }' "$BENCH_TMP/flood.out")
non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$BENCH_TMP/flood.out")
bench_say "$(printf 'login flood (32 conns, %s login answers/s, %s of them non-2xx: queue full -> 503):' \
    "${logins:-?}" "${non2xx:-0}")"
bench_say "$(printf '  /health during flood: %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (target p99 < 5 ms)' \
    "$r" "$a" "$b")"
bench_finish
