#!/usr/bin/env bash
# bench/otlp.sh: the OTLP targets of issue 16, in three parts (BENCH_OTLP_PARTS, default all three):
#
# logs    OTLP/protobuf logs end to end: the same genlogs.py logs, 1000 per request, posted as
#         POST /api/v1/ingest/batch (JSON) and as POST /v1/logs (an OTLP ExportLogsServiceRequest,
#         bench/otlpbodies.py), in alternating rounds on one ledgerd with the storage role on
#         (workers = auto, unpinned). logs/s = logs stored / (start of posting .. queue_depth:<pid>
#         back to 0), as bench/ingest.sh's end-to-end phase; target: OTLP >= 0.9x batch (medians).
#         Takes about BENCH_ROUNDS x 2 x (BENCH_E2E_DURATION + drain).
# spans   spans end to end against a raw `psql \copy` of the same rows into the spans table:
#         BENCH_SPAN_BODIES ExportTraceServiceRequests of 1000 spans (bench/otlpspans.py) posted
#         once each to POST /v1/traces by BENCH_E2E_CONNS clients; spans/s = spans stored /
#         (start of posting .. queue_depth:<pid> back to 0); the reference loads the same rows from
#         a COPY file (spans emptied before each run, both orders alternating); target >= 0.6x.
# lookup  GET /api/v1/traces/{trace_id} of a 200-span trace among BENCH_LOOKUP_SPANS spans
#         (default 10,000,000, made by INSERT ... generate_series over the last 20 days): p50/p95/
#         max of BENCH_LOOKUP_N sequential requests for random traces; target p95 < 20 ms.
#
#   ./scripts/ledger bench otlp    (knobs: see bench/lib.sh; BENCH_BATCHES 20, BENCH_E2E_DURATION 5s,
#                                   BENCH_E2E_CONNS 4, BENCH_E2E_TIMEOUT 180, BENCH_E2E_WORKERS auto,
#                                   BENCH_OTLP_PARTS "logs spans lookup", BENCH_SPAN_BODIES 50,
#                                   BENCH_LOOKUP_SPANS 10000000, BENCH_LOOKUP_N 300)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

BATCHES=${BENCH_BATCHES:-20}
E2E_DURATION=${BENCH_E2E_DURATION:-5s}
E2E_CONNS=${BENCH_E2E_CONNS:-4}
E2E_TIMEOUT=${BENCH_E2E_TIMEOUT:-180}
PARTS=${BENCH_OTLP_PARTS:-logs spans lookup}
SPAN_BODIES=${BENCH_SPAN_BODIES:-50}
LOOKUP_SPANS=${BENCH_LOOKUP_SPANS:-10000000}
LOOKUP_N=${BENCH_LOOKUP_N:-300}
part() { [[ " $PARTS " == *" $1 "* ]]; }

bench_init otlp
bench_say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
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

if part logs; then
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
fi

# ---- spans end to end vs \copy ------------------------------------------------------------------------
SPAN_COLS="project_id, trace_id, span_id, parent_span_id, name, kind, service, start_time, duration_us, \
status_code, status_message, attributes, events"
if part spans; then
    SGEN=$BENCH_TMP/spans
    "$PY" "$LEDGER_ROOT/bench/otlpspans.py" "$SGEN" "$PID" "$(date +%s)" "$SPAN_BODIES"
    nspans=$((SPAN_BODIES * 1000))
    cat >"$BENCH_TMP/postspans.py" <<'PYEOF'
# postspans.py URL KEY CONNS BODY...: post every body once to URL (CONNS threads, keep-alive);
# exits non-zero unless every answer is a 200 without partial success.
import sys, threading, requests
url, key, conns, bodies = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
bad, lock = [], threading.Lock()
def run(k):
    s = requests.Session()
    for path in bodies[k::conns]:
        with open(path, "rb") as f:
            body = f.read()
        r = s.post(url, data=body, headers={"Content-Type": "application/x-protobuf", "X-API-Key": key}, timeout=60)
        if r.status_code != 200 or r.content:
            with lock:
                bad.append((path, r.status_code, r.content[:200]))
ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
[t.start() for t in ts]
[t.join() for t in ts]
if bad:
    print("bad answers:", bad[:3])
    sys.exit(1)
PYEOF
    bench_say "spans: $SPAN_BODIES requests of 1000 spans (5 traces of 200) posted once each by $E2E_CONNS clients," \
        "end to end (queued, stored by the storage role) vs psql \\copy of the same $nspans rows; $BENCH_ROUNDS rounds"
    declare -A SRATES=([otlp]="" [copy]="")
    for ((round = 1; round <= BENCH_ROUNDS; round++)); do
        order="otlp copy"
        ((round % 2)) || order="copy otlp"
        for kind in $order; do
            psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE spans" >/dev/null
            if [[ $kind == copy ]]; then
                t0=$(now_s)
                psql_db ledger_logs "\copy spans ($SPAN_COLS) FROM '$SGEN/spans.copy'" >/dev/null
                t_end=$(now_s)
            else
                [[ $(rcli GET "queue_depth:$PID") =~ ^0?$ ]] || die "queue_depth:$PID is not 0 before a round"
                flag=$BENCH_TMP/posting.done
                rm -f "$flag"
                "$PY" "$BENCH_TMP/poll.py" "$BENCH_REDIS_PORT" "queue_depth:$PID" "$flag" "$E2E_TIMEOUT" \
                    >"$BENCH_TMP/poll.out" 2>&1 &
                poller=$!
                t0=$(now_s)
                "$PY" "$BENCH_TMP/postspans.py" "$BENCH_LEDGERD_URL/v1/traces" "$KEY" "$E2E_CONNS" "$SGEN"/spans_*.pb ||
                    die "round $round: POST /v1/traces failed"
                touch "$flag"
                wait "$poller" || die "round $round spans: queue not drained within ${E2E_TIMEOUT}s ($(cat "$BENCH_TMP/poll.out"))"
                t_end=$(sed -n 's/.*end=\([0-9.]*\).*/\1/p' "$BENCH_TMP/poll.out")
            fi
            stored=$(psql_db ledger_logs "SELECT count(*) FROM spans WHERE project_id = $PID")
            [[ $stored == "$nspans" ]] || die "round $round $kind: $stored spans stored, $nspans expected"
            secs=$(elapsed "$t0" "$t_end")
            rate=$(awk -v n="$stored" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
            SRATES[$kind]+="$rate "
            bench_say "$(printf 'round %d  %-5s %8d spans stored in %6.2f s = %7d spans/s' \
                "$round" "$kind" "$stored" "$secs" "$rate")"
        done
    done
    # shellcheck disable=SC2086
    copy_med=$(median ${SRATES[copy]})
    # shellcheck disable=SC2086
    sotlp_med=$(median ${SRATES[otlp]})
    bench_say "$(printf 'median \\copy %7.0f spans/s, OTLP/protobuf end to end %7.0f spans/s: ratio %s (target >= 0.6)' \
        "$copy_med" "$sotlp_med" "$(ratio "$sotlp_med" "$copy_med")")"
    psql_db ledger_logs "SET lock_timeout = '10s'; TRUNCATE spans" >/dev/null
fi

# ---- trace lookup among many spans ------------------------------------------------------------------
if part lookup; then
    ntraces=$((LOOKUP_SPANS / 200))
    bench_say "lookup: $LOOKUP_SPANS spans ($ntraces traces of 200 spans over the last 20 days) made with" \
        "INSERT ... generate_series; GET /api/v1/traces/{id} of $LOOKUP_N random traces, one at a time"
    t0=$(now_s)
    chunk=1000000
    for ((lo = 0; lo < LOOKUP_SPANS; lo += chunk)); do
        hi=$((lo + chunk < LOOKUP_SPANS ? lo + chunk : LOOKUP_SPANS))
        psql_db ledger_logs "INSERT INTO spans ($SPAN_COLS)
            SELECT $PID, md5('t' || (g / 200)), lpad(to_hex(g), 16, '0'),
                   CASE WHEN g % 200 = 0 THEN NULL ELSE lpad(to_hex(g - g % 200 + (g % 200 - 1) / 2), 16, '0') END,
                   CASE WHEN g % 200 = 0 THEN 'GET /cart' ELSE 'step ' || (g % 20) END, 1, 'bench',
                   now() - interval '20 days' * ((g / 200)::float8 / $ntraces) + (g % 200) * interval '10 microseconds',
                   50 + g % 900, CASE WHEN g % 50 = 49 THEN 2 ELSE 0 END, NULL,
                   '{\"http\":{\"route\":\"/cart\"},\"worker\":3,\"region\":\"eu-west-1\"}'::jsonb, '[]'::jsonb
            FROM generate_series($lo, $((hi - 1))) AS g" >/dev/null
    done
    psql_db ledger_logs "ANALYZE spans" >/dev/null
    bench_say "$(printf 'loaded %d spans in %.0f s; table and indexes %s' "$LOOKUP_SPANS" \
        "$(elapsed "$t0" "$(now_s)")" "$(psql_db ledger_logs "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'spans'::regclass")")"
    "$PY" - "$BENCH_LEDGERD_URL" "$KEY" "$ntraces" "$LOOKUP_N" >"$BENCH_TMP/lookup.out" <<'PYEOF' ||
import hashlib, random, sys, time, requests
url, key, ntraces, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = requests.Session()
rng = random.Random(16)
ms = []
for i in range(n + 20):
    tid = hashlib.md5(f"t{rng.randrange(ntraces)}".encode()).hexdigest()
    t0 = time.perf_counter()
    r = s.get(f"{url}/api/v1/traces/{tid}", headers={"X-API-Key": key}, timeout=30)
    dt = (time.perf_counter() - t0) * 1000
    if r.status_code != 200 or r.json()["span_count"] != 200:
        print("bad answer", r.status_code, r.text[:200])
        sys.exit(1)
    if i >= 20:  # the first ones warm the connection and the caches
        ms.append(dt)
ms.sort()
q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]  # noqa: E731
print("p50=%.2f p95=%.2f p99=%.2f max=%.2f" % (q(0.5), q(0.95), q(0.99), ms[-1]))
PYEOF
        die "lookup failed: $(cat "$BENCH_TMP/lookup.out")"
    read -r p50 p95 p99 pmax < <(sed 's/[a-z0-9]*=//g' "$BENCH_TMP/lookup.out")
    bench_say "$(printf 'GET /api/v1/traces/{id}, 200 spans, among %d spans: p50 %s ms, p95 %s ms, p99 %s ms, max %s ms (target p95 < 20 ms)' \
        "$LOOKUP_SPANS" "$p50" "$p95" "$p99" "$pmax")"
fi
bench_say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
