#!/usr/bin/env bash
# bench/fleet.sh: ingest end to end (HTTP -> Redis queue -> storage -> PostgreSQL) in the fleet
# configurations of docs/scaling.md, against today's single mode, in one run (issue 21 targets):
#   single    [pg_logs] alone: one PostgreSQL database, no [pg_shards] pins
#   sharded1  the sharded configuration with one shard: every project pinned in [pg_shards] to
#             shard 0 (target: >= 0.95x single)
#   pg2       two logs shards on two PostgreSQL servers ([pg_logs] and [pg_logs.1], half of the
#             projects pinned to each)
#   r3pg2     pg2 plus three Redis shards ([redis], [redis.1], [redis.2], the projects spread over
#             them by [redis] project_shards); skipped when the build has no Redis shards
# Each round posts BENCH_FLEET_LOGS logs (1000-log batches from bench/genlogs.py, BENCH_FLEET_PROJECTS
# projects, BENCH_FLEET_CONNS connections) and times start of posting .. every log stored (rows
# counted on every shard); logs/s = logs / that time. Modes alternate within a round; each mode
# restarts ledgerd (workers = auto, storage on) on its config and starts from empty tables.
# Ratios are of medians over BENCH_ROUNDS rounds. Everything is on loopback.
#
#   ./scripts/ledger bench fleet    (knobs: BENCH_ROUNDS 3, BENCH_FLEET_LOGS 60000,
#                                    BENCH_FLEET_PROJECTS 4, BENCH_FLEET_CONNS 4,
#                                    BENCH_FLEET_TIMEOUT 180,
#                                    BENCH_FLEET_MODES "single sharded1 pg2 r3pg2")
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

LOGS=${BENCH_FLEET_LOGS:-60000}
PROJECTS=${BENCH_FLEET_PROJECTS:-4}
CONNS=${BENCH_FLEET_CONNS:-4}
TIMEOUT=${BENCH_FLEET_TIMEOUT:-180}
MODES=(${BENCH_FLEET_MODES:-single sharded1 pg2 r3pg2})
ROUNDS=${BENCH_ROUNDS:-3}

BENCH_RESULT_SUFFIX=-fleet
bench_init fleet
fleet_cleanup() {
    local rc=$?
    [[ -d $BENCH_TMP/pg1/data ]] && pg_stop "$BENCH_TMP/pg1"
    [[ -d $BENCH_TMP/redis1 ]] && redis_stop "$BENCH_TMP/redis1"
    [[ -d $BENCH_TMP/redis2 ]] && redis_stop "$BENCH_TMP/redis2"
    (exit $rc)
    bench_cleanup
}
trap fleet_cleanup EXIT
bench_start_pg
PG1_PORT=$(free_port)
pg_ensure "$BENCH_TMP/pg1" "$PG1_PORT" --no-sync "${BENCH_PG_OPTS:-}"
bench_start_redis
# Redis shards 1 and 2 for r3pg2, when this build knows [redis.N]
if [[ " ${MODES[*]} " == *" r3pg2 "* ]]; then
    printf '[redis.1]\nport = 1\n' >"$BENCH_TMP/probe.ini"
    if "$BENCH_BIN" -c "$BENCH_TMP/probe.ini" --check-config >/dev/null 2>&1; then
        REDIS1_PORT=$(free_port)
        redis_ensure "$BENCH_TMP/redis1" "$REDIS1_PORT" no
        REDIS2_PORT=$(free_port)
        redis_ensure "$BENCH_TMP/redis2" "$REDIS2_PORT" no
    else
        bench_say "r3pg2 skipped: this build has no Redis shards ([redis.N])"
        MODES=("${MODES[@]/r3pg2/}")
        MODES=(${MODES[@]})
    fi
fi
INI_WORKERS=auto INI_INGEST_EXTRA="queue_max_depth = 1000000000" bench_start_ledgerd

psql_at() { # psql_at PORT DB SQL
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$1" -U postgres -d "$2" -v ON_ERROR_STOP=1 \
        -qAtX -c "$3"
}

# Projects and keys through the API, limits far above the bench.
creds=$("$PY" - "$BENCH_LEDGERD_URL" "$PROJECTS" <<'PYEOF'
import sys, requests
api, n = sys.argv[1] + "/api/v1", int(sys.argv[2])
r = requests.post(api + "/accounts/register", json={"email": "fleet@example.com", "password": "Bench-Passw0rd",
                                                   "name": "Bench"}, timeout=30)
r.raise_for_status()
auth = {"Authorization": "Bearer " + r.json()["access_token"]}
for i in range(n):
    r = requests.post(api + "/projects", json={"name": f"Fleet {i}", "slug": f"fleet-{i}"}, headers=auth, timeout=30)
    r.raise_for_status()
    pid = r.json()["project_id"]
    r = requests.post(f"{api}/projects/{pid}/api-keys", json={"name": "bench"}, headers=auth, timeout=30)
    r.raise_for_status()
    print(pid, r.json()["full_key"])
PYEOF
) || die "could not create the bench projects through the API"
psql_at "$BENCH_PG_PORT" ledger_auth "UPDATE api_keys SET rate_limit_per_minute = 2000000000,
    rate_limit_per_hour = 2000000000; UPDATE projects SET daily_quota = 1000000000000" >/dev/null
PIDS=() KEYS=()
while read -r p k; do
    PIDS+=("$p")
    KEYS+=("$k")
done <<<"$creds"
bench_stop_ledgerd

# Bodies: LOGS/1000 batches per project's share, generated once per project.
BATCHES=$(((LOGS / 1000 + PROJECTS - 1) / PROJECTS))
for i in "${!PIDS[@]}"; do
    "$PY" "$LEDGER_ROOT/bench/genlogs.py" "$BENCH_TMP/gen$i" --project-id "${PIDS[$i]}" --now "$(date +%s)" \
        --batches "$BATCHES" --singles 1 >/dev/null
done
TOTAL=$((BATCHES * PROJECTS * 1000))

# mode_ini MODE: the [pg_shards] / [pg_logs.1] lines of a mode.
mode_ini() {
    local pins='' i
    case $1 in
    single) return 0 ;;
    sharded1) for i in "${!PIDS[@]}"; do pins+="${pins:+, }${PIDS[$i]}:0"; done ;;
    pg2 | r3pg2) for i in "${!PIDS[@]}"; do pins+="${pins:+, }${PIDS[$i]}:$((i % 2))"; done ;;
    esac
    printf '[pg_shards]\nprojects = %s\n' "$pins"
    [[ $1 == r3pg2 ]] && printf '\n[redis.1]\nhost = 127.0.0.1\nport = %s\n\n[redis.2]\nhost = 127.0.0.1\nport = %s\n' \
        "$REDIS1_PORT" "$REDIS2_PORT"
    [[ $1 == pg2 || $1 == r3pg2 ]] && printf '\n[pg_logs.1]\nhost = 127.0.0.1\nport = %s\ndbname = ledger_logs\nuser = postgres\n' \
        "$PG1_PORT"
    return 0
}

start_mode() {
    local mode=$1
    BENCH_LEDGERD_PORT=$(free_port)
    BENCH_LEDGERD_URL=http://127.0.0.1:$BENCH_LEDGERD_PORT
    local rshards=''
    if [[ $mode == r3pg2 ]]; then
        for i in "${!PIDS[@]}"; do rshards+="${rshards:+, }${PIDS[$i]}:$((i % 3))"; done
        rshards="project_shards = $rshards"
    fi
    INI_WORKERS=auto INI_LOG_LEVEL=warn INI_JWT_SECRET=$BENCH_TMP/jwt.secret INI_REDIS_EXTRA=$rshards \
        INI_INGEST_EXTRA="queue_max_depth = 1000000000" write_ini "$BENCH_TMP/ledger.ini" \
        "$BENCH_LEDGERD_PORT" "$BENCH_PG_PORT" "$BENCH_REDIS_PORT"
    mode_ini "$mode" >>"$BENCH_TMP/ledger.ini"
    ledgerd_migrate "$BENCH_BIN" "$BENCH_TMP/ledger.ini" "$BENCH_TMP/migrate.log"
    ledgerd_start "$BENCH_BIN" "$BENCH_TMP/ledger.ini" "$BENCH_TMP/ledgerd.log" "$BENCH_TMP/ledgerd.pid" \
        "$BENCH_LEDGERD_URL"
}

empty_tables() {
    local port
    for port in "$BENCH_PG_PORT" "$PG1_PORT"; do
        psql_at "$port" ledger_logs "SELECT 1 FROM pg_tables WHERE tablename = 'logs'" 2>/dev/null | grep -q 1 || continue
        psql_at "$port" ledger_logs "TRUNCATE logs, error_groups" >/dev/null
    done
}

stored() { # rows of the bench projects on every shard
    local port n sum=0 ids
    ids=$(IFS=,; echo "${PIDS[*]}")
    for port in "$BENCH_PG_PORT" "$PG1_PORT"; do
        n=$(psql_at "$port" ledger_logs "SELECT count(*) FROM logs WHERE project_id IN ($ids)" 2>/dev/null || echo 0)
        sum=$((sum + ${n:-0}))
    done
    printf '%s\n' "$sum"
}

# CPU used so far, in ms: ledgerd, Redis, PostgreSQL (every backend of both clusters, alive or exited).
TCK=$(getconf CLK_TCK)
tree_ticks() { # tree_ticks PID: utime+stime of PID and its live children, plus its reaped children's
    local pid=$1 sum=0 c
    [[ -r /proc/$pid/stat ]] || { echo 0; return; }
    sum=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat")
    for c in $(pgrep -P "$pid" || true); do
        sum=$((sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
cpu_ms() { # prints "LEDGERD REDIS PG" in ms
    local l r p=0 d port
    l=$(tree_ticks "$(cat "$BENCH_TMP/ledgerd.pid")")
    r=0
    for port in "$BENCH_REDIS_PORT" ${REDIS1_PORT:-} ${REDIS2_PORT:-}; do
        r=$((r + $(redis-cli -h 127.0.0.1 -p "$port" INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.0f", s * 1000 }')))
    done
    for d in "$BENCH_TMP/pg" "$BENCH_TMP/pg1"; do
        [[ -r $d/data/postmaster.pid ]] && p=$((p + $(tree_ticks "$(head -n 1 "$d/data/postmaster.pid")")))
    done
    echo "$((l * 1000 / TCK)) $r $((p * 1000 / TCK))"
}

# post_all: every project's batches over CONNS keep-alive connections; prints "accepted seconds".
cat >"$BENCH_TMP/post.py" <<'PYEOF'
import http.client, os, sys, threading, time
port, conns = int(sys.argv[1]), int(sys.argv[2])
jobs = []  # (key, path of a body)
for spec in sys.argv[3:]:
    key, d = spec.split("=", 1)
    jobs += [(key, os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.startswith("batch_")]
bodies = [(k, open(p, "rb").read()) for k, p in jobs]
lock, accepted, idx = threading.Lock(), [0], [0]
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while True:
        with lock:
            i = idx[0]; idx[0] += 1
        if i >= len(bodies):
            return
        key, body = bodies[i]
        for _ in range(50):
            c.request("POST", "/api/v1/ingest/batch", body, {"X-API-Key": key, "Content-Type": "application/json"})
            r = c.getresponse(); r.read()
            if r.status == 202:
                with lock:
                    accepted[0] += 1000
                break
            time.sleep(0.05)
t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
print(accepted[0], f"{time.monotonic() - t0:.3f}")
PYEOF

declare -A RATES=() CPU=()
bench_say "fleet ingest: $TOTAL logs per round ($PROJECTS projects x $BATCHES batches of 1000), $CONNS connections," \
    "ledgerd workers = auto, storage on; time = start of posting .. all rows stored; $ROUNDS rounds; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in "${MODES[@]}"; do
        start_mode "$mode"
        empty_tables
        specs=()
        for i in "${!PIDS[@]}"; do specs+=("${KEYS[$i]}=$BENCH_TMP/gen$i"); done
        read -r c_l0 c_r0 c_p0 < <(cpu_ms)
        t0=$(date +%s.%N)
        read -r accepted post_s < <(timeout "$TIMEOUT" "${BENCH_CLIENT_PIN[@]}" "$PY" "$BENCH_TMP/post.py" \
            "$BENCH_LEDGERD_PORT" "$CONNS" "${specs[@]}") || die "$mode round $round: posting failed"
        deadline=$(($(date +%s) + TIMEOUT))
        while (($(stored) < accepted)); do
            (($(date +%s) < deadline)) || die "$mode round $round: $(stored) of $accepted logs stored in ${TIMEOUT}s"
            sleep 0.05
        done
        t1=$(date +%s.%N)
        read -r c_l1 c_r1 c_p1 < <(cpu_ms)
        cpu=$(awk -v n="$accepted" -v l=$((c_l1 - c_l0)) -v r=$((c_r1 - c_r0)) -v p=$((c_p1 - c_p0)) \
            'BEGIN { printf "CPU ms per 1000 logs: ledgerd %.1f, redis %.1f, postgres %.1f", l * 1000 / n, r * 1000 / n, p * 1000 / n }')
        CPU[$mode]+="$cpu"$'\n'
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        rate=$(awk -v n="$accepted" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        RATES[$mode]+="$rate "
        split=''
        if [[ $mode == pg2 || $mode == r3pg2 ]]; then
            split=" (shard 0: $(psql_at "$BENCH_PG_PORT" ledger_logs "SELECT count(*) FROM logs"), shard 1: $(psql_at "$PG1_PORT" ledger_logs "SELECT count(*) FROM logs"))"
        fi
        bench_say "$(printf 'round %d  %-8s  %7d logs in %6.2f s (posted in %s s) = %7d logs/s%s; %s' "$round" \
            "$mode" "$accepted" "$secs" "$post_s" "$rate" "$split" "$cpu")"
        bench_stop_ledgerd
    done
done
declare -A MED=()
for mode in "${MODES[@]}"; do
    # shellcheck disable=SC2086 # space-separated numbers
    MED[$mode]=$(median ${RATES[$mode]})
    bench_say "$(printf 'median   %-8s  %7.0f logs/s' "$mode" "${MED[$mode]}")"
done
if [[ -n ${MED[single]:-} ]]; then
    for mode in "${MODES[@]}"; do
        [[ $mode == single ]] && continue
        bench_say "ratio    $mode / single: $(ratio "${MED[$mode]}" "${MED[single]}")$([[ $mode == sharded1 ]] && echo ' (target >= 0.95)')"
    done
fi
bench_say "loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_finish
