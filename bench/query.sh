#!/usr/bin/env bash
# bench/query.sh: the query endpoints (issue 5 targets) on a generated data set.
#   1. Load BENCH_QUERY_ROWS logs (10 million by default) for BENCH_QUERY_PROJECTS projects over the
#      last 30 days with one INSERT ... SELECT generate_series per million rows (deterministic:
#      every value is a function of the row number): ~100-byte messages, 5 attributes, 10%
#      exceptions, 20% endpoint logs, 3% error/critical; the word "zanzibar" in 0.1% of messages.
#   2. Let ledgerd's analytics role build the search indexes of every closed 6-hour partition (search_index job,
#      the same code as in production) and report how long that took; ANALYZE.
#   3. Measure, with wrk (1 ledgerd worker pinned to one core, wrk on the other, BENCH_CONNECTIONS
#      connections, BENCH_ROUNDS rounds of BENCH_DURATION), p50 and p99 of (targets are p95; wrk
#      reports p99, which bounds it from above):
#        newest page of a project, with and without level=error          target p95 < 20 ms
#        full-text search for "zanzibar" (0.1% of rows) over 7 days      target p95 < 200 ms
#        attribute equality over 24 h                                     target p95 < 50 ms
#        cached metrics (/metrics/aggregated, /metrics/error-rate)       target p95 < 5 ms
#   4. The hourly aggregation job over one hour holding BENCH_QUERY_HOUR_ROWS (1 million) logs of
#      another project: its duration as /health/deep reports it (target < 5 s).
#   5. Sustained ingest (bench/sustain.py; ledgerd on every core with storage and analytics as
#      deployed, search_index every 5 s with a 5 s grace, leaves cut to BENCH_SUSTAIN_MAX_ROWS): the
#      end-to-end maximum over BENCH_SUSTAIN_MAX_S, then 80% of it for BENCH_SUSTAIN_S (600) while a
#      full-text search over the last hour runs every 2 s (target p95 < 200 ms) and the unindexed
#      rows are sampled every 10 s (target: flat). The build rate of step 2 is compared with that
#      end-to-end rate (target >= 1.5x) and the index bytes per log reported (target <= 150).
#
#   ./scripts/ledger bench query   (knobs: see bench/lib.sh; BENCH_QUERY_ROWS 10000000,
#                                   BENCH_QUERY_PROJECTS 5, BENCH_QUERY_HOUR_ROWS 1000000,
#                                   BENCH_QUERY_INDEX_TIMEOUT 3600, BENCH_QUERY_PHASES
#                                   "endpoints hourly sustain" (load and index always run),
#                                   BENCH_SUSTAIN_S 600 (shorten it: e.g. 120), BENCH_SUSTAIN_MAX_S 30,
#                                   BENCH_SUSTAIN_MAX_ROWS 200000)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"
# shellcheck source=dataset.sh
source "$LEDGER_ROOT/bench/dataset.sh"

ROWS=${BENCH_QUERY_ROWS:-10000000}
PROJECTS=${BENCH_QUERY_PROJECTS:-5}
HOUR_ROWS=${BENCH_QUERY_HOUR_ROWS:-1000000}
INDEX_TIMEOUT=${BENCH_QUERY_INDEX_TIMEOUT:-3600}
BENCH_CONNECTIONS=${BENCH_QUERY_CONNECTIONS:-4}
PHASES=" ${BENCH_QUERY_PHASES:-endpoints hourly sustain} "
SUSTAIN_S=${BENCH_SUSTAIN_S:-600}
SUSTAIN_MAX_S=${BENCH_SUSTAIN_MAX_S:-30}
SUSTAIN_MAX_ROWS=${BENCH_SUSTAIN_MAX_ROWS:-200000}
phase() { [[ $PHASES == *" $1 "* ]]; }

bench_init query
bench_start_pg
bench_start_redis
# Jobs stay quiet while loading (hour-long intervals); search_index is switched on in step 2.
QUIET="search_index_interval_ms = 3600000
hourly_metrics_interval_ms = 3600000
available_routes_interval_ms = 3600000
usage_stats_interval_ms = 3600000
error_rate_interval_ms = 3600000
log_volume_interval_ms = 3600000
top_errors_interval_ms = 3600000"
INI_STORAGE=off INI_ANALYTICS_EXTRA=$QUIET bench_start_ledgerd
bench_account
KEY=$BENCH_KEY
PID=$BENCH_PID

psql_db() { # psql_db DB SQL
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", b - a }'; }

# The other projects belong to the same account; the measured one is the key's.
acct=$(psql_db ledger_auth "SELECT account_id FROM projects WHERE id = $PID")
pids=$PID
for ((i = 1; i < PROJECTS; i++)); do
    pids+=,$(psql_db ledger_auth "INSERT INTO projects (account_id, name, slug) VALUES ($acct, 'Bench $i',
        'bench-$i') RETURNING id")
done
hour_pid=$(psql_db ledger_auth "INSERT INTO projects (account_id, name, slug) VALUES ($acct, 'Bench hour',
    'bench-hour') RETURNING id")

# ---- 1. load --------------------------------------------------------------------------------------
t=$(now_s)
bench_load_logs "$ROWS" "$PROJECTS" "$pids" >/dev/null
load_s=$(elapsed "$t" "$(now_s)")
psql_db ledger_logs "ANALYZE logs" >/dev/null
bench_say "loaded $ROWS logs ($PROJECTS projects, 30 days) in ${load_s}s: $(awk -v n="$ROWS" -v s="$load_s" \
    'BEGIN { printf "%.0f", n / s }') rows/s with INSERT ... SELECT (only the btree and BRIN indexes on the way)"

# ---- 2. search indexes on the closed partitions ------------------------------------------------------
bench_stop_ledgerd
INI_STORAGE=off INI_ANALYTICS_EXTRA="${QUIET/search_index_interval_ms = 3600000/search_index_interval_ms = 2000}
index_max_per_run = 10000
index_grace_ms = 0" bench_start_ledgerd
t=$(now_s)
for ((i = 0; i < INDEX_TIMEOUT; i += 2)); do
    left=$(psql_db ledger_logs "SELECT count(*) FROM logs_search_index_todo(now())")
    running=$(curl -fsS "$BENCH_LEDGERD_URL/health/deep" | "$PY" -c \
        'import json,sys; print(json.load(sys.stdin)["roles"]["analytics"]["jobs"]["search_index"]["running"])')
    [[ $left == 0 && $running == False ]] && break
    sleep 2
done
[[ $left == 0 ]] || die "search indexes still missing after ${INDEX_TIMEOUT}s: $left"
index_s=$(elapsed "$t" "$(now_s)")
leaves=$(psql_db ledger_logs "SELECT count(*) FROM pg_class WHERE relname ~ '^logs_[0-9_]+_fts$'")
data_leaves=$(psql_db ledger_logs "SELECT count(DISTINCT tableoid) FROM logs")
idx_mb=$(psql_db ledger_logs "SELECT round(sum(pg_relation_size(oid)) / 1048576.0) FROM pg_class
    WHERE relname ~ '^logs_[0-9_]+_(fts|trgm|attrs)$'")
bench_say "search indexes (fts, trgm, attrs) built on $leaves closed partitions ($data_leaves holding logs, \
the open one included) in ${index_s}s ($(awk -v s="$index_s" -v d="$data_leaves" \
'BEGIN { printf "%.1f", (d > 1) ? s / (d - 1) : 0 }') s per 6-hour partition of about $((ROWS / 120)) rows), ${idx_mb} MiB"
idx_rows_s=$(awk -v n="$ROWS" -v s="$index_s" 'BEGIN { printf "%.0f", n / s }')
bench_say "build rate: $idx_rows_s rows/s over all partitions (three indexes each, one build at a time)"
for kind in fts trgm attrs; do
    b=$(psql_db ledger_logs "SELECT sum(pg_relation_size(oid)) FROM pg_class WHERE relname ~ '^logs_[0-9_]+_${kind}\$'")
    bench_say "$(printf 'index %-5s %6.0f MiB, %5.1f bytes per log' "$kind" "$(awk -v b="$b" 'BEGIN { print b / 1048576 }')" \
        "$(awk -v b="$b" -v n="$ROWS" 'BEGIN { print b / n }')")"
done
bench_say "all three: $(awk -v m="$idx_mb" -v n="$ROWS" 'BEGIN { printf "%.1f", m * 1048576 / n }') bytes per log (target <= 150)"
# probe_leaf: each index alone on the largest leaf (a plain CREATE INDEX of the same definition, its
# indexes dropped first), with ledgerd stopped so that its search_index job does not build the same
# leaf meanwhile; prints the three together too. Leaves the leaf indexed.
probe_leaf() {
    local big big_rows todo name sql kind plain t s_ bytes total_s=0
    big=$(psql_db ledger_logs "SELECT leaf FROM logs_leaves() ORDER BY logs_leaf_rows(leaf) DESC LIMIT 1")
    big_rows=$(psql_db ledger_logs "SELECT count(*) FROM $big")
    todo=$(psql_db ledger_logs "DROP INDEX IF EXISTS ${big}_fts, ${big}_trgm, ${big}_attrs;
        SELECT index_name, create_sql FROM logs_search_index_todo('infinity') WHERE leaf = '$big'")
    while IFS='|' read -r name sql; do
        [[ -n $name ]] || continue
        kind=${name##*_}
        plain=${sql/CONCURRENTLY IF NOT EXISTS /}
        t=$(now_s)
        psql_db ledger_logs "$plain" >/dev/null
        s_=$(elapsed "$t" "$(now_s)")
        total_s=$(awk -v a="$total_s" -v b="$s_" 'BEGIN { print a + b }')
        bytes=$(psql_db ledger_logs "SELECT pg_relation_size('$name')")
        bench_say "$(printf 'index %-5s alone on %s (%d rows): %5.1f s = %6.0f rows/s, %5.1f bytes per log' "$kind" \
            "$big" "$big_rows" "$s_" "$(awk -v n="$big_rows" -v s="$s_" 'BEGIN { print (s > 0) ? n / s : 0 }')" \
            "$(awk -v b="$bytes" -v n="$big_rows" 'BEGIN { print b / n }')")"
    done <<<"$todo"
    PROBE_RATE=$(awk -v n="$big_rows" -v s="$total_s" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')
    bench_say "the three on $big: ${total_s} s = $PROBE_RATE rows/s"
}
bench_stop_ledgerd
probe_leaf
INI_STORAGE=off INI_ANALYTICS_EXTRA="$QUIET" bench_start_ledgerd
open_rows=$(psql_db ledger_logs "SELECT count(*) FROM logs WHERE project_id = $PID AND \"timestamp\" >=
    date_trunc('day', now()) + make_interval(hours => extract(hour FROM now() AT TIME ZONE 'UTC')::int / 6 * 6)")
bench_say "open partition (scanned, not indexed): $open_rows rows of the measured project so far"

# ---- 3. endpoints --------------------------------------------------------------------------------
if phase endpoints; then
fts_matches=$(psql_db ledger_logs "SELECT count(*) FROM logs WHERE project_id = $PID AND message LIKE '%zanzibar%'
    AND \"timestamp\" >= now() - interval '7 days'")
proj_rows=$(psql_db ledger_logs "SELECT count(*) FROM logs WHERE project_id = $PID")
bench_say "measured project: $proj_rows rows; 'zanzibar' in $fts_matches of them within 7 days"
psql_db ledger_logs "INSERT INTO aggregated_metrics (project_id, date, hour, metric_type, log_level, log_type,
    log_count, error_count) SELECT $PID, to_char(now() - make_interval(days => d), 'YYYYMMDD'), h, 'log_volume',
    'info', 'logger', 100 + d + h, 0 FROM generate_series(0, 29) d, generate_series(0, 23) h
    ON CONFLICT DO NOTHING" >/dev/null

declare -A URLS=(
    [newest]="/api/v1/logs?limit=100"
    [newest_err]="/api/v1/logs?limit=100&level=error"
    [fts_7d]="/api/v1/logs/search?q=zanzibar&period=last7days"
    [attr_24h]="/api/v1/logs?attributes.user_id=1234&period=last24h"
    [m_aggr]="/api/v1/metrics/aggregated?project_id=$PID&type=log_volume&period=last30days"
    [m_errrate]="/api/v1/metrics/error-rate"
)
ORDER=(newest newest_err fts_7d attr_24h m_aggr m_errrate)
for name in "${ORDER[@]}"; do
    code=$(curl -s -o "$BENCH_TMP/$name.json" -w '%{http_code}' -H "X-API-Key: $KEY" "$BENCH_LEDGERD_URL${URLS[$name]}")
    [[ $code == 200 ]] || die "GET ${URLS[$name]} answered $code: $(head -c 300 "$BENCH_TMP/$name.json")"
    n=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d.get("logs", d.get("data", []))))' \
        "$BENCH_TMP/$name.json")
    bench_say "$(printf '%-10s %s -> %s items' "$name" "${URLS[$name]}" "$n")"
done
# The targets are p95s, which wrk's --latency table does not print: a done() hook does.
cat >"$BENCH_TMP/p95.lua" <<'LUA'
done = function(summary, latency, requests)
    io.write(string.format("p95_us: %d\n", latency:percentile(95)))
end
LUA
declare -A P95=()
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for name in "${ORDER[@]}"; do
        bench_round "$name" "$round" "$(bench_wrk "$BENCH_LEDGERD_URL${URLS[$name]}" "$BENCH_DURATION" \
            -H "X-API-Key: $KEY" -s "$BENCH_TMP/p95.lua")"
        P95[$name]+="$(awk '/^p95_us:/ { printf "%.3f", $2 / 1000 }' "$BENCH_TMP/wrk.out") "
    done
done
bench_medians "${ORDER[@]}"
declare -A P95_TARGET=([newest]=20 [newest_err]=20 [fts_7d]=200 [attr_24h]=50 [m_aggr]=5 [m_errrate]=5)
for name in "${ORDER[@]}"; do
    # shellcheck disable=SC2086 # space-separated numbers
    bench_say "$(printf 'p95      %-10s median %8.3f ms (rounds: %s) target < %s ms' "$name" \
        "$(median ${P95[$name]})" "${P95[$name]% }" "${P95_TARGET[$name]}")"
done

fi

# ---- 4. hourly aggregation over an hour of HOUR_ROWS logs ------------------------------------------------
if phase hourly; then
hour_start=$(psql_db ledger_logs "SELECT extract(epoch FROM date_trunc('hour', now()) - interval '1 hour')::bigint")
psql_db ledger_logs "INSERT INTO logs (project_id, \"timestamp\", level, log_type, message, attributes)
    SELECT $hour_pid, to_timestamp($hour_start) + make_interval(secs => g * 3599.0 / $HOUR_ROWS),
        (ARRAY['info', 'info', 'warning', 'error'])[1 + g % 4],
        CASE WHEN g % 2 = 0 THEN 'endpoint' WHEN g % 10 = 1 THEN 'exception' ELSE 'logger' END, 'm' || g,
        CASE WHEN g % 2 = 0 THEN jsonb_build_object('endpoint', jsonb_build_object('method', 'GET',
            'path', '/p/' || (g % 40), 'status_code', CASE WHEN g % 20 = 0 THEN 500 ELSE 200 END,
            'duration_ms', g % 1000)) END
    FROM generate_series(1, $HOUR_ROWS) g" >/dev/null
psql_db ledger_logs "ANALYZE logs" >/dev/null
redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" SET ledger:analytics:hourly_metrics:done $((hour_start / 3600)) >/dev/null
bench_stop_ledgerd
INI_STORAGE=off INI_ANALYTICS_EXTRA="${QUIET/hourly_metrics_interval_ms = 3600000/hourly_metrics_interval_ms = 600000}" \
    bench_start_ledgerd
for ((i = 0; i < 600; i++)); do
    job=$(curl -fsS "$BENCH_LEDGERD_URL/health/deep" | "$PY" -c \
        'import json,sys; j=json.load(sys.stdin)["roles"]["analytics"]["jobs"]["hourly_metrics"]; print(j["runs"], j["running"], j["last_duration_ms"], j["last_error"])')
    read -r runs running dur err <<<"$job"
    [[ $runs -ge 1 && $running == False ]] && break
    sleep 1
done
[[ $err == None ]] || die "hourly_metrics failed: $err"
bench_say "hourly_metrics over one hour of $HOUR_ROWS logs (plus that hour of the data set): ${dur} ms"
fi

# ---- 5. sustained ingest while searching ------------------------------------------------------------------
if phase sustain; then
    bench_stop_ledgerd
    BENCH_LEDGERD_WHOLE=1 INI_WORKERS=auto INI_STORAGE=on INI_STORAGE_EXTRA="partition_max_rows = $SUSTAIN_MAX_ROWS
slice_interval_ms = 5000" INI_ANALYTICS_EXTRA="${QUIET/search_index_interval_ms = 3600000/search_index_interval_ms = 5000}
index_grace_ms = 5000" bench_start_ledgerd
    bench_say "sustained ingest: ledgerd workers = auto, unpinned, storage + analytics; partition_max_rows = \
$SUSTAIN_MAX_ROWS, search_index every 5 s, grace 5 s; maximum over ${SUSTAIN_MAX_S}s, then 80% of it for ${SUSTAIN_S}s"
    bench_say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$PY" "$LEDGER_ROOT/bench/sustain.py" "$BENCH_LEDGERD_URL" "$KEY" "$SUSTAIN_MAX_S" "$SUSTAIN_S" 0.8 \
        >"$BENCH_TMP/sustain.out" 2>&1 || die "sustain.py failed: $(tail -5 "$BENCH_TMP/sustain.out")"
    while read -r line; do bench_say "  $line"; done <"$BENCH_TMP/sustain.out"
    bench_say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    bench_stop_ledgerd
    psql_db ledger_logs "SELECT leaf, ends - starts, logs_leaf_rows(leaf) FROM logs_leaves()
        WHERE ends > now() - interval '1 hour' AND starts < now() + interval '10 minutes' ORDER BY starts" |
        while read -r line; do bench_say "  leaf $line"; done
    e2e=$(sed -n 's/^e2e_max_logs_per_s=//p' "$BENCH_TMP/sustain.out")
    probe_leaf # the largest leaf is now one the run filled
    bench_say "build rate / end-to-end ingest rate: job over the data set $idx_rows_s / $e2e = $(awk -v a="$idx_rows_s" \
        -v b="$e2e" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'); the three on the largest leaf $PROBE_RATE / $e2e = \
$(awk -v a="$PROBE_RATE" -v b="$e2e" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }') (target >= 1.5)"
fi
bench_finish
