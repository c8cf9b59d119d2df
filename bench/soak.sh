#!/usr/bin/env bash
# bench/soak.sh DURATION_SECONDS [SAMPLE_SECONDS]: a mixed soak (bench/soak.py) against one
# ledgerd worker with storage on: ingest batches, queries, reconnecting notification streams and
# logins, sampling RSS, open descriptors, Redis memory and the queue depth every SAMPLE seconds
# (10), then the slope of each after the warm-up. The issue's run is an hour: `bench soak 3600`.
#
#   ./scripts/ledger bench soak 120
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

DURATION=${1:-${BENCH_SOAK_SECONDS:-600}}
SAMPLE=${2:-10}
[[ $DURATION =~ ^[0-9]+$ && $SAMPLE =~ ^[0-9]+$ ]] || die "usage: bench soak DURATION_SECONDS [SAMPLE_SECONDS]"

bench_init soak
bench_start_pg
bench_start_redis
bench_start_ledgerd
bench_account
bench_say "soak: ${DURATION} s, samples every ${SAMPLE} s, ledgerd ${BENCH_BIN#"$LEDGER_ROOT"/} (pid $BENCH_LEDGERD_PID)"
bench_say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"${BENCH_CLIENT_PIN[@]}" "$PY" "$LEDGER_ROOT/bench/soak.py" "$BENCH_LEDGERD_PORT" "$BENCH_LEDGERD_PID" \
    "$BENCH_REDIS_PORT" "$BENCH_KEY" "$BENCH_PID" "$BENCH_EMAIL" "$BENCH_PASSWORD" "$DURATION" "$SAMPLE" |
    tee -a "$BENCH_REPORT"
kill -0 "$BENCH_LEDGERD_PID" || die "ledgerd died during the soak"
bench_say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
