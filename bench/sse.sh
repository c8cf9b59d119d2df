#!/usr/bin/env bash
# bench/sse.sh: the notification stream (issue 6 targets), one ledgerd worker (pinned to the server
# core, storage off), load from bench/sse_client (libuv, C) on the client core:
#   1. BENCH_SSE_ACCOUNTS accounts, each with a project and an API key (written into the auth
#      database); one request per key first, so the gateway's key cache is warm (steady state).
#   2. BENCH_SSE_STREAMS streams (5 per key: the per-account cap) opened at once from
#      BENCH_SSE_ADDRS loopback source addresses; time until every one got `connected`
#      (target < 2 s), and ledgerd's RSS growth per idle stream (VmRSS after - before, target
#      < 8 KB).
#   3. Error logs through POST /ingest/single at BENCH_SSE_RATE per second for BENCH_SSE_SECONDS,
#      round-robin over the projects (each reaches the 5 streams of its account); latency = start
#      of the ingest request -> receipt by each stream (targets p50 < 5 ms, p99 < 30 ms).
# Takes about a minute.
#
#   ./scripts/ledger bench sse    (knobs: BENCH_SSE_STREAMS 10000, BENCH_SSE_ACCOUNTS streams/5,
#                                  BENCH_SSE_RATE 1000, BENCH_SSE_SECONDS 10, BENCH_SSE_ADDRS 4)
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

STREAMS=${BENCH_SSE_STREAMS:-10000}
ACCOUNTS=${BENCH_SSE_ACCOUNTS:-$((STREAMS / 5))}
RATE=${BENCH_SSE_RATE:-1000}
SECONDS_=${BENCH_SSE_SECONDS:-10}
ADDRS=${BENCH_SSE_ADDRS:-4}

bench_init sse
CLIENT=$(dirname "$BENCH_BIN")/bench/sse_client
[[ -x $CLIENT ]] || die "$CLIENT not built (meson builds bench/sse_client next to ledgerd)"
((STREAMS % ACCOUNTS == 0)) || die "BENCH_SSE_STREAMS must be a multiple of BENCH_SSE_ACCOUNTS"
per=$((STREAMS / ACCOUNTS))
((per <= 5)) || die "more than 5 streams per account: raise max_streams_per_account too"

bench_start_pg
bench_start_redis
INI_STORAGE=off \
    INI_SERVER_EXTRA=$'backlog = 65535\nmax_connections = '$((STREAMS + 1000)) \
    INI_PG_AUTH_EXTRA=$'pool_size = 8\nmax_waiters = '$((STREAMS + 1000)) \
    INI_REDIS_EXTRA="max_pending = $((STREAMS * 4 + 10000))" \
    bench_start_ledgerd

psql_db() { # psql_db DB SQL: one statement batch, quiet, unaligned
    PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d "$1" \
        -v ON_ERROR_STOP=1 -qAtX -c "$2"
}
wait_line() { # wait_line PATTERN SECONDS: until the client printed a line matching PATTERN
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -q "$1" "$BENCH_TMP/client.out" && return 0
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$BENCH_TMP/client.out" "$BENCH_TMP/client.err" >&2 || true
    die "sse_client: no '$1' line within $2 s (log: $BENCH_TMP/ledgerd.log)"
}

# Accounts, projects and keys straight into the auth database (the API's bcrypt/argon2 would
# take minutes for thousands of them); keys are valid ledger_ keys (hex is URL-safe base64).
psql_db ledger_auth "
    CREATE TABLE bench_sse_keys AS
        SELECT i, 'ledger_' || substr(md5(random()::text) || md5(random()::text), 1, 43) AS key
        FROM generate_series(1, $ACCOUNTS) AS i;
    WITH a AS (
        INSERT INTO accounts (email, password_hash, name)
        SELECT 'sse' || i || '@bench.example', 'x', 'SSE bench' FROM bench_sse_keys RETURNING id, email),
    p AS (
        INSERT INTO projects (account_id, name, slug, daily_quota)
        SELECT id, 'p', 'sse-' || id, 1000000000 FROM a RETURNING id, account_id)
    INSERT INTO api_keys (project_id, key_prefix, key_hash, key_digest, name, status, rate_limit_per_minute,
                          rate_limit_per_hour)
    SELECT p.id, substr(k.key, 1, 20), 'bench-' || k.i, encode(sha256(convert_to(k.key, 'UTF8')), 'hex'), 'k', 'active',
           1000000, 100000000
    FROM p JOIN a ON a.id = p.account_id JOIN bench_sse_keys k ON 'sse' || k.i || '@bench.example' = a.email" \
    >/dev/null
PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d ledger_auth \
    -v ON_ERROR_STOP=1 -qAtX -F ' ' -c "SELECT k.key, ak.project_id FROM bench_sse_keys k
        JOIN api_keys ak ON ak.key_digest = encode(sha256(convert_to(k.key, 'UTF8')), 'hex') ORDER BY ak.project_id" \
    >"$BENCH_TMP/keys.txt"
nkeys=$(wc -l <"$BENCH_TMP/keys.txt")
((nkeys == ACCOUNTS)) || die "expected $ACCOUNTS keys, got $nkeys"

rss() { bench_rss "$BENCH_LEDGERD_PID"; }
bench_say "sse: $STREAMS streams ($per per account, $ACCOUNTS accounts with one project and key each) on one worker" \
    "(ledgerd on cpu 1, client on cpu 0, $ADDRS source addresses), then $RATE error logs/s for ${SECONDS_}s" \
    "through POST /ingest/single, round-robin over the projects"

"${BENCH_CLIENT_PIN[@]}" "$CLIENT" -p "$BENCH_LEDGERD_PORT" -k "$BENCH_TMP/keys.txt" -n "$STREAMS" -r "$RATE" \
    -d "$SECONDS_" -a "$ADDRS" -c 16 </dev/null >"$BENCH_TMP/client.out" 2>"$BENCH_TMP/client.err" &
CLIENT_PID=$!
printf '%s\n' "$CLIENT_PID" >"$BENCH_TMP/client.holder.pid"

wait_line '^warm' 60
sleep 1
rss_before=$(rss)
kill -USR1 "$CLIENT_PID"
wait_line '^connected' 90
conn_line=$(grep '^connected' "$BENCH_TMP/client.out")
sleep 2 # idle: heartbeats are 30 s apart, nothing else is sent
rss_after=$(rss)
per_stream=$(awk -v a="$rss_after" -v b="$rss_before" -v n="$STREAMS" 'BEGIN { printf "%.2f", (a - b) / n }')
bench_say "$conn_line (target: all within 2000 ms)"
bench_say "rss before $rss_before kB, with $STREAMS idle streams $rss_after kB: $per_stream kB per idle stream (target < 8)"

kill -USR1 "$CLIENT_PID"
rc=0
for ((i = 0; i < (SECONDS_ + 60) * 10; i++)); do
    kill -0 "$CLIENT_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$CLIENT_PID" 2>/dev/null; then
    kill -TERM "$CLIENT_PID" || true
    die "sse_client did not finish the ingest phase"
fi
wait "$CLIENT_PID" || rc=$?
rm -f "$BENCH_TMP/client.holder.pid"
while read -r line; do
    [[ $line =~ ^(ingest|delivered|latency) ]] && bench_say "$line"
done <"$BENCH_TMP/client.out"
[[ -s $BENCH_TMP/client.err ]] && bench_say "client: $(head -c 400 "$BENCH_TMP/client.err" | tr '\n' ' ')"
((rc == 0)) || bench_say "client exit status $rc (missing deliveries, non-202 answers or streams cut)"
bench_say "summary: connect $(awk '{ print $4 " ms" }' <<<"$conn_line") (target < 2000 ms); $per_stream kB RSS per idle" \
    "stream (target < 8); $(grep '^latency' "$BENCH_TMP/client.out" | sed 's/^latency //') (targets p50 < 5, p99 < 30)"
bench_finish
