#!/usr/bin/env bash
# bench/ingest.sh: the ingest path (issues 4 and 22), in this order so that each phase starts clean:
#   1. Redis memory per queued log: storage role off, BENCH_MEM_LOGS logs through /ingest/batch,
#      INFO memory used_memory before and after (vs the size of the JSON posted); target <= 0.5x.
#   2. POST /ingest/single (one realistic log, cycling over 8 bodies) on ledgerd (workers = 1,
#      storage off, queue emptied before each round) vs nginx `return 204` with the same wrk
#      settings, rounds alternating, without and with an Idempotency-Key per request (the -idem
#      rows; nginx gets the same requests); target: ledgerd >= 0.6x nginx req/s.
#   3. /ingest/single p99 at about half the median req/s of 2 (wrk delay()), both variants;
#      target p99 < 5 ms.
#   4. End to end with the storage role on, ledgerd on every core (workers = auto, unpinned, like
#      the reference): BENCH_E2E_CONNS connections POST 1000-log batches for
#      BENCH_E2E_DURATION; logs/s = logs stored / (start of posting .. queue_depth:<pid> back to 0),
#      plus the deepest queue seen; rounds alternate without and with an Idempotency-Key.
#      References, alternating, median of BENCH_REF_RUNS each: the same rows loaded by `psql \copy`
#      into bench_ref (logs' columns and CHECKs, partitioned, BRIN(timestamp) + btree(project_id,
#      timestamp DESC)) and into `logs` itself; target: end to end >= 0.8x the reference rows/s.
#      Skipped (the references still run) when the build has no storage role yet.
# BENCH_PERF=1 adds a profile of each phase (perf record -g of ledgerd, Redis and, end to end, the
# PostgreSQL backends; an extra unmeasured run each), summarised as text in
# bench/results/<date>-<commit>-perf-{batch,single,e2e}.txt.
# Logs come from bench/genlogs.py (fixed seed). Takes about 6 minutes (3 with BENCH_DURATION=5s).
#
#   ./scripts/ledger bench ingest    (knobs: see bench/lib.sh; BENCH_MEM_LOGS 50000, BENCH_BATCHES 20,
#                                     BENCH_E2E_DURATION 5s, BENCH_E2E_CONNS 4, BENCH_E2E_TIMEOUT 180,
#                                     BENCH_REF_MIN_ROWS 200000, BENCH_REF_RUNS 3, BENCH_PERF 0,
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
# The bench measures throughput, not backpressure: no 503 unless something is badly wrong (a
# round of single logs at 60,000 req/s queues more than the default queue_max_bytes of 256 MiB).
INGEST_INI="queue_max_depth = 1000000000
queue_max_bytes = 1099511627776"

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

# Profiles (BENCH_PERF=1): perf_begin NAME PID... records call graphs of those processes until
# perf_end NAME, which writes a text summary (flat profile by process, library and symbol, then the
# processes' shares) to bench/results/<date>-<commit>-perf-NAME.txt. Profiled runs are extra runs,
# never one of the measured rounds.
PERF=${BENCH_PERF:-0}
PERF_PID=
perf_begin() {
    ((PERF)) || return 0
    local name=$1 pids
    shift
    pids=$(printf '%s,' "$@")
    perf record -g -F 997 -o "$BENCH_TMP/perf.$name.data" -p "${pids%,}" >"$BENCH_TMP/perf.$name.log" 2>&1 &
    PERF_PID=$!
    sleep 0.5
}
perf_end() {
    ((PERF)) || return 0
    local name=$1 out commit
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    commit=$(git -C "$LEDGER_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
    out=$LEDGER_ROOT/bench/results/$(date -u +%Y-%m-%d)-$commit-perf-$name.txt
    {
        printf '=== perf %s  %s  commit %s  load average %s\n' "$name" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" \
            "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf '%s\n' "${2:-}"
        printf '\n--- share of samples by process\n'
        perf report -i "$BENCH_TMP/perf.$name.data" --stdio --no-children --sort comm -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -12 || true
        printf '\n--- flat profile (self time), perf report --stdio --no-children --sort comm,dso,sym\n'
        perf report -i "$BENCH_TMP/perf.$name.data" --stdio --no-children --sort comm,dso,sym -g none \
            --percent-limit 0.4 2>/dev/null | grep -v '^#' | grep -v '^$' | head -80 || true
        printf '\n--- inclusive time (self + callees), perf report --stdio --children --sort comm,sym\n'
        perf report -i "$BENCH_TMP/perf.$name.data" --stdio --children --sort comm,sym -g none \
            --percent-limit 1.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -70 || true
    } | sed -e "s#$LEDGER_ROOT[^ ]*#<path>#g" -e "s#${TMPDIR:-/tmp}/[^ ]*#<tmp>#g" >"$out" || true
    bench_say "perf: ${out#"$LEDGER_ROOT"/}"
}

bench_account
KEY=$BENCH_KEY
PID=$BENCH_PID

# queue_reset: drop the queue and the project's counters, queue_bytes included (without it the
# bytes of every earlier phase stayed counted, and the end-to-end phase met queue_max_bytes: 503s)
# (storage role off only: the stream carries the storage role's consumer group).
queue_reset() {
    local usage
    usage=$(rcli --scan --pattern "usage:$PID:*" | tr '\n' ' ')
    # shellcheck disable=SC2086 # usage keys are space-separated and contain no spaces
    rcli DEL "$STREAM" "queue_depth:$PID" "queue_bytes:$PID" $usage >/dev/null
}

# Bodies: BATCHES x 1000 logs and SINGLES single logs, timestamps in the hour before now.
GEN=$BENCH_TMP/logs
# Timestamps inside the current 6-hour leaf of logs (schema 0004): a closed leaf gets its search
# indexes (GIN) built by the analytics role, which made COPY into it several times slower and the
# end-to-end result depend on the time of day. The hour before now (genlogs' default) is used when
# the leaf is that old; otherwise what the leaf has (at least 5 minutes: within the first 7 minutes
# after a boundary some logs still fall in the previous leaf).
now=$(date +%s)
leaf_age=$((now % 21600))
span=3540
((leaf_age - 120 < span)) && span=$((leaf_age - 120))
((span < 300)) && span=300
gen=$("$PY" "$LEDGER_ROOT/bench/genlogs.py" "$GEN" --project-id "$PID" --now "$now" \
    --batches "$BATCHES" --singles "$SINGLES" --span "$span")
declare -A G=()
for kv in $gen; do G[${kv%%=*}]=${kv#*=}; done

code=$(curl -s -o "$BENCH_TMP/single.out" -w '%{http_code}' -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    --data-binary "@$GEN/single_00.json" "$BENCH_LEDGERD_URL/api/v1/ingest/single")
[[ $code == 202 ]] || die "POST /api/v1/ingest/single answered $code: $(cat "$BENCH_TMP/single.out")"

# wrk scripts. ingest_lua PATH PREFIX COUNT [EXTRA_LUA [IDEM]]: cycle over COUNT bodies
# $GEN/PREFIX_NN.json; with IDEM=1 every request carries its own Idempotency-Key (unique per run).
ingest_lua() {
    cat <<EOF
local reqs, bodies, hdrs, i, idem, seq, tag = {}, {}, {}, 0, ${5:-0} == 1, 0, ""
function init(args)
    math.randomseed(os.time())
    tag = string.format("%x%x", os.time(), math.random(0, 0x7fffffff))
    hdrs = {["Host"] = wrk.host .. ":" .. wrk.port, ["Content-Type"] = "application/json", ["X-API-Key"] = "$KEY"}
    for k = 0, $3 - 1 do
        local f = assert(io.open(string.format("%s/$2_%02d.json", "$GEN", k), "rb"))
        local body = f:read("*a")
        f:close()
        bodies[#bodies + 1] = body
        reqs[#reqs + 1] = wrk.format("POST", "$1", hdrs, body)
    end
end
function request()
    i = i % #reqs + 1
    if not idem then return reqs[i] end
    seq = seq + 1
    hdrs["Idempotency-Key"] = tag .. "-" .. seq
    return wrk.format("POST", "$1", hdrs, bodies[i])
end
${4:-}
EOF
}
ingest_lua /api/v1/ingest/single single "$SINGLES" >"$BENCH_TMP/single.lua"
ingest_lua /api/v1/ingest/single single "$SINGLES" "" 1 >"$BENCH_TMP/single-idem.lua"
# Counts answers and accepted logs per thread; done() sums them over the threads.
batch_done_lua=$(cat <<'EOF'
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
)
ingest_lua /api/v1/ingest/batch batch "$BATCHES" "$batch_done_lua" >"$BENCH_TMP/batch.lua"
ingest_lua /api/v1/ingest/batch batch "$BATCHES" "$batch_done_lua" 1 >"$BENCH_TMP/batch-idem.lua"

pin="unpinned (1 core)"
((${#BENCH_CLIENT_PIN[@]})) && pin="wrk on cpu 0, servers on cpu 1"
bench_say "ingest: workers = 1, $pin; logs from genlogs.py: ${G[logs]} distinct in $BATCHES batches (timestamps over $span s)," \
    "avg ${G[avg_log_bytes]} B of JSON per log, ${G[exceptions]} exceptions; $INGEST_INI; load average at the start:" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"

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
perf_begin batch "$BENCH_LEDGERD_PID" "$(cat "$BENCH_TMP/redis/redis.pid")"
mem_accepted=$(post_batches "$mem_batches")
perf_end batch "batch ingest: $mem_batches x POST /api/v1/ingest/batch (1000 logs) one after the other, storage off; ledgerd (1 worker) and Redis"
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
single_ratio_idem=n/a
half_p99=n/a
half_p99_idem=n/a
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
bench_say "single: every request with its own Idempotency-Key in the -idem rows (nginx gets the same requests: the ratio" \
    "compares equal client costs)"
for v in "" -idem; do
    bench_wrk "$SINGLE_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/single$v.lua" >/dev/null
    bench_wrk "$NGINX_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/single$v.lua" >/dev/null
done
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for srv in ledgerd nginx ledgerd-idem nginx-idem; do
        v=
        [[ $srv == *-idem ]] && v=-idem
        if [[ $srv == ledgerd* ]]; then
            queue_reset
            url=$SINGLE_URL
        else
            url=$NGINX_URL
        fi
        bench_round "$srv" "$round" "$(bench_wrk "$url" "$BENCH_DURATION" -s "$BENCH_TMP/single$v.lua")"
    done
done
bench_medians ledgerd nginx ledgerd-idem nginx-idem
single_ratio=$(ratio "${BENCH_MED[ledgerd.rps]}" "${BENCH_MED[nginx.rps]}")
single_ratio_idem=$(ratio "${BENCH_MED[ledgerd-idem.rps]}" "${BENCH_MED[nginx-idem.rps]}")
bench_say "ratio ledgerd/nginx req/s: $single_ratio without Idempotency-Key, $single_ratio_idem with (target >= 0.6)"
if ((PERF)); then
    queue_reset
    perf_begin single "$BENCH_LEDGERD_PID" "$(cat "$BENCH_TMP/redis/redis.pid")"
    read -r r _ _ _ <<<"$(bench_wrk "$SINGLE_URL" "$BENCH_DURATION" -s "$BENCH_TMP/single.lua")"
    perf_end single "single-log ingest: wrk -c$BENCH_CONNECTIONS -d$BENCH_DURATION POST /api/v1/ingest/single (no Idempotency-Key, an extra unmeasured run: $r req/s under perf); ledgerd (1 worker, cpu 1) and Redis (cpu 0)"
fi

# ---- 3. p99 at half load ---------------------------------------------------------------------
# wrk calls delay() before each request: with C connections, a mean delay of d ms and a cycle
# overhead o ms (latency, timers) the rate is C * 1000 / (d + o). Two warm-up runs measure o.
half_lua() { # half_lua SCRIPT MEAN_DELAY_MS: uniform integer delays (ms timers) of that mean, desynchronised
    cat "$1"
    cat <<EOF
local span = 2 * $2 + 1
function delay() return math.floor(math.random() * span) end
EOF
}
half_load() { # half_load VARIANT (""|-idem): p99 at half the median req/s of that variant
    local v=$1 target d r a b e note
    target=$(awk -v r="${BENCH_MED[ledgerd$v.rps]}" 'BEGIN { printf "%.0f", r / 2 }')
    d=$(awk -v c="$BENCH_CONNECTIONS" -v t="$target" 'BEGIN { d = c * 1000 / t; printf "%.3f", d < 0 ? 0 : d }')
    for _ in 1 2; do
        half_lua "$BENCH_TMP/single$v.lua" "$d" >"$BENCH_TMP/half.lua"
        queue_reset
        read -r r _ _ _ <<<"$(bench_wrk "$SINGLE_URL" "$BENCH_WARMUP" -s "$BENCH_TMP/half.lua")"
        d=$(awk -v c="$BENCH_CONNECTIONS" -v t="$target" -v r="$r" -v d="$d" 'BEGIN {
            o = c * 1000 / r - d; d = c * 1000 / t - o; printf "%.3f", d < 0 ? 0 : d }')
    done
    half_lua "$BENCH_TMP/single$v.lua" "$d" >"$BENCH_TMP/half.lua"
    queue_reset
    read -r r a b e <<<"$(bench_wrk "$SINGLE_URL" "$BENCH_DURATION" -s "$BENCH_TMP/half.lua")"
    HALF_P99=$b
    note=
    ((e == 0)) || note="  ($e socket errors or non-2xx responses)"
    bench_say "$(printf 'half load%s (target %d req/s, -c%d, mean delay %.2f ms): %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms%s' \
        "$v" "$target" "$BENCH_CONNECTIONS" "$d" "$r" "$a" "$b" "$note")"
}
half_load ""
half_p99=$HALF_P99
half_load -idem
half_p99_idem=$HALF_P99
bench_say "p99 at half load: $half_p99 ms without Idempotency-Key, $half_p99_idem ms with (target < 5 ms)"
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
e2e_rates_idem=()
e2e_max_rows=0
if ! phase e2e; then
    bench_say "end to end: skipped (BENCH_INGEST_PHASES)"
elif ((has_storage)); then
    bench_say "end to end: workers = $E2E_WORKERS, unpinned; wrk -t1 -c$E2E_CONNS -d$E2E_DURATION POST /ingest/batch (1000 logs each, $BATCHES bodies" \
        "cycled), storage on; time = start of posting .. queue_depth:$PID back to 0; $BENCH_ROUNDS rounds, logs emptied before each;" \
        "e2e-idem: every request with its own Idempotency-Key"
    # e2e_round ROUND VARIANT (""|-idem|-perf): one round; VARIANT -idem posts with an Idempotency-Key
    # per request; -perf is an extra, unmeasured round under perf (no key).
    e2e_round() {
        local round=$1 v=$2 lua=$BENCH_TMP/batch.lua flag=$BENCH_TMP/posting.done poller t0 t_post t_end deepest line
        local stored secs rate post_rate note kv r
        [[ $v == -idem ]] && lua=$BENCH_TMP/batch-idem.lua
        psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE logs" >/dev/null
        [[ $(rcli GET "queue_depth:$PID") =~ ^0?$ ]] || die "queue_depth:$PID is not 0 before round $round"
        rm -f "$flag"
        "$PY" "$BENCH_TMP/poll.py" "$BENCH_REDIS_PORT" "queue_depth:$PID" "$flag" "$E2E_TIMEOUT" \
            >"$BENCH_TMP/poll.out" 2>&1 &
        poller=$!
        if [[ $v == -perf ]]; then
            local pm
            pm=$(head -1 "$BENCH_TMP/pg/data/postmaster.pid")
            # shellcheck disable=SC2046 # one pid per word
            perf_begin e2e "$BENCH_LEDGERD_PID" "$(cat "$BENCH_TMP/redis/redis.pid")" $(pgrep -P "$pm")
        fi
        t0=$(now_s)
        read -r r _ _ _ <<<"$(BENCH_CONNECTIONS=$E2E_CONNS bench_wrk "$BENCH_LEDGERD_URL/api/v1/ingest/batch" \
            "$E2E_DURATION" -s "$lua")"
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
        [[ $v == -perf ]] && perf_end e2e "end to end, an extra unmeasured round under perf: wrk -c$E2E_CONNS -d$E2E_DURATION POST /api/v1/ingest/batch (1000 logs), storage on, workers = $E2E_WORKERS; ledgerd (ingest + storage consumer + COPY), Redis and the PostgreSQL backends; $rate logs/s under perf"
        case $v in
        "") e2e_rates+=("$rate") ;;
        -idem) e2e_rates_idem+=("$rate") ;;
        esac
        ((stored > e2e_max_rows)) && e2e_max_rows=$stored
        note=
        ((W[n503] + W[nother] == 0)) || note="  (non-202: ${W[n503]} x 503, ${W[nother]} other)"
        ((W[rejected] == 0)) || note+="  (${W[rejected]} logs rejected)"
        ((stored >= W[accepted])) || note+="  (LOST: stored $stored < accepted ${W[accepted]})"
        ((stored <= W[accepted])) || note+="  (stored $stored > accepted ${W[accepted]}: answers lost by wrk, or rows twice)"
        bench_say "$(printf 'round %d  %-9s %8d logs stored (%d accepted in %d answers seen by wrk) in %6.2f s = %7d logs/s;' \
            "$round" "e2e$v" "$stored" "${W[accepted]}" "${W[n202]}" "$secs" "$rate")" \
            "$(printf 'posting %7d logs/s, deepest queue %d, drained %.2f s after posting%s' \
                "$post_rate" "$deepest" "$(elapsed "$t_post" "$t_end")" "$note")"
    }
    for ((round = 1; round <= BENCH_ROUNDS; round++)); do
        e2e_round "$round" ""
        e2e_round "$round" -idem
    done
    ((PERF)) && e2e_round 0 -perf
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
# Two references, alternating: bench_ref (logs' columns, CHECKs and ingest-path indexes, none added for
# exactly-once: the reference of earlier results) and `logs` itself (the same table ledgerd writes,
# every index it has at this commit; the rows' queue_id is NULL).
ref_rates=()
ref_logs_rates=()
for ((run = 1; run <= REF_RUNS; run++)); do
    for tbl in bench_ref logs; do
        psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE $tbl" >/dev/null
        t0=$(now_s)
        psql_db ledger_logs "\\copy $tbl ($(tr -d '\n' <<<"$ref_cols")) FROM '$BENCH_TMP/ref_big.copy'" >/dev/null
        secs=$(elapsed "$t0" "$(now_s)")
        n=$(psql_db ledger_logs "SELECT count(*) FROM $tbl")
        ((n == ref_rows)) || die "reference: $tbl holds $n rows, expected $ref_rows"
        rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        if [[ $tbl == logs ]]; then ref_logs_rates+=("$rate"); else ref_rates+=("$rate"); fi
        bench_say "$(printf 'run %d    ref  %8d rows by psql \\copy into %-9s in %6.2f s = %7d rows/s (%.0f MiB of COPY text)' \
            "$run" "$n" "$tbl" "$secs" "$rate" "$(awk -v b="$(stat -c %s "$BENCH_TMP/ref_big.copy")" 'BEGIN { print b / 1048576 }')")"
    done
done
psql_db ledger_logs "TRUNCATE logs" >/dev/null
ref_med=$(median "${ref_rates[@]}")
ref_logs_med=$(median "${ref_logs_rates[@]}")
e2e_ratio=n/a
e2e_ratio_idem=n/a
e2e_ratio_logs=n/a
if ((${#e2e_rates[@]})); then
    e2e_med=$(median "${e2e_rates[@]}")
    e2e_ratio=$(ratio "$e2e_med" "$ref_med")
    e2e_ratio_logs=$(ratio "$e2e_med" "$ref_logs_med")
    bench_say "$(printf 'median   e2e %7.0f logs/s, ref bench_ref %7.0f rows/s: ratio %s; ref logs %7.0f rows/s: ratio %s (target >= 0.8)' \
        "$e2e_med" "$ref_med" "$e2e_ratio" "$ref_logs_med" "$e2e_ratio_logs")"
fi
if ((${#e2e_rates_idem[@]})); then
    e2e_med_idem=$(median "${e2e_rates_idem[@]}")
    e2e_ratio_idem=$(ratio "$e2e_med_idem" "$ref_med")
    bench_say "$(printf 'median   e2e-idem %7.0f logs/s: ratio %s to bench_ref, %s to logs' \
        "$e2e_med_idem" "$e2e_ratio_idem" "$(ratio "$e2e_med_idem" "$ref_logs_med")")"
fi
((${#e2e_rates[@]})) || bench_say "$(printf 'median   ref %7.0f rows/s; end to end not measured' "$ref_med")"

mem_ratio=n/a
[[ $mem_per != n/a ]] && mem_ratio=$(ratio "$mem_per" "${G[avg_log_bytes]}")
bench_say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_say "summary: single ledgerd/nginx req/s $single_ratio, with Idempotency-Key $single_ratio_idem (target >= 0.6);" \
    "p99 at half load $half_p99 ms, with key $half_p99_idem ms (target < 5 ms); end to end/\\copy $e2e_ratio" \
    "(into logs: $e2e_ratio_logs), with key $e2e_ratio_idem (target >= 0.8); redis $mem_per B per queued log" \
    "for ${G[avg_log_bytes]} B of JSON = $mem_ratio (target <= 0.5)"
bench_finish
