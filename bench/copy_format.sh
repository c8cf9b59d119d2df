#!/usr/bin/env bash
# bench/copy_format.sh: would binary COPY pay for the storage role? (issue 22: "binary COPY if it
# beats text"). PostgreSQL's side only: the same rows, shaped like the ingest bench's logs (message,
# error fields on one in ten, a JSON attributes object, 64-hex fingerprint, queue id), are written
# by PostgreSQL itself as a text and as a binary COPY file, then loaded with
#   COPY logs (<the storage role's columns>) FROM '<file>' [WITH (FORMAT binary)]
# into the real schema (every index of the write path, the open leaf), alternating formats, the
# table emptied between loads. Medians of BENCH_ROUNDS rounds; the ratio is what binary would save
# of the COPY, before the encoder's own cost on the ledgerd side.
#   ./scripts/ledger bench copy_format   (knob: BENCH_COPY_ROWS 500000)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

ROWS=${BENCH_COPY_ROWS:-500000}
bench_init copy_format
bench_start_pg
bench_start_redis
INI_STORAGE=off bench_start_ledgerd # applies the schema
bench_stop_ledgerd

psql_db() { # psql_db SQL
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_logs \
        -v ON_ERROR_STOP=1 -qAtX -c "$1"
}
COLS='project_id, "timestamp", ingested_at, level, log_type, importance, environment, release, message, error_type,
    error_message, stack_trace, attributes, sdk_version, platform, platform_version, error_fingerprint, queue_id'
psql_db "SELECT logs_ensure_partition(now())" >/dev/null
psql_db "CREATE TABLE copy_src AS
  SELECT 1::bigint AS project_id, now() - make_interval(secs => g / 1000.0) AS \"timestamp\", now() AS ingested_at,
         (ARRAY['info','info','info','warning','error'])[1 + g % 5]::varchar(20) AS level,
         (ARRAY['logger','endpoint','exception'])[1 + g % 3]::varchar(30) AS log_type,
         'standard'::varchar(20) AS importance, 'production'::varchar(20) AS environment, '1.4.2'::varchar(100) AS release,
         'GET /api/orders/' || g || ' handled for user ' || (g::bigint * 7919 % 100000) || ' in ' || (g % 500) || ' ms' AS message,
         CASE WHEN g % 10 = 0 THEN 'ValueError' END::varchar(255) AS error_type,
         CASE WHEN g % 10 = 0 THEN 'invalid literal for int() with base 10: ''' || g || '''' END AS error_message,
         CASE WHEN g % 10 = 0 THEN 'Traceback (most recent call last):\n  File \"app.py\", line 42, in handler\n    n = int(v)' END AS stack_trace,
         jsonb_build_object('request_id', md5(g::text), 'user_id', g::bigint * 7919 % 100000, 'region', 'eu-west-1',
             'endpoint', jsonb_build_object('method', 'GET', 'path', '/api/orders', 'status_code', 200,
                                           'duration_ms', (g % 500) / 3.0)) AS attributes,
         'ledger-python/1.0.0'::varchar(20) AS sdk_version, 'python'::varchar(50) AS platform,
         '3.11.7'::varchar(50) AS platform_version,
         CASE WHEN g % 10 = 0 THEN md5(g::text) || md5((g + 1)::text) END::char(64) AS error_fingerprint,
         '1765000000000-' || g AS queue_id
  FROM generate_series(1, $ROWS) g"
chmod 777 "$BENCH_TMP"
psql_db "COPY copy_src ($COLS) TO '$BENCH_TMP/rows.txt'"
psql_db "COPY copy_src ($COLS) TO '$BENCH_TMP/rows.bin' WITH (FORMAT binary)"
bench_say "$ROWS rows: text $(stat -c %s "$BENCH_TMP/rows.txt") bytes, binary $(stat -c %s "$BENCH_TMP/rows.bin") bytes"

load() { # load text|binary: ms of one COPY into an empty logs
    local opt='' file=$BENCH_TMP/rows.txt t0 t1
    if [[ $1 == binary ]]; then
        opt='WITH (FORMAT binary)'
        file=$BENCH_TMP/rows.bin
    fi
    psql_db "TRUNCATE logs; CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    psql_db "COPY logs ($COLS) FROM '$file' $opt" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
declare -A MS
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for f in text binary; do
        ms=$(load "$f")
        MS[$f]+="$ms "
        bench_say "round $round  $f  $ms ms  ($(awk -v r="$ROWS" -v m="$ms" 'BEGIN { printf "%.0f", r / m * 1000 }') rows/s)"
    done
done
# shellcheck disable=SC2086 # space-separated numbers
t=$(median ${MS[text]}) b=$(median ${MS[binary]})
bench_say "COPY into logs, median of $BENCH_ROUNDS: text $t ms, binary $b ms, binary/text $(ratio "$b" "$t"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
