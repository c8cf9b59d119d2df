#!/usr/bin/env bash
# bench/abuse.sh: abuse cases against one ledgerd worker on loopback (bench/abuse.py): slowloris
# on headers and on bodies, unauthenticated bodies, gzip bombs, many half-open connections,
# oversized everything, slow SSE readers, reconnect storms. For each: ledgerd's peak RSS and the
# latency of a well-behaved client (GET /health, 20/s) during it.
#
#   ./scripts/ledger bench abuse   (knobs: BENCH_ABUSE_SECONDS 5 per case, BENCH_ABUSE_CONNS 1000;
#                                   ABUSE_CASES=name,name to run some; the issue's 10,000
#                                   half-open connections: BENCH_ABUSE_CONNS=10000)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

SECS=${BENCH_ABUSE_SECONDS:-5}
CONNS=${BENCH_ABUSE_CONNS:-1000}

bench_init abuse
bench_start_pg
bench_start_redis
INI_SERVER_EXTRA=$'max_connections = '$((CONNS + 1000))$'\nheader_timeout_ms = 10000\nbody_timeout_ms = 10000' \
    bench_start_ledgerd
bench_account
bench_say "abuse: ledgerd ${BENCH_BIN#"$LEDGER_ROOT"/} (pid $BENCH_LEDGERD_PID), ${SECS} s per case"
"${BENCH_CLIENT_PIN[@]}" "$PY" "$LEDGER_ROOT/bench/abuse.py" "$BENCH_LEDGERD_PORT" "$BENCH_LEDGERD_PID" \
    "$BENCH_KEY" "$BENCH_PID" "$SECS" "$CONNS" | tee -a "$BENCH_REPORT"
kill -0 "$BENCH_LEDGERD_PID" || die "ledgerd died during the abuse cases"
bench_say "ledgerd still alive; RSS after: $(($(bench_rss "$BENCH_LEDGERD_PID") / 1024)) MiB"
bench_finish
