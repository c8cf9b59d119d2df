#!/usr/bin/env bash
# bench/sdk.sh: the Python SDK (sdk/python, issue 19 targets), loopback only, about 1-2 minutes:
#   1. log_info: median µs per call in the calling thread, the sender running against ledgerd
#      (target < 5 µs);
#   2. middleware overhead per request, FastAPI (ASGI) and Flask (WSGI), the same app called directly
#      with and without the middleware, alternating rounds in one process; medians (target < 50 µs);
#   3. one process logging BENCH_SDK_RATE (50,000) logs/s for BENCH_SDK_SECONDS (5) into ledgerd
#      (workers = 1, storage role off: the queue is what 202 means): the SDK's buffer must stay flat
#      (max in the second half no higher than in the first, far below max_buffer_size);
#   4. a dead server: logging as fast as possible for BENCH_SDK_DEAD_SECONDS (5); the buffer stays at
#      max_buffer_size (10,000), memory flat, the rest counted as dropped.
#
#   ./scripts/ledger bench sdk   (knobs: BENCH_SDK_RATE, BENCH_SDK_SECONDS, BENCH_SDK_DEAD_SECONDS,
#                                 BENCH_SDK_ROUNDS (middleware rounds, 5), BENCH_SDK_PHASES
#                                 "call middleware throughput dead"; see bench/lib.sh)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

RATE=${BENCH_SDK_RATE:-50000}
SECONDS_RUN=${BENCH_SDK_SECONDS:-5}
DEAD_SECONDS=${BENCH_SDK_DEAD_SECONDS:-5}
SDKPY=$LEDGER_ROOT/bench/sdk_bench.py
PHASES=" ${BENCH_SDK_PHASES:-call middleware throughput dead} "
phase() { [[ $PHASES == *" $1 "* ]]; }

bench_init sdk
bench_start_pg
bench_start_redis
INI_STORAGE=off INI_INGEST_EXTRA="queue_max_depth = 1000000000" bench_start_ledgerd
bench_account

# run_phase ARGS...: the bench script on the client core, bounded; echoes its lines into the report.
run_phase() {
    local out
    out=$(timeout 300 "${BENCH_CLIENT_PIN[@]}" "$PY" "$SDKPY" "$@") || die "sdk_bench.py $1 failed"
    while IFS= read -r line; do bench_say "$line"; done <<<"$out"
}

if phase call; then
    bench_say "== sdk: log_info in the calling thread (target < 5 us median)"
    run_phase call "$BENCH_LEDGERD_URL" "$BENCH_KEY"
fi
if phase middleware; then
    bench_say "== sdk: middleware overhead per request (target < 50 us median)"
    run_phase middleware
fi
if phase throughput; then
    bench_say "== sdk: one process at $RATE logs/s for ${SECONDS_RUN}s into ledgerd (target: buffer flat)"
    run_phase throughput "$BENCH_LEDGERD_URL" "$BENCH_KEY" "$RATE" "$SECONDS_RUN"
fi
if phase dead; then
    bench_say "== sdk: dead server for ${DEAD_SECONDS}s (max_buffer_size 10000)"
    run_phase dead "$DEAD_SECONDS"
fi
bench_say "ledgerd: $(grep -c 'level=error' "$BENCH_TMP/ledgerd.log" || true) error lines in its log"

# Like bench_finish, but in its own file: bench/results/<date>-<commit>-sdk.txt.
commit=$(git -C "$LEDGER_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
dirty=
[[ $commit != nogit ]] && ! git -C "$LEDGER_ROOT" diff --quiet HEAD -- 2>/dev/null && dirty=+dirty
mkdir -p "$LEDGER_ROOT/bench/results"
RESULT=$LEDGER_ROOT/bench/results/$(date -u +%Y-%m-%d)-$commit-sdk.txt
{
    printf '=== bench sdk  %s  commit %s%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$dirty"
    printf 'machine: nproc %s, cpu "%s", kernel %s, memory %s MiB\n' "$(nproc)" \
        "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
        "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
    cat "$BENCH_REPORT"
    printf '(took %ss)\n\n' "$(($(date +%s) - BENCH_START))"
} >>"$RESULT"
echo "bench: results appended to ${RESULT#"$LEDGER_ROOT"/}"
