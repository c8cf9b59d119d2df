#!/usr/bin/env bash
# bench/copykey.sh: what "written once" costs COPY in PostgreSQL alone (no ledgerd): the same
# BENCH_COPYKEY_ROWS rows (bench/genlogs.py logs, each with a queue id "<entry id>/<index>", 1000
# logs per entry) written into `logs` (migrated by ledgerd, every index it has) in one transaction
# per 2000 rows, as the storage role does, in alternating runs of two shapes:
#   unique  the per-row unique key of schema 0007, logs_queue_id_key (queue_id, timestamp), put back
#   entries no per-row key; one stored_entries row per entry run inserted in the same transaction
#           (schema 0009, what the storage role does now)
# Median of BENCH_COPYKEY_RUNS runs each, ratio entries/unique.
#
#   ./scripts/ledger bench copykey    (knobs: BENCH_COPYKEY_ROWS 200000, BENCH_COPYKEY_RUNS 3)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

ROWS=${BENCH_COPYKEY_ROWS:-200000}
RUNS=${BENCH_COPYKEY_RUNS:-3}
BATCH=2000

bench_init copykey
BENCH_RESULT_SUFFIX=-copykey
bench_start_pg
bench_start_redis
INI_STORAGE=off bench_start_ledgerd
bench_stop_ledgerd # only the migrations were needed
psql_db_pre() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_logs -v ON_ERROR_STOP=1 -qAtX -c "$1"; }
psql_db_pre "SELECT logs_ensure_partition(now())" >/dev/null

psql_db() {
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_logs \
        -v ON_ERROR_STOP=1 -qAtX "$@"
}
now_s() { date +%s.%N; }

GEN=$BENCH_TMP/logs
now=$(date +%s)
"$PY" "$LEDGER_ROOT/bench/genlogs.py" "$GEN" --project-id 1 --now "$now" --batches 20 --singles 1 \
    --span $((now % 21600 > 420 ? now % 21600 - 120 : 300)) >/dev/null
# One transaction script per shape: per 2000 rows, BEGIN, COPY (with queue ids), [stored_entries], COMMIT.
"$PY" - "$GEN/ref.copy" "$ROWS" "$BATCH" "$BENCH_TMP" <<'PYEOF'
import sys
src, rows, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = open(src, encoding="utf-8").read().splitlines()
cols = ('project_id, "timestamp", ingested_at, level, log_type, importance, environment, release, message, '
        'error_type, error_message, stack_trace, attributes, sdk_version, platform, platform_version, '
        'error_fingerprint, queue_id')
base_ms = 1765000000000
for shape in ("unique", "entries"):
    with open(f"{out}/{shape}.sql", "w", encoding="utf-8") as f:
        for start in range(0, rows, batch):
            f.write("BEGIN;\n")
            f.write(f"COPY logs ({cols}) FROM STDIN;\n")
            runs = []
            for i in range(start, min(rows, start + batch)):
                entry, idx = divmod(i, 1000)
                f.write(f"{lines[i % len(lines)]}\t{base_ms + entry}-0/{idx}\n")
            f.write("\\.\n")
            if shape == "entries":
                first, last = start // 1000, (min(rows, start + batch) - 1) // 1000
                vals = ",".join(f"(1,'{base_ms + e}-0','[0,1000)')" for e in range(first, last + 1))
                f.write(f"INSERT INTO stored_entries (project_id, stream_id, rows) VALUES {vals};\n")
            f.write("COMMIT;\n")
PYEOF

declare -A T=()
for ((run = 1; run <= RUNS; run++)); do
    for shape in unique entries; do
        psql_db -c "SET lock_timeout = '10s'; TRUNCATE logs, stored_entries; DROP INDEX IF EXISTS logs_queue_id_key" >/dev/null
        [[ $shape == unique ]] && psql_db -c 'CREATE UNIQUE INDEX logs_queue_id_key ON logs (queue_id, "timestamp")' >/dev/null
        t0=$(now_s)
        psql_db -f "$BENCH_TMP/$shape.sql" >/dev/null
        secs=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }')
        n=$(psql_db -c "SELECT count(*) FROM logs")
        ((n == ROWS)) || die "$shape: $n rows, expected $ROWS"
        T[$shape]+="$secs "
        bench_say "$(printf 'run %d  %-8s %7d rows in %d transactions: %6.2f s = %7.0f rows/s' "$run" "$shape" "$n" \
            $(((ROWS + BATCH - 1) / BATCH)) "$secs" "$(awk -v n="$n" -v s="$secs" 'BEGIN { print n / s }')")"
    done
done
# shellcheck disable=SC2086 # space-separated numbers
{
    mu=$(median ${T[unique]})
    me=$(median ${T[entries]})
}
bench_say "$(printf 'median   unique %.2f s, entries %.2f s: entries/unique time %s (load average %s)' "$mu" "$me" \
    "$(ratio "$me" "$mu")" "$(cut -d' ' -f1-3 /proc/loadavg)")"
bench_finish
