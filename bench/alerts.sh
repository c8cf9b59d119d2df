#!/usr/bin/env bash
# bench/alerts.sh: the alert evaluator (issue 20 target: 1,000 rules over 10M logs within one tick).
#   1. Load BENCH_ALERTS_ROWS logs (10 million by default) spread over the last hour across
#      BENCH_ALERTS_PROJECTS projects (3% error/critical, 20% endpoint logs with a duration).
#   2. Create BENCH_ALERTS_RULES rules (1,000) over those projects: every metric (error rate and
#      count, log volume, p50/p95/p99 latency), windows of 5, 15 and 60 minutes, one in four with a
#      search-language filter; thresholds high enough that nothing fires (no delivery traffic).
#   3. Run the evaluator (the analytics role's alert_eval job, the production code) BENCH_ROUNDS
#      times and report each pass's duration as /health/deep reports it.
#   4. Ingest p99 under a paced load with the evaluator running back to back vs. off (ratio).
#
#   ./scripts/ledger bench alerts   (knobs: BENCH_ALERTS_ROWS 10000000, BENCH_ALERTS_PROJECTS 10,
#                                    BENCH_ALERTS_RULES 1000, BENCH_ALERTS_CONCURRENCY 1)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

ROWS=${BENCH_ALERTS_ROWS:-10000000}
PROJECTS=${BENCH_ALERTS_PROJECTS:-10}
RULES=${BENCH_ALERTS_RULES:-1000}
CONCURRENCY=${BENCH_ALERTS_CONCURRENCY:-1}

bench_init alerts
bench_start_pg
bench_start_redis
QUIET="search_index_interval_ms = 3600000
hourly_metrics_interval_ms = 3600000
available_routes_interval_ms = 3600000
usage_stats_interval_ms = 3600000
error_rate_interval_ms = 3600000
log_volume_interval_ms = 3600000
top_errors_interval_ms = 3600000
monitor_check_interval_ms = 3600000
alert_eval_interval_ms = 3600000"
INI_STORAGE=off INI_ANALYTICS_EXTRA=$QUIET bench_start_ledgerd
bench_account
PID=$BENCH_PID

psql_db() { # psql_db DB SQL
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", b - a }'; }

acct=$(psql_db ledger_auth "SELECT account_id FROM projects WHERE id = $PID")
pids=$PID
for ((i = 1; i < PROJECTS; i++)); do
    pids+=,$(psql_db ledger_auth "INSERT INTO projects (account_id, name, slug) VALUES ($acct, 'Bench $i',
        'bench-$i') RETURNING id")
done

# ---- 1. load: the last hour ----------------------------------------------------------------------
T0=$(psql_db ledger_logs "SELECT extract(epoch FROM date_trunc('second', now()))::bigint")
psql_db ledger_logs "SELECT logs_ensure_partition(to_timestamp($T0) - make_interval(hours => h))
    FROM generate_series(0, 2) h" >/dev/null
t=$(now_s)
for ((from = 1; from <= ROWS; from += 1000000)); do
    to=$((from + 999999 < ROWS ? from + 999999 : ROWS))
    psql_db ledger_logs "INSERT INTO logs (project_id, \"timestamp\", level, log_type, message, error_type,
        attributes)
      SELECT p[1 + g % $PROJECTS], to_timestamp($T0) - make_interval(secs => (g::float8 * 3500 / $ROWS)),
             CASE WHEN g % 100 < 2 THEN 'error' WHEN g % 100 < 3 THEN 'critical' ELSE 'info' END,
             CASE WHEN g % 10 = 0 THEN 'exception' WHEN g % 10 < 3 THEN 'endpoint' ELSE 'logger' END,
             'message ' || g,
             CASE WHEN g % 10 = 0 THEN (ARRAY['ValueError', 'KeyError', 'TimeoutError'])[1 + g % 3] END,
             CASE WHEN g % 10 IN (1, 2) THEN jsonb_build_object('endpoint', jsonb_build_object('method', 'GET',
                 'path', '/x', 'status_code', 200, 'duration_ms', (g % 500) / 3.0)) END
      FROM generate_series($from, $to) AS g, (SELECT ARRAY[$pids]::bigint[] AS p) c"
done
# VACUUM too: autovacuum would otherwise visit the loaded rows during the measured rounds
psql_db ledger_logs "VACUUM (ANALYZE) logs" >/dev/null
bench_say "loaded $ROWS logs ($PROJECTS projects, last hour) in $(elapsed "$t" "$(now_s)")s"

# ---- 2. rules --------------------------------------------------------------------------------------
psql_db ledger_auth "INSERT INTO alert_rules (project_id, name, metric, filter, comparator, threshold, window_s,
    cooldown_s)
  SELECT p[1 + g % $PROJECTS], 'rule ' || g,
         (ARRAY['error_rate', 'error_count', 'log_volume', 'p50_latency', 'p95_latency', 'p99_latency'])[1 + g % 6],
         CASE WHEN g % 4 = 0 THEN 'error_type:KeyError OR level:critical' END, 'gt', 1e12,
         (ARRAY[300, 900, 3600])[1 + g % 3], 900
  FROM generate_series(1, $RULES) g, (SELECT ARRAY[$pids]::bigint[] AS p) c" >/dev/null
bench_say "$RULES rules: 6 metrics, windows 5/15/60 min, 1 in 4 filtered; alert_eval_concurrency $CONCURRENCY"

# ---- 3. evaluate -------------------------------------------------------------------------------------
bench_stop_ledgerd
# A 10 s tick leaves the job idle between passes, so each pass is seen (a pass longer than the tick
# starts the next one at the following 10 s boundary).
INI_STORAGE=off INI_ANALYTICS_EXTRA="${QUIET/alert_eval_interval_ms = 3600000/alert_eval_interval_ms = 10000}
alert_eval_concurrency = $CONCURRENCY
alert_max_rules = $RULES" bench_start_ledgerd
job() {
    curl -fsS "$BENCH_LEDGERD_URL/health/deep" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)["roles"]["analytics"]["jobs"]["alert_eval"]
print(j["runs"], j["running"], j["last_duration_ms"], j["last_error"])'
}
done_runs=0
durations=()
for ((i = 0; i < 3600 && done_runs < BENCH_ROUNDS; i++)); do
    read -r runs running dur err <<<"$(job)"
    if [[ $running == False && $runs -gt $done_runs ]]; then
        done_runs=$runs
        durations+=("$dur")
        bench_say "pass $runs: ${dur} ms (error: $err)"
    fi
    sleep 0.5
done
evaluated=$(psql_db ledger_auth "SELECT count(*) FROM alert_rules WHERE last_evaluated_at IS NOT NULL")
bench_say "evaluator: $RULES rules over $ROWS logs, passes ${durations[*]} ms (target: within one 60 s tick); \
$evaluated rules evaluated"

# ---- 4. ingest p99 while the evaluator runs ----------------------------------------------------------
# Target: the evaluator costs ingest at most 10 % of its p99. Rounds alternate between ledgerd with
# the evaluator off and ledgerd whose evaluator runs back to back (a 1 s tick, shorter than a pass:
# a new pass starts as soon as one ends, the worst case), both under the same paced single-log
# ingest load (BENCH_ALERTS_INGEST_CONNS connections, each waiting BENCH_ALERTS_INGEST_DELAY_MS
# between requests) on the same worker. Medians of BENCH_ROUNDS rounds.
INGEST_CONNS=${BENCH_ALERTS_INGEST_CONNS:-8}
INGEST_DELAY=${BENCH_ALERTS_INGEST_DELAY_MS:-5}
cat >"$BENCH_TMP/ingest.lua" <<EOF
local n = 0
function request()
    n = n + 1
    return wrk.format("POST", "/api/v1/ingest/single", {["Host"] = wrk.host .. ":" .. wrk.port,
        ["Content-Type"] = "application/json", ["X-API-Key"] = "$BENCH_KEY"},
        '{"timestamp":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. '","level":"info","log_type":"logger",' ..
        '"message":"alerts bench ' .. n .. '","attributes":{"n":' .. n .. '}}')
end
function delay() return $INGEST_DELAY end
EOF
eval_job() { # eval_job FIELD: of the alert_eval job in /health/deep (503 while a dependency warms up)
    curl -sS --max-time 5 "$BENCH_LEDGERD_URL/health/deep" | "$PY" -c '
import json, sys
try:
    print(json.load(sys.stdin)["roles"]["analytics"]["jobs"]["alert_eval"][sys.argv[1]])
except Exception:
    print("?")' "$1"
}
eval_runs() { local v; v=$(eval_job runs); [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo 0; }
eval_running() { eval_job running; }
ingest_wrk() { BENCH_CONNECTIONS=$INGEST_CONNS bench_wrk "$BENCH_LEDGERD_URL/api/v1/ingest/single" "$1" -s "$BENCH_TMP/ingest.lua"; }
ingest_round() { # ingest_round off|eval ROUND: restart ledgerd with the evaluator off or on, measure
    local name=$1 round=$2 runs0 line usage
    bench_stop_ledgerd
    # the queue is not drained (storage off): empty it so no round meets its bound
    usage=$(redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" --scan --pattern "usage:$PID:*" | tr '\n' ' ')
    # shellcheck disable=SC2086 # usage keys contain no spaces
    redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" DEL ledger:logs "queue_depth:$PID" $usage >/dev/null
    if [[ $name == eval ]]; then
        INI_STORAGE=off INI_ANALYTICS_EXTRA="${QUIET/alert_eval_interval_ms = 3600000/alert_eval_interval_ms = 1000}
alert_eval_concurrency = $CONCURRENCY
alert_max_rules = $RULES" bench_start_ledgerd
        for ((i = 0; i < 40; i++)); do # until the first pass is under way (bounded)
            [[ $(eval_running) == True ]] && break
            sleep 0.25
        done
    else
        INI_STORAGE=off INI_ANALYTICS_EXTRA=$QUIET bench_start_ledgerd
    fi
    local code
    code=$(curl -s -o "$BENCH_TMP/ingest.answer" -w '%{http_code}' -X POST "$BENCH_LEDGERD_URL/api/v1/ingest/single" \
        -H 'Content-Type: application/json' -H "X-API-Key: $BENCH_KEY" \
        -d "{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"level\":\"info\",\"log_type\":\"logger\",\"message\":\"probe\"}")
    [[ $code == 202 ]] || die "ingest answered $code: $(cat "$BENCH_TMP/ingest.answer")"
    ingest_wrk "$BENCH_WARMUP" >/dev/null
    runs0=$(eval_runs)
    line=$(ingest_wrk "$BENCH_DURATION")
    bench_round "$name" "$round" "$line" >/dev/null
    # shellcheck disable=SC2086 # line is "RPS P50 P99 ERRORS"
    bench_say "$(printf 'ingest round %d, evaluator %-4s: %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s  passes ended %s' \
        "$round" "$name" $line "$(($(eval_runs) - runs0))")"
}
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    ingest_round off "$round"
    ingest_round eval "$round"
done
bench_medians off eval >/dev/null
bench_say "$(printf 'ingest p99, median of %d rounds (%d connections paced %s ms): evaluator off %.3f ms, running %.3f ms, ratio %s (target <= 1.10); p50 ratio %s; load average %s' \
    "$BENCH_ROUNDS" "$INGEST_CONNS" "$INGEST_DELAY" "${BENCH_MED[off.p99]}" "${BENCH_MED[eval.p99]}" \
    "$(ratio "${BENCH_MED[eval.p99]}" "${BENCH_MED[off.p99]}")" \
    "$(ratio "${BENCH_MED[eval.p50]}" "${BENCH_MED[off.p50]}")" "$(cut -d' ' -f1-3 /proc/loadavg)")"
bench_finish
