#!/usr/bin/env bash
# bench/alert_marks.sh: what would it cost the write path to record which (project, minute) each
# batch of logs touched? (issue 20: per-minute rollups for the alert evaluator need to know which
# minutes to recompute, including minutes that receive logs late.) PostgreSQL's side only, shaped
# like the storage role: the same 200,000 rows (those of bench copy_format) loaded as COPY batches
# of 2,000 rows (batch_max_logs), one transaction each, into the real schema (every index of the
# write path, the open leaf), three ways, alternating, the table emptied between loads:
#   plain    the COPY alone (today)
#   trigger  an AFTER INSERT ... FOR EACH STATEMENT trigger on logs with a transition table that
#            inserts the batch's distinct (project_id, minute) into alert_dirty
#   explicit the writer inserts the marks itself (their values computed by the writer, here the
#            distinct minutes of the batch), in the same transaction after the COPY
# Medians of BENCH_ROUNDS rounds; ratios against plain.
#   ./scripts/ledger bench alert_marks   (knobs: BENCH_MARK_ROWS 200000, BENCH_MARK_SPREAD_S 1200: the
#   seconds the rows' timestamps spread over, so each batch touches that many minutes of 10 projects)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

ROWS=${BENCH_MARK_ROWS:-200000}
SPREAD=${BENCH_MARK_SPREAD_S:-1200}
BATCH=2000
bench_init alert_marks
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
# 10 projects, timestamps spread over the last SPREAD seconds (each batch touches every minute of each)
psql_db "CREATE TABLE copy_src AS
  SELECT (1 + g % 10)::bigint AS project_id, now() - make_interval(secs => (g % $SPREAD) + g / 1000000.0) AS \"timestamp\", now() AS ingested_at,
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
psql_db "CREATE TABLE alert_dirty (id bigserial PRIMARY KEY, project_id bigint NOT NULL, minute timestamptz NOT NULL)"
psql_db "CREATE FUNCTION bench_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS \$fn\$
BEGIN
    INSERT INTO alert_dirty (project_id, minute)
    SELECT DISTINCT project_id, date_trunc('minute', \"timestamp\") FROM new_rows;
    RETURN NULL;
END \$fn\$"
chmod 777 "$BENCH_TMP"
mkdir -p "$BENCH_TMP/batches"
chmod 777 "$BENCH_TMP/batches"
nb=$(((ROWS + BATCH - 1) / BATCH))
for ((i = 0; i < nb; i++)); do
    psql_db "COPY (SELECT $COLS FROM copy_src ORDER BY ctid OFFSET $((i * BATCH)) LIMIT $BATCH) TO '$BENCH_TMP/batches/$i.txt'"
done
# the marks of each batch as the writer would send them (it knows each row's project and time)
marks() { # marks I: "{p,p,..}" "{t,t,..}" of batch I
    psql_db "SELECT '{' || string_agg(project_id::text, ',') || '}', '{' || string_agg('\"' || m::text || '\"', ',') || '}'
             FROM (SELECT DISTINCT project_id, date_trunc('minute', \"timestamp\") AS m FROM copy_src
                   WHERE ctid IN (SELECT ctid FROM copy_src ORDER BY ctid OFFSET $(($1 * BATCH)) LIMIT $BATCH)) d" | tr '|' ' '
}
{
    for ((i = 0; i < nb; i++)); do
        read -r p t < <(marks "$i")
        echo "BEGIN; COPY logs ($COLS) FROM '$BENCH_TMP/batches/$i.txt'; INSERT INTO alert_dirty (project_id, minute) SELECT unnest('$p'::bigint[]), unnest('$t'::timestamptz[]); COMMIT;"
    done
} | tr '\n' ' ' | sed 's/; /;\n/g' >"$BENCH_TMP/explicit.sql"
{
    for ((i = 0; i < nb; i++)); do
        echo "BEGIN; COPY logs ($COLS) FROM '$BENCH_TMP/batches/$i.txt'; COMMIT;"
    done
} >"$BENCH_TMP/plain.sql"
bench_say "$ROWS rows in $nb batches of $BATCH; marks per batch: $(marks 0 | awk '{ n = gsub(/,/, ",", $1); print n + 1 }')"

load() { # load plain|trigger|explicit: ms of the whole load into an empty logs
    local script=$BENCH_TMP/plain.sql t0 t1
    psql_db "TRUNCATE logs, alert_dirty; DROP TRIGGER IF EXISTS bench_mark ON logs" >/dev/null
    case $1 in
        trigger) psql_db "CREATE TRIGGER bench_mark AFTER INSERT ON logs REFERENCING NEW TABLE AS new_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION bench_mark_dirty()" ;;
        explicit) script=$BENCH_TMP/explicit.sql ;;
    esac
    psql_db "CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_logs \
        -v ON_ERROR_STOP=1 -qAtX -f "$script" >/dev/null
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000000)) $(psql_db "SELECT count(*) FROM alert_dirty")"
}
declare -A MS
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for f in plain trigger explicit; do
        read -r ms n < <(load "$f")
        MS[$f]+="$ms "
        bench_say "round $round  $f  $ms ms  ($(awk -v r="$ROWS" -v m="$ms" 'BEGIN { printf "%.0f", r / m * 1000 }') rows/s, $n marks)"
    done
done
# shellcheck disable=SC2086 # space-separated numbers
p=$(median ${MS[plain]}) t=$(median ${MS[trigger]}) e=$(median ${MS[explicit]})
bench_say "COPY batches into logs, median of $BENCH_ROUNDS: plain $p ms, trigger $t ms ($(ratio "$t" "$p")), explicit marks $e ms ($(ratio "$e" "$p")); load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
