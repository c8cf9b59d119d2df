#!/usr/bin/env bash
# bench/http.sh: the bare HTTP path of ledgerd (GET /health, 1 worker) against nginx (`return 204`,
# 1 worker) with the same wrk settings, rounds alternating, plus ledgerd's and nginx's RSS idle and
# with BENCH_IDLE_CONNS (10000) idle keep-alive connections. Takes about 1.5 minutes.
#
#   ./scripts/ledger bench http      (knobs: see bench/lib.sh; BENCH_IDLE_CONNS)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}

bench_init http
bench_start_pg
bench_start_redis
INI_SERVER_EXTRA="max_connections = 20000" bench_start_ledgerd
bench_start_nginx
rss_start=$(bench_rss "$BENCH_LEDGERD_PID")

pin="unpinned (1 core)"
((${#BENCH_CLIENT_PIN[@]})) && pin="wrk on cpu 0, servers on cpu 1"
bench_say "http: wrk -t1 -c$BENCH_CONNECTIONS -d$BENCH_DURATION --latency, $BENCH_ROUNDS rounds alternating" \
    "after a $BENCH_WARMUP warm-up each; ledgerd GET /health (workers = 1), nginx return 204" \
    "(worker_processes 1); $pin"

bench_wrk "$BENCH_LEDGERD_URL/health" "$BENCH_WARMUP" >/dev/null
bench_wrk "$BENCH_NGINX_URL/health" "$BENCH_WARMUP" >/dev/null

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for srv in ledgerd nginx; do
        if [[ $srv == ledgerd ]]; then url=$BENCH_LEDGERD_URL/health; else url=$BENCH_NGINX_URL/health; fi
        bench_round "$srv" "$round" "$(bench_wrk "$url")"
    done
done
bench_medians ledgerd nginx
bench_say "ratio ledgerd/nginx: req/s $(ratio "${BENCH_MED[ledgerd.rps]}" "${BENCH_MED[nginx.rps]}")," \
    "p50 $(ratio "${BENCH_MED[ledgerd.p50]}" "${BENCH_MED[nginx.p50]}")," \
    "p99 $(ratio "${BENCH_MED[ledgerd.p99]}" "${BENCH_MED[nginx.p99]}")"

# Memory: RSS idle, then with IDLE_CONNS keep-alive connections that each served one request.
nginx_pids() {
    printf '%s\n' "$BENCH_NGINX_PID"
    pgrep -P "$BENCH_NGINX_PID" || true
}
declare -A mem=()
for srv in ledgerd nginx; do
    if [[ $srv == ledgerd ]]; then
        pids=("$BENCH_LEDGERD_PID")
        port=$BENCH_LEDGERD_PORT
    else
        mapfile -t pids < <(nginx_pids)
        port=$BENCH_NGINX_PORT
    fi
    idle=$(bench_rss "${pids[@]}")
    ready=$(bench_hold_conns "$srv" "$port" "$IDLE_CONNS")
    sleep 1
    held=$(bench_rss "${pids[@]}")
    released=$(bench_release_conns "$srv")
    open=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$ready")
    per=$(awk -v h="$held" -v i="$idle" -v n="$open" 'BEGIN { printf "%.1f", n ? (h - i) / n : 0 }')
    extra=
    [[ $srv == ledgerd ]] && extra=" (at start: $rss_start kB)"
    [[ $srv == nginx ]] && extra=" (master + worker)"
    mem[$srv.idle]=$idle
    mem[$srv.held]=$held
    bench_say "$(printf 'rss      %-7s  idle %6d kB, with %s keep-alive conns %7d kB = %s kB/conn%s; %s; on release %s' \
        "$srv" "$idle" "$open" "$held" "$per" "$extra" "$ready" "$released")"
done
bench_say "rss ratio ledgerd/nginx: idle $(ratio "${mem[ledgerd.idle]}" "${mem[nginx.idle]}")," \
    "with $IDLE_CONNS conns $(ratio "${mem[ledgerd.held]}" "${mem[nginx.held]}")"

bench_finish
