# shellcheck shell=bash
# The logs data set of the query and web benches. Sourced by bench/query.sh and bench/web.sh after
# bench/lib.sh, with PostgreSQL started (bench_start_pg) and the schema migrated (bench_start_ledgerd).
#
# bench_load_logs ROWS PROJECTS PIDS: ROWS logs of the projects PIDS (comma-separated, PROJECTS of
# them) over the 30 days before now, written with one INSERT ... SELECT generate_series per
# million rows. Deterministic (every value is a function of the row number): ~100-byte messages,
# 5 attributes, 10% exceptions (with a stack trace), 20% endpoint logs, 3% error/critical, the
# word "zanzibar" in 0.1% of messages. Prints T0, the Unix second the data set ends at.

bench_psql() { # bench_psql DB SQL
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}

bench_logs_sql() { # bench_logs_sql FROM TO ROWS PROJECTS PIDS T0: rows FROM..TO of the data set
    cat <<EOF
INSERT INTO logs (project_id, "timestamp", ingested_at, level, log_type, importance, environment, release,
                  message, error_type, error_message, stack_trace, attributes, sdk_version, platform,
                  platform_version, error_fingerprint)
SELECT p[1 + g % $4], ts, ts + interval '2 seconds',
       CASE WHEN g % 100 < 2 THEN 'error' WHEN g % 100 < 3 THEN 'critical' WHEN g % 100 < 15 THEN 'warning'
            WHEN g % 100 < 30 THEN 'debug' ELSE 'info' END,
       CASE WHEN g % 10 = 0 THEN 'exception' WHEN g % 10 < 3 THEN 'endpoint' ELSE 'logger' END,
       (ARRAY['standard', 'standard', 'high', 'low'])[1 + g % 4],
       (ARRAY['production', 'staging'])[1 + g % 2], '1.' || (g % 7) || '.0',
       w[1 + (g * 7) % 40] || ' ' || w[1 + (g * 13) % 40] || ' ' || v[1 + (g * 3) % 15] || ' for ' ||
           w[1 + (g * 17) % 40] || ' id=' || g || ' after ' || (g % 997) || ' ms on worker ' || (g % 31) ||
           CASE WHEN (g / 5) % 1000 = 7 THEN ' zanzibar' ELSE '' END,
       CASE WHEN g % 10 = 0 THEN (ARRAY['ValueError', 'KeyError', 'TimeoutError'])[1 + g % 3] END,
       CASE WHEN g % 10 = 0 THEN 'invalid ' || w[1 + g % 40] || ' ' || (g % 100) END,
       CASE WHEN g % 10 = 0 THEN 'Traceback (most recent call last):' || repeat(E'\n  File "/app/' ||
           w[1 + g % 40] || '.py", line ' || (g % 300) || ', in handler', 6) END,
       jsonb_build_object('user_id', g % 20011, 'region', (ARRAY['eu', 'us', 'ap', 'sa'])[1 + g % 4],
           'request_id', md5(g::text), 'tenant', 't' || (g % 97),
           'endpoint', CASE WHEN g % 10 IN (1, 2) THEN jsonb_build_object('method',
               (ARRAY['GET', 'POST', 'PUT'])[1 + g % 3], 'path', '/api/v1/' || w[1 + g % 12],
               'status_code', CASE WHEN g % 50 = 1 THEN 500 ELSE 200 END, 'duration_ms', (g % 500) / 3.0) END),
       '1.2.2', 'python', '3.11',
       CASE WHEN g % 10 = 0 THEN lpad(to_hex(g % 64), 64, '0') END
FROM (SELECT g, to_timestamp($6) - make_interval(secs => (g::float8 * 2592000 / $3)) AS ts
      FROM generate_series($1, $2) AS g) s,
     (SELECT ARRAY[$5]::bigint[] AS p,
             string_to_array('user session order payment invoice cache request upstream worker queue retry token '
                 'account profile export report search index shard replica timeout latency checkout cart coupon '
                 'email webhook scheduler job batch refund ledger balance transfer audit login signup billing '
                 'tax price', ' ') AS w,
             string_to_array('created updated deleted fetched processed rejected scheduled completed failed '
                 'retried validated enqueued flushed expired refreshed', ' ') AS v) c
EOF
}

bench_load_logs() {
    local rows=$1 projects=$2 pids=$3 t0 from to
    t0=$(bench_psql ledger_logs "SELECT extract(epoch FROM date_trunc('second', now()))::bigint")
    bench_psql ledger_logs "SELECT logs_ensure_partition(to_timestamp($t0) - make_interval(days => d))
        FROM generate_series(0, 31) d" >/dev/null
    for ((from = 1; from <= rows; from += 1000000)); do
        to=$((from + 999999 < rows ? from + 999999 : rows))
        bench_psql ledger_logs "$(bench_logs_sql "$from" "$to" "$rows" "$projects" "$pids" "$t0")"
    done
    printf '%s\n' "$t0"
}
