# shellcheck shell=bash disable=SC2034 # BENCH_* variables are read by the sourcing bench scripts
# Shared helpers for bench/*.sh. Sourced, never run on its own.
#
# A bench calls bench_init NAME, starts what it needs (bench_start_pg, bench_start_redis,
# bench_start_ledgerd, bench_start_nginx), measures with bench_wrk / bench_rss, reports with
# bench_say, and ends with bench_finish. Everything it starts lives in one temp dir and is
# stopped on exit, whatever happens. Traffic goes to 127.0.0.1 only and every step is bounded.
#
# Knobs (environment): BENCH_DURATION (10s), BENCH_WARMUP (2s), BENCH_ROUNDS (3),
# BENCH_CONNECTIONS (64, wrk -c), BENCH_KEEP=1 keeps the temp dir, BENCH_BIN=PATH benches that
# binary instead of building build/release.

# shellcheck source=../scripts/ledger
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/../scripts/ledger"

BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_WARMUP=${BENCH_WARMUP:-2s}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-64}
BENCH_BIN=${BENCH_BIN:-}
BENCH_CLIENT_PIN=()
BENCH_SERVER_PIN=()

# bench_init NAME: packages, release build, temp dir, cleanup trap, CPU pinning, fd limit.
bench_init() {
    BENCH_NAME=$1
    ensure_packages
    if [[ -z $BENCH_BIN ]]; then
        BUILD_QUIET=1 build build/release -Dbuildtype=release
        BENCH_BIN=$LEDGER_ROOT/build/release/ledgerd
    fi
    BENCH_TMP=$(mktemp -d "/tmp/ledger-bench-$BENCH_NAME.XXXXXX")
    chmod 755 "$BENCH_TMP" # the postgres user must reach $BENCH_TMP/pg
    BENCH_REPORT=$BENCH_TMP/report.txt
    : >"$BENCH_REPORT"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # The dev and CI machines have 2 cores: load generator on cpu 0, server under test on cpu 1.
    if (($(nproc) >= 2)); then
        BENCH_CLIENT_PIN=(taskset -c 0)
        BENCH_SERVER_PIN=(taskset -c 1)
    fi
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    BENCH_START=$(date +%s)
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    local f
    for f in "$BENCH_TMP"/*.holder.pid; do
        [[ -e $f ]] && stop_pidfile "$f" python3 5
    done
    [[ -e $BENCH_TMP/ledgerd.pid ]] && stop_pidfile "$BENCH_TMP/ledgerd.pid" ledgerd 20
    [[ -e $BENCH_TMP/nginx/nginx.pid ]] && stop_pidfile "$BENCH_TMP/nginx/nginx.pid" nginx 10
    [[ -d $BENCH_TMP/redis ]] && redis_stop "$BENCH_TMP/redis"
    [[ -d $BENCH_TMP/pg/data ]] && pg_stop "$BENCH_TMP/pg"
    if [[ ${BENCH_KEEP:-} == 1 ]]; then
        echo "bench: kept $BENCH_TMP" >&2
    else
        rm -rf "${BENCH_TMP:?}"
    fi
    exit $rc
}

# bench_say TEXT: print and keep for the results file.
bench_say() {
    printf '%s\n' "$*" | tee -a "$BENCH_REPORT"
}

bench_start_pg() {
    BENCH_PG_PORT=$(free_port)
    pg_ensure "$BENCH_TMP/pg" "$BENCH_PG_PORT" --no-sync "${BENCH_PG_OPTS:-}"
}

bench_start_redis() {
    BENCH_REDIS_PORT=$(free_port)
    redis_ensure "$BENCH_TMP/redis" "$BENCH_REDIS_PORT" no
}

# bench_start_ledgerd: release build, 1 worker, pinned to the server core, on a free port; sets
# BENCH_LEDGERD_PORT/URL/PID. The INI_* knobs of write_ini pass through (INI_WORKERS, INI_SERVER_EXTRA,
# INI_INGEST_EXTRA, INI_STORAGE); BENCH_LEDGERD_WHOLE=1 leaves it unpinned (the whole machine).
bench_start_ledgerd() {
    BENCH_LEDGERD_PORT=$(free_port)
    BENCH_LEDGERD_URL=http://127.0.0.1:$BENCH_LEDGERD_PORT
    ensure_jwt_secret "$BENCH_TMP/jwt.secret"
    local pin=("${BENCH_SERVER_PIN[@]}")
    [[ ${BENCH_LEDGERD_WHOLE:-0} == 1 ]] && pin=()
    INI_WORKERS=${INI_WORKERS:-1} INI_LOG_LEVEL=warn INI_JWT_SECRET=$BENCH_TMP/jwt.secret write_ini "$BENCH_TMP/ledger.ini" \
        "$BENCH_LEDGERD_PORT" "$BENCH_PG_PORT" "$BENCH_REDIS_PORT"
    ledgerd_migrate "$BENCH_BIN" "$BENCH_TMP/ledger.ini" "$BENCH_TMP/migrate.log"
    ledgerd_start "$BENCH_BIN" "$BENCH_TMP/ledger.ini" "$BENCH_TMP/ledgerd.log" "$BENCH_TMP/ledgerd.pid" \
        "$BENCH_LEDGERD_URL" "${pin[@]}"
    BENCH_LEDGERD_PID=$(cat "$BENCH_TMP/ledgerd.pid")
}

# bench_stop_ledgerd: stop the ledgerd started by bench_start_ledgerd (e.g. to restart it with
# other INI_* knobs).
bench_stop_ledgerd() {
    [[ -e $BENCH_TMP/ledgerd.pid ]] || return 0
    stop_pidfile "$BENCH_TMP/ledgerd.pid" ledgerd 20 || warn "ledgerd had to be killed"
}

# bench_account: an account, a project and an API key made through ledgerd's API, then limits far
# above what a bench sends (rate limits per key, daily quota per project) and the key caches
# dropped. Sets BENCH_KEY, BENCH_PID, BENCH_EMAIL, BENCH_PASSWORD.
bench_account() {
    BENCH_EMAIL=bench@example.com
    BENCH_PASSWORD=Bench-Passw0rd
    local creds
    creds=$("$PY" - "$BENCH_LEDGERD_URL" "$BENCH_EMAIL" "$BENCH_PASSWORD" <<'PYEOF'
import sys, requests
api, email, pw = sys.argv[1] + "/api/v1", sys.argv[2], sys.argv[3]
r = requests.post(api + "/accounts/register", json={"email": email, "password": pw, "name": "Bench"}, timeout=30)
r.raise_for_status()
auth = {"Authorization": "Bearer " + r.json()["access_token"]}
r = requests.post(api + "/projects", json={"name": "Bench", "slug": "bench"}, headers=auth, timeout=30)
r.raise_for_status()
pid = r.json()["project_id"]
r = requests.post(f"{api}/projects/{pid}/api-keys", json={"name": "bench"}, headers=auth, timeout=30)
r.raise_for_status()
print(r.json()["full_key"], pid)
PYEOF
    ) || die "could not create the bench account through the API"
    read -r BENCH_KEY BENCH_PID <<<"$creds"
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_auth \
        -v ON_ERROR_STOP=1 -qAtX -c "UPDATE api_keys SET rate_limit_per_minute = 2000000000,
            rate_limit_per_hour = 2000000000; UPDATE projects SET daily_quota = 1000000000000" >/dev/null
    redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" --scan --pattern 'api_key:*' |
        xargs -r redis-cli -h 127.0.0.1 -p "$BENCH_REDIS_PORT" DEL >/dev/null
}

# bench_start_nginx: the reference server, one worker, `return 204` for every path, pinned like
# ledgerd; sets BENCH_NGINX_PORT/URL/PID (the master's pid).
bench_start_nginx() {
    local d=$BENCH_TMP/nginx i
    mkdir -p "$d"
    BENCH_NGINX_PORT=$(free_port)
    BENCH_NGINX_URL=http://127.0.0.1:$BENCH_NGINX_PORT
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$BENCH_NGINX_PORT;
        location / { return 204; }
    }
}
EOF
    setsid "${BENCH_SERVER_PIN[@]}" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" </dev/null >>"$d/stdout.log" 2>&1 &
    BENCH_NGINX_PID=$!
    for ((i = 0; i < 100; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$BENCH_NGINX_URL/" 2>/dev/null && return 0
        kill -0 "$BENCH_NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$d/error.log" >&2 || true
    die "nginx did not start"
}

# ms VALUE: a wrk duration (850.00us, 1.20ms, 1.02s, 2.00m) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1
        printf "%.3f\n", n * f }'
}

# bench_wrk URL [DURATION] [WRK_ARGS...]: one wrk run on the client core; prints
# "RPS P50_MS P99_MS ERRORS" where ERRORS counts socket errors and non-2xx/3xx responses.
bench_wrk() {
    local url=$1 dur=${2:-$BENCH_DURATION} out secs
    shift 2 || shift $#
    out=$BENCH_TMP/wrk.out
    secs=${dur%s}
    timeout $((secs + 30)) "${BENCH_CLIENT_PIN[@]}" wrk -t1 -c"$BENCH_CONNECTIONS" -d"$dur" --latency "$@" "$url" \
        >"$out" 2>&1 || {
        cat "$out" >&2
        die "wrk failed against $url"
    }
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2; exit }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2; exit }' "$out")")
    errs=$(awk '/Socket errors:/ { gsub(",", ""); s = $4 + $6 + $8 + $10 }
                /Non-2xx or 3xx responses:/ { s += $5 } END { print s + 0 }' "$out")
    [[ -n $rps ]] || {
        cat "$out" >&2
        die "could not parse wrk output"
    }
    printf '%s %s %s %s\n' "$rps" "$p50" "$p99" "$errs"
}

# Alternating rounds of wrk runs, kept per name (e.g. ledgerd, nginx):
#   bench_round NAME ROUND "RPS P50 P99 ERRORS"   record one run (a bench_wrk line) and print it
#   bench_medians NAME...                         print each name's medians; they are then in
#                                                 BENCH_MED[NAME.rps|p50|p99], errors in BENCH_ERRS[NAME]
declare -A BENCH_RPS=() BENCH_P50=() BENCH_P99=() BENCH_ERRS=() BENCH_MED=()
bench_round() {
    local name=$1 round=$2 r a b e note=
    read -r r a b e <<<"$3"
    BENCH_RPS[$name]+="$r "
    BENCH_P50[$name]+="$a "
    BENCH_P99[$name]+="$b "
    BENCH_ERRS[$name]=$((${BENCH_ERRS[$name]:-0} + e))
    ((e == 0)) || note="  ($e socket errors or non-2xx responses)"
    bench_say "$(printf 'round %d  %-8s  %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms%s' \
        "$round" "$name" "$r" "$a" "$b" "$note")"
}

bench_medians() {
    local name
    for name in "$@"; do
        # shellcheck disable=SC2086 # space-separated numbers
        {
            BENCH_MED[$name.rps]=$(median ${BENCH_RPS[$name]})
            BENCH_MED[$name.p50]=$(median ${BENCH_P50[$name]})
            BENCH_MED[$name.p99]=$(median ${BENCH_P99[$name]})
        }
        bench_say "$(printf 'median   %-8s  %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (non-2xx or socket errors: %d)' \
            "$name" "${BENCH_MED[$name.rps]}" "${BENCH_MED[$name.p50]}" "${BENCH_MED[$name.p99]}" \
            "${BENCH_ERRS[$name]:-0}")"
    done
}

# median V...: the median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ratio A B: A/B with 2 decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# bench_rss PID...: summed VmRSS of the processes in kB.
bench_rss() {
    local pid sum=0 kb
    for pid in "$@"; do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        sum=$((sum + ${kb:-0}))
    done
    printf '%s\n' "$sum"
}

# bench_hold_conns NAME PORT N: opens N keep-alive connections (one GET /health on each) from the
# client core and keeps them open in the background; waits (bounded) until all are established.
# Prints the holder's "ready" line. bench_release_conns NAME stops it and prints its last line.
bench_hold_conns() {
    local name=$1 port=$2 n=$3 i
    "${BENCH_CLIENT_PIN[@]}" "$PY" "$LEDGER_ROOT/bench/conns.py" "$port" "$n" \
        </dev/null >"$BENCH_TMP/$name.holder.out" 2>&1 &
    printf '%s\n' "$!" >"$BENCH_TMP/$name.holder.pid"
    for ((i = 0; i < 900; i++)); do
        grep -q '^ready' "$BENCH_TMP/$name.holder.out" && {
            grep '^ready' "$BENCH_TMP/$name.holder.out"
            return 0
        }
        kill -0 "$(cat "$BENCH_TMP/$name.holder.pid")" 2>/dev/null || break
        sleep 0.1
    done
    cat "$BENCH_TMP/$name.holder.out" >&2
    die "connection holder for $name did not get ready"
}

bench_release_conns() {
    local name=$1 pid i
    pid=$(cat "$BENCH_TMP/$name.holder.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$BENCH_TMP/$name.holder.pid"
    tail -n 1 "$BENCH_TMP/$name.holder.out"
}

# bench_finish: append the report, with commit and machine, to bench/results/<date>-<commit>.txt
# (<date>-<commit><BENCH_RESULT_SUFFIX>.txt when the bench sets that, e.g. -web).
bench_finish() {
    local commit dirty='' file
    commit=$(git -C "$LEDGER_ROOT" rev-parse --short HEAD 2>/dev/null || echo nogit)
    [[ $commit != nogit ]] && ! git -C "$LEDGER_ROOT" diff --quiet HEAD -- 2>/dev/null && dirty=+dirty
    mkdir -p "$LEDGER_ROOT/bench/results"
    file=$LEDGER_ROOT/bench/results/$(date -u +%Y-%m-%d)-$commit${BENCH_RESULT_SUFFIX:-}.txt
    {
        printf '=== bench %s  %s  commit %s%s\n' "$BENCH_NAME" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$dirty"
        printf 'machine: nproc %s, cpu "%s", kernel %s, memory %s MiB\n' "$(nproc)" \
            "$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
            "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
        cat "$BENCH_REPORT"
        printf '(took %ss)\n\n' "$(($(date +%s) - BENCH_START))"
    } >>"$file"
    echo "bench: results appended to ${file#"$LEDGER_ROOT"/}"
}
