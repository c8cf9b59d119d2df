#!/usr/bin/env bash
# bench/ingest.sh: the ingest path (issue 4 targets), in this order so that each phase starts clean:
#   1. Redis memory per queued log: storage role off, BENCH_MEM_LOGS logs through /ingest/batch,
#      INFO memory used_memory before and after (vs the size of the JSON posted).
#   2. POST /ingest/single (one realistic log, cycling over 8 bodies) on ledgerd (workers = 1,
#      storage off, queue emptied before each round) vs nginx `return 204` with the same wrk
#      settings, rounds alternating; target: ledgerd >= 0.5x nginx req/s.
#   3. /ingest/single p99 at about half the median req/s of 2 (wrk delay()); target p99 < 5 ms.
#   4. End to end with the storage role on, ledgerd on every core (workers = auto, unpinned, like
#      the reference): BENCH_E2E_CONNS connections POST 1000-log batches for
#      BENCH_E2E_DURATION; logs/s = logs stored / (start of posting .. queue_depth:<pid> back to 0),
#      plus the deepest queue seen. Reference: the same rows loaded by `psql \copy` into bench_ref
#      (logs' columns and CHECKs, partitioned, BRIN(timestamp) + btree(project_id, timestamp DESC)),
#      median of BENCH_REF_RUNS; target: end to end >= 0.6x the reference rows/s. Skipped (the
#      reference still runs) when the build has no storage role yet.
# Logs come from bench/genlogs.py (fixed seed). Takes about 3 minutes.
#
#   ./scripts/ledger bench ingest    (knobs: see bench/lib.sh; BENCH_MEM_LOGS 50000, BENCH_BATCHES 20,
#                                     BENCH_E2E_DURATION 5s, BENCH_E2E_CONNS 4, BENCH_E2E_TIMEOUT 180,
#                                     BENCH_REF_MIN_ROWS 200000, BENCH_REF_RUNS 3,
#                                     BENCH_INGEST_PHASES "mem single e2e", BENCH_E2E_WORKERS auto)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

MEM_LOGS=${BENCH_MEM_LOGS:-50000}
BATCHES=${BENCH_BATCHES:-20}
E2E_DURATION=${BENCH_E2E_DURATION:-5s}
E2E_CONNS=${BENCH_E2E_CONNS:-4}
E2E_TIMEOUT=${BENCH_E2E_TIMEOUT:-180}
REF_MIN_ROWS=${BENCH_REF_MIN_ROWS:-200000}
REF_RUNS=${BENCH_REF_RUNS:-3}
PHASES=" ${BENCH_INGEST_PHASES:-mem single e2e} "
# The end-to-end phase runs the system as deployed on one box: every core (workers = auto,
# unpinned), as the psql \copy reference does.
E2E_WORKERS=${BENCH_E2E_WORKERS:-auto}
phase() { [[ $PHASES == *" $1 "* ]]; }
STREAM=ledger:logs
SINGLES=8
# The bench measures throughput, not backpressure: no 503 unless something is badly wrong.
INGEST_INI="queue_max_depth = 1000000000"

bench_init ingest
bench_start_pg
bench_start_redis
INI_STORAGE=off INI_INGEST_EXTRA=$INGEST_INI bench_start_ledgerd
bench_start_nginx

rcli() { redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" "$@"; }
psql_db() { # psql_db DB SQL: one statement batch, quiet, unaligned
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

bench_account
KEY=$BENCH_KEY
PID=$BENCH_PID

# queue_reset: drop the queue and the project's counters (storage role off only: the stream
# carries the storage role's consumer group).
queue_reset() {
    local usage
    usage=$(rcli --scan --pattern "usage:$PID:*" | tr '\n' ' ')
    # shellcheck disable=SC2086 # usage keys are space-separated and contain no spaces
    rcli DEL "$STREAM" "queue_depth:$PID" $usage >/dev/null
}

# Bodies: BATCHES x 1000 logs and SINGLES single logs, timestamps in the hour before now.
GEN=$BENCH_TMP/logs
gen=$("$PY" "$LEDGER_ROOT/bench/genlogs.py" "$GEN" --project-id "$PID" --now "$(date +%s)" \
    --batches "$BATCHES" --singles "$SINGLES")
declare -A G=()
for kv in $gen; do G[${kv%%=*}]=${kv#*=}; done

code=$(curl -s -o "$BENCH_TMP/single.out" -w '%{http_code}' -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    --data-binary "@$GEN/single_00.json" "$BENCH_LEDGERD_URL/api/v1/ingest/single")
[[ $code == 202 ]] || die "POST /api/v1/ingest/single answered $code: $(cat "$BENCH_TMP/single.out")"

# wrk scripts. ingest_lua PATH PREFIX COUNT [EXTRA_LUA]: cycle over COUNT bodies $GEN/PREFIX_NN.json.
ingest_lua() {
    cat <<EOF
local reqs, i = {}, 0
function init(args)
    for k = 0, $3 - 1 do
        local f = assert(io.open(string.format("%s/$2_%02d.json", "$GEN", k), "rb"))
        local body = f:read("*a")
        f:close()
        reqs[#reqs + 1] = wrk.format("POST", "$1", {["Host"] = wrk.host .. ":" .. wrk.port,
            ["Content-Type"] = "application/json", ["X-API-Key"] = "$KEY"}, body)
    end
end
function request()
    i = i % #reqs + 1
    return reqs[i]
end
${4:-}
EOF
}
ingest_lua /api/v1/ingest/single single "$SINGLES" >"$BENCH_TMP/single.lua"
# Counts answers and accepted logs per thread; done() sums them over the threads.
ingest_lua /api/v1/ingest/batch batch "$BATCHES" "$(cat <<'EOF'
local threads = {}
n202, n503, nother, accepted, rejected = 0, 0, 0, 0, 0
function setup(thread) threads[#threads + 1] = thread end
function response(status, headers, body)
    if status == 202 then
        n202 = n202 + 1
        accepted = accepted + tonumber(body:match('"accepted":%s*(%d+)') or 0)
        rejected = rejected + tonumber(body:match('"rejected":%s*(%d+)') or 0)
    elseif status == 503 then
        n503 = n503 + 1
    else
        nother = nother + 1
    end
end
function done(summary, latency, requests)
    local t = {n202 = 0, n503 = 0, nother = 0, accepted = 0, rejected = 0}
    for _, th in ipairs(threads) do
        for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
    end
    io.write(string.format("batch: n202=%d n503=%d nother=%d accepted=%d rejected=%d\n",
        t.n202, t.n503, t.nother, t.accepted, t.rejected))
end
EOF
)" >"$BENCH_TMP/batch.lua"

pin="unpinned (1 core)"
((${#BENCH_CLIENT_PIN[@]})) && pin="wrk on cpu 0, servers on cpu 1"
bench_say "ingest: workers = 1, $pin; logs from genlogs.py: ${G[logs]} distinct in $BATCHES batches," \
    "avg ${G[avg_log_bytes]} B of JSON per log, ${G[exceptions]} exceptions; $INGEST_INI"

# ---- 1. Redis memory per queued log (storage off) -------------------------------------------
mem_per=n/a
cat >"$BENCH_TMP/post.py" <<'PYEOF'
# post.py URL KEY GEN NBODIES N: POST N batches (cycling over the bodies) one after the other on one
# keep-alive connection; prints the number of logs accepted.
import sys, requests
url, key, gen, nb, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = requests.Session()
h = {"X-API-Key": key, "Content-Type": "application/json"}
acc = 0
for i in range(n):
    with open("%s/batch_%02d.json" % (gen, i % nb), "rb") as f:
        body = f.read()
    r = s.post(url + "/api/v1/ingest/batch", data=body, headers=h, timeout=60)
    if r.status_code != 202:
        sys.exit("POST /ingest/batch answered %d: %s" % (r.status_code, r.text[:300]))
    acc += r.json()["accepted"]
print(acc)
PYEOF
post_batches() { "$PY" "$BENCH_TMP/post.py" "$BENCH_LEDGERD_URL" "$KEY" "$GEN" "$BATCHES" "$1"; }
post_batches 1 >/dev/null # warm-up: the enqueue script loaded, Redis buffers grown
queue_reset
if phase mem; then
mem_used() { rcli INFO memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
sleep 0.5
mem_before=$(mem_used)
mem_batches=$(((MEM_LOGS + 999) / 1000))
mem_json=0
for ((i = 0; i < mem_batches; i++)); do
    mem_json=$((mem_json + $(stat -c %s "$GEN/$(printf 'batch_%02d.json' $((i % BATCHES)))")))
done
mem_accepted=$(post_batches "$mem_batches")
sleep 0.5
mem_after=$(mem_used)
xlen=$(rcli XLEN "$STREAM")
stream_mem=$(rcli MEMORY USAGE "$STREAM" SAMPLES 0)
((mem_accepted > 0)) || die "no log accepted in the memory phase"
mem_per=$(awk -v a="$mem_after" -v b="$mem_before" -v n="$mem_accepted" 'BEGIN { printf "%.0f", (a - b) / n }')
bench_say "$(printf 'redis    %d logs queued (storage off): used_memory +%.1f MiB = %s B/log; stream %d entries,' \
    "$mem_accepted" "$(awk -v d=$((mem_after - mem_before)) 'BEGIN { print d / 1048576 }')" "$mem_per" "$xlen")" \
    "$(printf 'MEMORY USAGE %.1f MiB; JSON posted %s B/log' "$(awk -v d="$stream_mem" 'BEGIN { print d / 1048576 }')" \
        "$((mem_json / (mem_batches * 1000)))")"
queue_reset
fi

# ---- 2. /ingest/single vs nginx (storage off) ------------------------------------------------
single_ratio=n/a
half_p99=n/a
if phase single; then
SINGLE_URL=$BENCH_LEDGERD_URL/api/v1/ingest/single
NGINX_URL=$BENCH_NGINX_URL/api/v1/ingest/single
# The worker under test gets the server core to itself, as nginx does: Redis (a separate service,
# on another host in a fleet) runs on the client core for this phase instead of wherever the
# scheduler puts it (BENCH_SINGLE_REDIS_PIN=0 leaves it unpinned).
redis_pin=unpinned
if ((${#BENCH_CLIENT_PIN[@]})) && [[ ${BENCH_SINGLE_REDIS_PIN:-1} == 1 ]]; then
    taskset -a -p -c 0 "$(cat "$BENCH_TMP/redis/redis.pid")" >/dev/null && redis_pin="on cpu 0 with wrk"
fi
bench_say "single: wrk -t1 -c$BENCH_CONNECTIONS -d$BENCH_DURATION --latency, 8 bodies cycled, $BENCH_ROUNDS rounds" \
    "alternating after a $BENCH_WARMUP warm-up each; ledgerd storage off, queue emptied before each round; Redis $redis_pin"
bench_wrk "$SINGLE_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/single.lua" >/dev/null
bench_wrk "$NGINX_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/single.lua" >/dev/null
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for srv in ledgerd nginx; do
        if [[ $srv == ledgerd ]]; then
            queue_reset
            url=$SINGLE_URL
        else
            url=$NGINX_URL
        fi
        bench_round "$srv" "$round" "$(bench_wrk "$url" "$BENCH_DURATION" -s "$BENCH_TMP/single.lua")"
    done
done
bench_medians ledgerd nginx
single_ratio=$(ratio "${BENCH_MED[ledgerd.rps]}" "${BENCH_MED[nginx.rps]}")
bench_say "ratio ledgerd/nginx req/s: $single_ratio (target >= 0.5)"

# ---- 3. p99 at half load ---------------------------------------------------------------------
# wrk calls delay() before each request: with C connections, a mean delay of d ms and a cycle
# overhead o ms (latency, timers) the rate is C * 1000 / (d + o). Two warm-up runs measure o.
target=$(awk -v r="${BENCH_MED[ledgerd.rps]}" 'BEGIN { printf "%.0f", r / 2 }')
half_lua() { # half_lua MEAN_DELAY_MS: uniform integer delays (ms timers) of that mean, desynchronised
    cat "$BENCH_TMP/single.lua"
    cat <<EOF
local span = 2 * $1 + 1
function delay() return math.floor(math.random() * span) end
EOF
}
d=$(awk -v c="$BENCH_CONNECTIONS" -v t="$target" 'BEGIN { d = c * 1000 / t; printf "%.3f", d < 0 ? 0 : d }')
for _ in 1 2; do
    half_lua "$d" >"$BENCH_TMP/half.lua"
    queue_reset
    read -r r _ _ _ <<<"$(bench_wrk "$SINGLE_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/half.lua")"
    d=$(awk -v c="$BENCH_CONNECTIONS" -v t="$target" -v r="$r" -v d="$d" 'BEGIN {
        o = c * 1000 / r - d; d = c * 1000 / t - o; printf "%.3f", d < 0 ? 0 : d }')
done
half_lua "$d" >"$BENCH_TMP/half.lua"
queue_reset
read -r r a b e <<<"$(bench_wrk "$SINGLE_URL" "$BENCH_DURATION" -s "$BENCH_TMP/half.lua")"
half_p99=$b
note=
((e == 0)) || note="  ($e socket errors or non-2xx responses)"
bench_say "$(printf 'half load (target %d req/s, -c%d, mean delay %.2f ms): %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms%s' \
    "$target" "$BENCH_CONNECTIONS" "$d" "$r" "$a" "$b" "$note")"
bench_say "p99 at half load: $half_p99 ms (target < 5 ms)"
queue_reset
fi

# ---- 4. End to end (storage on) vs psql \copy ------------------------------------------------
# Redis back on every core: this phase, like its reference, uses the whole machine.
taskset -a -p -c "0-$(($(nproc) - 1))" "$(cat "$BENCH_TMP/redis/redis.pid")" >/dev/null || true
bench_stop_ledgerd
INI_WORKERS=$E2E_WORKERS BENCH_LEDGERD_WHOLE=1 INI_STORAGE=on INI_INGEST_EXTRA=$INGEST_INI bench_start_ledgerd
has_storage=0
"$BENCH_BIN" -c "$BENCH_TMP/ledger.ini" --print-config 2>/dev/null |
    awk '/^\[/ { s = $0; next } s == "[storage]" && /^[a-z_]+ *=/ { found = 1 } END { exit !found }' && has_storage=1

cat >"$BENCH_TMP/poll.py" <<'PYEOF'
# poll.py REDIS_PORT KEY FLAG TIMEOUT_S: GET KEY every 50 ms. Until FLAG exists (posting over) it
# tracks the deepest value; then it waits for 0 and prints the wall time of that read.
import os, sys, time, redis
port, key, flag, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
r = redis.Redis(host="127.0.0.1", port=port)
t0, deepest = time.time(), 0
while True:
    posting = not os.path.exists(flag)  # before the read: a 0 read after the flag is final
    depth = int(r.get(key) or 0)
    now = time.time()
    deepest = max(deepest, depth)
    if not posting and depth == 0:
        print("drained end=%.6f deepest=%d" % (now, deepest))
        sys.exit(0)
    if now - t0 > timeout:
        print("timeout depth=%d deepest=%d" % (depth, deepest))
        sys.exit(1)
    time.sleep(0.05)
PYEOF

e2e_rates=()
e2e_max_rows=0
if ! phase e2e; then
    bench_say "end to end: skipped (BENCH_INGEST_PHASES)"
elif ((has_storage)); then
    bench_say "end to end: workers = $E2E_WORKERS, unpinned; wrk -t1 -c$E2E_CONNS -d$E2E_DURATION POST /ingest/batch (1000 logs each, $BATCHES bodies" \
        "cycled), storage on; time = start of posting .. queue_depth:$PID back to 0; $BENCH_ROUNDS rounds, logs emptied before each"
    for ((round = 1; round <= BENCH_ROUNDS; round++)); do
        psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE logs" >/dev/null
        [[ $(rcli GET "queue_depth:$PID") =~ ^0?$ ]] || die "queue_depth:$PID is not 0 before round $round"
        flag=$BENCH_TMP/posting.done
        rm -f "$flag"
        "$PY" "$BENCH_TMP/poll.py" "$BENCH_REDIS_PORT" "queue_depth:$PID" "$flag" "$E2E_TIMEOUT" \
            >"$BENCH_TMP/poll.out" 2>&1 &
        poller=$!
        t0=$(now_s)
        read -r r _ _ _ <<<"$(BENCH_CONNECTIONS=$E2E_CONNS bench_wrk "$BENCH_LEDGERD_URL/api/v1/ingest/batch" \
            "$E2E_DURATION" -s "$BENCH_TMP/batch.lua")"
        t_post=$(now_s)
        touch "$flag"
        wait "$poller" || die "end to end round $round: queue_depth:$PID not back to 0 within ${E2E_TIMEOUT}s" \
            "after posting ($(cat "$BENCH_TMP/poll.out")); storage role stalled? log: $BENCH_TMP/ledgerd.log"
        read -r _ t_end deepest <<<"$(cat "$BENCH_TMP/poll.out")"
        t_end=${t_end#end=}
        deepest=${deepest#deepest=}
        line=$(grep '^batch:' "$BENCH_TMP/wrk.out") || die "wrk printed no batch counts"
        declare -A W=()
        for kv in ${line#batch: }; do W[${kv%%=*}]=${kv#*=}; done
        stored=$(psql_db ledger_logs "SELECT count(*) FROM logs WHERE project_id = $PID")
        secs=$(elapsed "$t0" "$t_end")
        rate=$(awk -v n="$stored" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        post_rate=$(awk -v n="${W[accepted]}" -v s="$(elapsed "$t0" "$t_post")" 'BEGIN { printf "%.0f", n / s }')
        e2e_rates+=("$rate")
        ((stored > e2e_max_rows)) && e2e_max_rows=$stored
        note=
        ((W[n503] + W[nother] == 0)) || note="  (non-202: ${W[n503]} x 503, ${W[nother]} other)"
        ((W[rejected] == 0)) || note+="  (${W[rejected]} logs rejected)"
        ((stored >= W[accepted])) || note+="  (LOST: stored $stored < accepted ${W[accepted]})"
        bench_say "$(printf 'round %d  e2e  %8d logs stored (%d accepted in %d answers seen by wrk) in %6.2f s = %7d logs/s;' \
            "$round" "$stored" "${W[accepted]}" "${W[n202]}" "$secs" "$rate")" \
            "$(printf 'posting %7d logs/s, deepest queue %d, drained %.2f s after posting%s' \
                "$post_rate" "$deepest" "$(elapsed "$t_post" "$t_end")" "$note")"
    done
else
    bench_say "end to end: SKIPPED: this build has no storage role yet ([storage] has no keys in --print-config)"
fi
bench_stop_ledgerd

# Reference: the same rows through psql \copy, at least as many as one end-to-end round stored.
ref_rows=$REF_MIN_ROWS
((e2e_max_rows > ref_rows)) && ref_rows=$e2e_max_rows
reps=$(((ref_rows + G[logs] - 1) / G[logs]))
ref_rows=$((reps * G[logs]))
for ((i = 0; i < reps; i++)); do cat "$GEN/ref.copy"; done >"$BENCH_TMP/ref_big.copy"
psql_db ledger_logs "DROP TABLE IF EXISTS bench_ref; DROP SEQUENCE IF EXISTS bench_ref_id_seq;
    CREATE SEQUENCE bench_ref_id_seq;
    CREATE TABLE bench_ref (LIKE logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (\"timestamp\");
    ALTER TABLE bench_ref ALTER COLUMN id SET DEFAULT nextval('bench_ref_id_seq');
    DO \$\$
    DECLARE m date;
    BEGIN
        FOR m IN SELECT generate_series(date_trunc('month', timestamptz '${G[ts_min]}' AT TIME ZONE 'UTC'),
                                        date_trunc('month', timestamptz '${G[ts_max]}' AT TIME ZONE 'UTC'),
                                        interval '1 month')::date
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF bench_ref FOR VALUES FROM (%L) TO (%L)',
                           'bench_ref_' || to_char(m, 'YYYY_MM'), m::text || ' 00:00:00+00',
                           (m + interval '1 month')::date::text || ' 00:00:00+00');
        END LOOP;
    END
    \$\$;
    CREATE INDEX ON bench_ref USING BRIN (\"timestamp\");
    CREATE INDEX ON bench_ref (project_id, \"timestamp\" DESC);" >/dev/null
ref_cols='project_id, "timestamp", ingested_at, level, log_type, importance, environment, release, message,
    error_type, error_message, stack_trace, attributes, sdk_version, platform, platform_version, error_fingerprint'
ref_rates=()
for ((run = 1; run <= REF_RUNS; run++)); do
    psql_db ledger_logs "TRUNCATE bench_ref" >/dev/null
    t0=$(now_s)
    psql_db ledger_logs "\\copy bench_ref ($(tr -d '\n' <<<"$ref_cols")) FROM '$BENCH_TMP/ref_big.copy'" >/dev/null
    secs=$(elapsed "$t0" "$(now_s)")
    n=$(psql_db ledger_logs "SELECT count(*) FROM bench_ref")
    ((n == ref_rows)) || die "reference: bench_ref holds $n rows, expected $ref_rows"
    rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    ref_rates+=("$rate")
    bench_say "$(printf 'run %d    ref  %8d rows by psql \\copy in %6.2f s = %7d rows/s (%.0f MiB of COPY text)' \
        "$run" "$n" "$secs" "$rate" "$(awk -v b="$(stat -c %s "$BENCH_TMP/ref_big.copy")" 'BEGIN { print b / 1048576 }')")"
done
ref_med=$(median "${ref_rates[@]}")
e2e_ratio=n/a
if ((${#e2e_rates[@]})); then
    e2e_med=$(median "${e2e_rates[@]}")
    e2e_ratio=$(ratio "$e2e_med" "$ref_med")
    bench_say "$(printf 'median   e2e %7.0f logs/s, ref %7.0f rows/s: ratio %s (target >= 0.6)' "$e2e_med" "$ref_med" "$e2e_ratio")"
else
    bench_say "$(printf 'median   ref %7.0f rows/s; end to end not measured (no storage role)' "$ref_med")"
fi

bench_say "summary: single ledgerd/nginx req/s $single_ratio (target >= 0.5); p99 at half load $half_p99 ms" \
    "(target < 5 ms); end to end/\\copy $e2e_ratio (target >= 0.6); redis $mem_per B per queued log" \
    "(JSON ${G[avg_log_bytes]} B)"
bench_finish
