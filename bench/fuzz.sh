#!/usr/bin/env bash
# Long fuzz runs: every libFuzzer harness (or the ones named) run one at a time to a number of
# executions, with ASan + UBSan, over the seed corpus and what earlier runs found. Reports per
# harness the executions, the time, the corpus size, the coverage and the findings, and appends them
# to bench/results/<date>-<sha>-fuzz.txt.
#
#   ./scripts/ledger bench fuzz [TARGET...]
#
# Knobs: FUZZ_RUNS (10000000 executions per harness), FUZZ_MAX_SECONDS (7200, a cap per harness
# whatever the count reached), FUZZ_NICE (19). A crash stops that harness, saves the input under
# var/fuzz/crashes and is reported as a finding; the other harnesses still run.
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

FUZZ_RUNS=${FUZZ_RUNS:-10000000}
FUZZ_MAX_SECONDS=${FUZZ_MAX_SECONDS:-7200}
FUZZ_NICE=${FUZZ_NICE:-19}

BENCH_NAME=fuzz
BENCH_RESULT_SUFFIX=-fuzz
BENCH_TMP=$(mktemp -d /tmp/ledger-bench-fuzz.XXXXXX)
BENCH_REPORT=$BENCH_TMP/report.txt
: >"$BENCH_REPORT"
trap 'rm -rf "${BENCH_TMP:?}"' EXIT
BENCH_START=$(date +%s)

command -v clang >/dev/null || die "bench fuzz: clang is not installed (it is in LEDGER_PACKAGES)"
build_fuzz

targets=("$@")
((${#targets[@]})) || targets=("${FUZZ_TARGETS[@]}")

bench_say "fuzz: libFuzzer + ASan + UBSan (clang $(clang -dumpversion)), goal $FUZZ_RUNS executions per harness, cap ${FUZZ_MAX_SECONDS} s, nice $FUZZ_NICE"
bench_say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_say "$(printf '%-10s %12s %8s %10s %8s %8s  %s' harness executions seconds exec/s corpus cov findings)"
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$LEDGER_VAR/fuzz/$t" "$LEDGER_VAR/fuzz/crashes"
    log=$BENCH_TMP/$t.log
    t0=$(date +%s)
    rc=0
    (cd "$LEDGER_ROOT" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        nice -n "$FUZZ_NICE" timeout $((FUZZ_MAX_SECONDS + 120)) \
        "build/fuzz/test/fuzz/fuzz_$t" -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_MAX_SECONDS" \
        -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$LEDGER_VAR/fuzz/crashes/$t-" "$LEDGER_VAR/fuzz/$t" "test/fuzz/corpus/$t" \
        >"$log" 2>&1) || rc=$?
    secs=$(($(date +%s) - t0))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1 || true)
    # The last status line ("#N DONE cov: C ft: F corp: K/...") carries coverage and corpus size.
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
    if ((rc == 0)); then
        findings=none
    else
        failed=1
        findings="CRASH rc $rc: $(grep -m1 -o 'ERROR: [A-Za-z]*Sanitizer: [a-z-]*\|runtime error: .*\|ERROR: libFuzzer: [a-z-]*' "$log" | sed "s#$LEDGER_ROOT/##g" || echo unknown)"
        tail -n 60 "$log" | sed "s#$LEDGER_ROOT/##g" >&2
    fi
    rate=0
    ((secs > 0)) && rate=$((${execs:-0} / secs))
    bench_say "$(printf '%-10s %12s %8s %10s %8s %8s  %s' "$t" "${execs:-?}" "$secs" "$rate" "${corp:-?}" "${cov:-?}" "$findings")"
done
bench_say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
exit $failed
