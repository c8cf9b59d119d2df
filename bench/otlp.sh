#!/usr/bin/env bash
# bench/otlp.sh: OTLP/protobuf logs end to end (issue 16 target): the same genlogs.py logs, 1000 per
# request, posted as POST /api/v1/ingest/batch (JSON) and as POST /v1/logs (an OTLP
# ExportLogsServiceRequest, bench/otlpbodies.py), in alternating rounds on one ledgerd with the
# storage role on (workers = auto, unpinned). logs/s = logs stored / (start of posting ..
# queue_depth:<pid> back to 0), as bench/ingest.sh's end-to-end phase; target: OTLP >= 0.9x batch
# (medians). Takes about BENCH_ROUNDS x 2 x (BENCH_E2E_DURATION + drain).
#
#   ./scripts/ledger bench otlp    (knobs: see bench/lib.sh; BENCH_BATCHES 20, BENCH_E2E_DURATION 5s,
#                                   BENCH_E2E_CONNS 4, BENCH_E2E_TIMEOUT 180, BENCH_E2E_WORKERS auto)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

BATCHES=${BENCH_BATCHES:-20}
E2E_DURATION=${BENCH_E2E_DURATION:-5s}
E2E_CONNS=${BENCH_E2E_CONNS:-4}
E2E_TIMEOUT=${BENCH_E2E_TIMEOUT:-180}

bench_init otlp
bench_start_pg
bench_start_redis
BENCH_LEDGERD_WHOLE=1 INI_WORKERS=${BENCH_E2E_WORKERS:-auto} \
    INI_INGEST_EXTRA="queue_max_depth = 1000000000" bench_start_ledgerd
bench_account
KEY=$BENCH_KEY
PID=$BENCH_PID

rcli() { redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" "$@"; }
psql_db() {
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

GEN=$BENCH_TMP/logs
"$PY" "$LEDGER_ROOT/bench/genlogs.py" "$GEN" --project-id "$PID" --now "$(date +%s)" \
    --batches "$BATCHES" --singles 1 >/dev/null
"$PY" "$LEDGER_ROOT/bench/otlpbodies.py" "$GEN" >/dev/null

code=$(curl -s -o "$BENCH_TMP/otlp.out" -w '%{http_code}' -H "X-API-Key: $KEY" \
    -H 'Content-Type: application/x-protobuf' --data-binary "@$GEN/otlp_00.pb" "$BENCH_LEDGERD_URL/v1/logs")
[[ $code == 200 && ! -s $BENCH_TMP/otlp.out ]] || die "POST /v1/logs answered $code: $(head -c 300 "$BENCH_TMP/otlp.out")"

# wrk script: cycle over the bodies of one kind; count answers (a partial success counts as bad).
body_lua() { # body_lua PATH FILE_FORMAT CONTENT_TYPE OK_STATUS
    cat <<LUA
local reqs, i, threads = {}, 0, {}
nok, nbad = 0, 0
function setup(thread) threads[#threads + 1] = thread end
function init(args)
    for k = 0, $BATCHES - 1 do
        local f = assert(io.open(string.format("%s/$2", "$GEN", k), "rb"))
        local body = f:read("*a")
        f:close()
        reqs[#reqs + 1] = wrk.format("POST", "$1", {["Host"] = wrk.host .. ":" .. wrk.port,
            ["Content-Type"] = "$3", ["X-API-Key"] = "$KEY"}, body)
    end
end
function request()
    i = i % #reqs + 1
    return reqs[i]
end
function response(status, headers, body)
    if status == $4 and (status ~= 200 or #body == 0) then nok = nok + 1 else nbad = nbad + 1 end
end
function done(summary, latency, requests)
    local ok, bad = 0, 0
    for _, th in ipairs(threads) do ok = ok + (th:get("nok") or 0); bad = bad + (th:get("nbad") or 0) end
    io.write(string.format("answers: ok=%d bad=%d\n", ok, bad))
end
LUA
}
body_lua /api/v1/ingest/batch 'batch_%02d.json' application/json 202 >"$BENCH_TMP/batch.lua"
body_lua /v1/logs 'otlp_%02d.pb' application/x-protobuf 200 >"$BENCH_TMP/otlp.lua"

cat >"$BENCH_TMP/poll.py" <<'PYEOF'
# poll.py REDIS_PORT KEY FLAG TIMEOUT_S: once FLAG exists (posting over), wait for KEY to read 0 and
# print the wall time of that read.
import os, sys, time, redis
port, key, flag, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
r = redis.Redis(host="127.0.0.1", port=port)
t0 = time.time()
while True:
    posting = not os.path.exists(flag)
    depth = int(r.get(key) or 0)
    now = time.time()
    if not posting and depth == 0:
        print("drained end=%.6f" % now)
        sys.exit(0)
    if now - t0 > timeout:
        print("timeout depth=%d" % depth)
        sys.exit(1)
    time.sleep(0.05)
PYEOF

bench_say "otlp: workers = ${BENCH_E2E_WORKERS:-auto}, unpinned; wrk -t1 -c$E2E_CONNS -d$E2E_DURATION, 1000 logs per request" \
    "($BATCHES bodies cycled), storage on; batch (JSON) and OTLP/protobuf runs alternating (which goes first alternates per round), $BENCH_ROUNDS each"
declare -A RATES=([batch]="" [otlp]="")
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    order="batch otlp"
    ((round % 2)) || order="otlp batch" # who goes first alternates: a round can suffer from the one before
    for kind in $order; do
        psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE logs" >/dev/null
        [[ $(rcli GET "queue_depth:$PID") =~ ^0?$ ]] || die "queue_depth:$PID is not 0 before a round"
        flag=$BENCH_TMP/posting.done
        rm -f "$flag"
        "$PY" "$BENCH_TMP/poll.py" "$BENCH_REDIS_PORT" "queue_depth:$PID" "$flag" "$E2E_TIMEOUT" \
            >"$BENCH_TMP/poll.out" 2>&1 &
        poller=$!
        url=$BENCH_LEDGERD_URL/api/v1/ingest/batch
        [[ $kind == otlp ]] && url=$BENCH_LEDGERD_URL/v1/logs
        t0=$(now_s)
        BENCH_CONNECTIONS=$E2E_CONNS bench_wrk "$url" "$E2E_DURATION" -s "$BENCH_TMP/$kind.lua" >/dev/null
        touch "$flag"
        wait "$poller" || die "round $round $kind: queue not drained within ${E2E_TIMEOUT}s ($(cat "$BENCH_TMP/poll.out"))"
        t_end=$(sed -n 's/.*end=\([0-9.]*\).*/\1/p' "$BENCH_TMP/poll.out")
        answers=$(grep '^answers:' "$BENCH_TMP/wrk.out" || echo "answers: ?")
        stored=$(psql_db ledger_logs "SELECT count(*) FROM logs WHERE project_id = $PID")
        secs=$(elapsed "$t0" "$t_end")
        rate=$(awk -v n="$stored" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        RATES[$kind]+="$rate "
        bench_say "$(printf 'round %d  %-5s %8d logs stored in %6.2f s = %7d logs/s  (%s)' \
            "$round" "$kind" "$stored" "$secs" "$rate" "$answers")"
    done
done
# shellcheck disable=SC2086 # space-separated numbers
batch_med=$(median ${RATES[batch]})
# shellcheck disable=SC2086
otlp_med=$(median ${RATES[otlp]})
bench_say "$(printf 'median batch %7.0f logs/s, OTLP/protobuf %7.0f logs/s: ratio %s (target >= 0.9)' \
    "$batch_med" "$otlp_med" "$(ratio "$otlp_med" "$batch_med")")"
bench_finish
