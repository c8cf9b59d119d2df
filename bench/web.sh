#!/usr/bin/env bash
# shellcheck disable=SC2034 # BENCH_RESULT_SUFFIX is read by bench_finish (lib.sh)
# bench/web.sh: the dashboard's log explorer in a real browser (issue 15 targets).
#   1. Build web/dist (npm ci when the lock changed, vite build), as ./scripts/ledger up does.
#   2. Start PostgreSQL, Redis and ledgerd (all roles, storage on, serving web/dist), make the bench
#      account, and load the query bench's data set: BENCH_WEB_LOGS logs (10 million by default)
#      of BENCH_WEB_PROJECTS projects over 30 days (bench/dataset.sh).
#   3. bench/web.mjs drives Debian's chromium (headless, playwright-core) against it and measures:
#        first paint of /logs with rows after navigation, median of 5        target < 500 ms
#        JS shipped on the first load, bytes on the wire (gzip)               target < 150 kB
#        live tail: a log posted to ingest shows in the open explorer, p95   target < 1 s
#          over 100 posts
#        scrolling through 50,000 loaded rows: longest main-thread task     target < 50 ms
#          (3 passes top to bottom, each reported; the verdict on their median)
#   Results go to bench/results/<date>-<commit>-web.txt.
#
#   ./scripts/ledger bench web   (knobs: BENCH_WEB_LOGS 10000000, BENCH_WEB_PROJECTS 5,
#                                 BENCH_WEB_RUNS 5, BENCH_WEB_TAIL_POSTS 100, BENCH_WEB_SCROLL_ROWS
#                                 50000, BENCH_WEB_SCROLL_PASSES 3, BENCH_WEB_DEADLINE_S 900 for the
#                                 browser part)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"
# shellcheck source=dataset.sh
source "$LEDGER_ROOT/bench/dataset.sh"

ROWS=${BENCH_WEB_LOGS:-10000000}
PROJECTS=${BENCH_WEB_PROJECTS:-5}
BROWSER_DEADLINE=${BENCH_WEB_DEADLINE_S:-900}
WEB=$LEDGER_ROOT/web

bench_init web
BENCH_RESULT_SUFFIX=-web # read by bench_finish
ensure_web_tools chromium

# ---- 1. the app -------------------------------------------------------------------------------------
web_build
js_gz=$(find "$WEB/dist/assets" -name '*.js.gz' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
bench_say "web/dist: $(find "$WEB/dist/assets" -name '*.js' | wc -l) JS files, $js_gz bytes gzipped in all (every route)"

# ---- 2. servers and data ------------------------------------------------------------------------------
bench_start_pg
bench_start_redis
# The analytics jobs stay quiet (long intervals, as in bench/query.sh; the search index job builds
# at most one partition's indexes, at start, before the load): nothing here measures them, and
# index builds would compete with the browser for the 2 cores.
QUIET="search_index_interval_ms = 86400000
index_max_per_run = 1
hourly_metrics_interval_ms = 3600000
available_routes_interval_ms = 3600000
usage_stats_interval_ms = 3600000
error_rate_interval_ms = 3600000
log_volume_interval_ms = 3600000
top_errors_interval_ms = 3600000"
INI_ANALYTICS_EXTRA=$QUIET INI_WORKERS=2 BENCH_LEDGERD_WHOLE=1 bench_start_ledgerd
code=$(curl -s -o /dev/null -w '%{http_code}' "$BENCH_LEDGERD_URL/logs")
[[ $code == 200 ]] || die "ledgerd does not serve the app at /logs (HTTP $code)"
bench_account
acct=$(bench_psql ledger_auth "SELECT account_id FROM projects WHERE id = $BENCH_PID")
pids=$BENCH_PID
for ((i = 1; i < PROJECTS; i++)); do
    pids+=,$(bench_psql ledger_auth "INSERT INTO projects (account_id, name, slug) VALUES ($acct, 'Bench $i',
        'bench-$i') RETURNING id")
done
t=$(date +%s.%N)
bench_load_logs "$ROWS" "$PROJECTS" "$pids" >/dev/null
for i in 1 2 3; do # an index build of the analytics role may make ANALYZE the victim of a deadlock
    bench_psql ledger_logs "ANALYZE logs" >/dev/null && break
    sleep 2
done
load_s=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
proj_rows=$(bench_psql ledger_logs "SELECT count(*) FROM logs WHERE project_id = $BENCH_PID")
day_rows=$(bench_psql ledger_logs "SELECT count(*) FROM logs WHERE project_id = $BENCH_PID
    AND \"timestamp\" >= now() - interval '24 hours'")
bench_say "data set: $ROWS logs of $PROJECTS projects over 30 days, loaded in ${load_s}s; measured project: \
$proj_rows logs, $day_rows in the last 24 h"
bench_say "load average before the browser part: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_say "ledgerd: 2 workers, all roles (storage on), unpinned; chromium $(chromium --version 2>/dev/null |
    awk '{ print $2 }') headless on the same 2 cores"

# ---- 3. the browser ---------------------------------------------------------------------------------
out=$BENCH_TMP/web.out
BENCH_WEB_DEADLINE_S=$BROWSER_DEADLINE timeout $((BROWSER_DEADLINE + 60)) node "$LEDGER_ROOT/bench/web.mjs" \
    "$BENCH_LEDGERD_URL" "$BENCH_EMAIL" "$BENCH_PASSWORD" "$BENCH_PID" "$BENCH_KEY" >"$out" 2>"$BENCH_TMP/web.err" || {
    cat "$out" "$BENCH_TMP/web.err" >&2
    die "the browser part failed"
}
declare -A R=()
while read -r k v; do R[$k]=$v; done <"$out"
while read -r line; do bench_say "$line"; done < <(grep '^warning' "$out" || true)
verdict() { # verdict VALUE LIMIT: "ok" when VALUE < LIMIT
    awk -v v="$1" -v l="$2" 'BEGIN { print (v != "" && v + 0 < l + 0) ? "ok" : "MISSED" }'
}
fp=${R[first_paint_rows_ms_median]:-}
bench_say "first paint with rows:  median $fp ms (runs: ${R[first_paint_rows_ms_runs]:-}) target < 500 ms: $(verdict "$fp" 500)"
bench_say "  arrived by then (median ms since navigation): ${R[first_paint_phases_ms_median]:-}"
js=${R[js_first_load_bytes_wire]:-}
bench_say "JS on first load:       $js bytes on the wire in ${R[js_first_load_files]:-?} files \
($(awk -v b="$js" 'BEGIN { printf "%.1f", b / 1024 }') KiB) target < 150 kB: $(verdict "$js" 150000)"
tl=${R[tail_latency_ms_p95]:-}
bench_say "live tail latency:      p95 $tl ms, p50 ${R[tail_latency_ms_p50]:-} ms, max ${R[tail_latency_ms_max]:-} ms over \
${R[tail_posts]:-} posts (${R[tail_not_seen_within_5s]:-?} not seen within 5 s; marker ${R[tail_dropped_marker]:-}) \
target p95 < 1000 ms: $(verdict "$tl" 1000)"
bench_say "scroll: ${R[scroll_rows_loaded]:-} rows loaded by cursor while scrolling in ${R[scroll_load_seconds]:-} s \
(longest task while loading ${R[load_longest_task_ms]:-?} ms)"
for ((p = 1; p <= ${R[scroll_passes]:-0}; p++)); do
    bench_say "scroll pass $p (top to bottom, 150 rows a frame): ${R[scroll_pass$p]:-}"
done
bench_say "scroll pass at reading speed (15 rows a frame, text drawn in every frame, first 6,000 rows): ${R[scroll_read_pass]:-}"
lt=${R[scroll_longest_task_ms_median]:-}
bench_say "scroll through them:    longest main-thread task per pass ${R[scroll_longest_task_ms_per_pass]:-} ms \
(0 = none over 50 ms), median $lt ms; at most ${R[scroll_max_rows_in_dom]:-} rows in the DOM; target < 50 ms: $(verdict "$lt" 50)"
bench_say "traced pass (CPU time = thread time, without the waits for a core): longest main-thread task \
${R[scroll_traced_longest_task_wall_ms]:-?} ms wall, ${R[scroll_traced_longest_task_cpu_ms]:-?} ms CPU; tasks over 50 ms: \
${R[scroll_traced_tasks_over_50ms_wall]:-?} by wall time, ${R[scroll_traced_tasks_over_50ms_cpu]:-?} by CPU time"
bench_say "traced pass, main-thread ms by kind of work (wall/CPU): ${R[scroll_traced_ms_by_kind]:-?}"
bench_say "  inside its longest task: ${R[scroll_traced_longest_task_by_kind]:-?}"
bench_say "load average after the browser part: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with other work: \
long tasks and first paint move with it)"
bench_finish
