/*
 * ingest.c: [ingest] keys, registration and the three ingest endpoints (see ingest.h).
 *
 * The requests a worker reads in one loop iteration share one EVALSHA round trip (EVAL again
 * when Redis answers NOSCRIPT, e.g. after a restart or SCRIPT FLUSH; see "coalescing"). The
 * encoded entries and the notification texts live in heap buffers owned by a per-request struct
 * in req->arena until the reply arrives; the JSON tree is freed as soon as everything is encoded.
 */
#include "roles/ingest/ingest.h"
#include "roles/ingest/ingest_int.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/principal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/worker.h"
#include "db/redis.h"
#include "http/request.h"
#include "http/router.h"
#include "ingest/logcodec.h"
#include "ingest/logentry.h"
#include "roles/gateway/gateway.h"
#include "roles/notify/notify.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_ingest_cfg, f)
#define MB (1024LL * 1024)
#define BATCH_MAX 1000
#define USAGE_TTL_S "172800"
/* How long a first answer is kept for repeats of its Idempotency-Key. */
#define IDEM_TTL_S "86400"

const struct ldg_cfg_key ldg_ingest_cfg_keys[] = {
    {"queue_max_depth", LDG_CFG_INT, CFG(queue_max_depth), "100000", 1, 1000000000, NULL, 0,
     "Logs of one project queued but not yet stored before ingestion answers 503 (checked atomically with "
     "the enqueue)"},
    {"queue_max_bytes", LDG_CFG_SIZE, CFG(queue_max_bytes), "268435456", 1048576, 1024 * 1024 * MB, NULL, 0,
     "Bytes of one project's queued but not yet stored logs (their MessagePack) before ingestion answers 503, "
     "beside queue_max_depth (checked atomically with the enqueue)"},
    {"stream", LDG_CFG_STR, CFG(stream), "ledger:logs", 0, 0, NULL, 0,
     "Redis Stream holding the ingest queue (read by the storage role's consumer group)"},
    {"max_batch_body_bytes", LDG_CFG_SIZE, CFG(max_batch_body_bytes), "10485760", 1024, 1024 * MB, NULL, 0,
     "Largest request body of POST /api/v1/ingest/batch and /single and of the OTLP routes /v1/logs, "
     "/v1/traces and /v1/metrics (before gzip inflation); larger answers 413"},
    {"max_future_skew_ms", LDG_CFG_MS, CFG(max_future_skew_ms), "300000", 0, 300000, NULL, 0,
     "How far in the future a log's timestamp may be (client clock skew); later ones are rejected per log "
     "(at most 5 minutes)"},
    {"redis_memory_high_pct", LDG_CFG_INT, CFG(redis_memory_high_pct), "90", 0, 100, NULL, 0,
     "Answer 503 (nothing queued) while Redis uses this share of its maxmemory or more, before Redis "
     "itself refuses writes (read every second with INFO memory; 0 = off, and off without maxmemory)"},
    {"notify_errors", LDG_CFG_BOOL, CFG(notify_errors), "on", 0, 0, NULL, 0,
     "Publish accepted error-level logs on notifications:errors:<project_id>"},
    {"notify_critical", LDG_CFG_BOOL, CFG(notify_critical), "on", 0, 0, NULL, 0,
     "Publish accepted critical-level logs on notifications:errors:<project_id> (exception logs always are)"},
    {0},
};

/*
 * The enqueue script, for the requests of one flight (the requests one loop iteration read, see
 * "coalescing" below), in groups: requests with the same counters and limits (same project, key
 * limits, quota and windows). It runs them with exactly the checks and counts of separate calls:
 * a group reads its counters once, counts in Lua, and writes each back once, before the next
 * group reads (two groups of one project, keys with different limits, still count exactly); the
 * accepted logs of a group become ONE stream entry (fields p, n, m: n MessagePack logs back to
 * back). Per group, what is the same for all its requests is sent once.
 * KEYS: stream, then per group queue_depth:<pid>, usage:<pid>:<day>, the gateway's two
 * rate-limit windows (ratelimit:<pid>:min:<m>, ratelimit:<pid>:hour:<h>; LDG_ROUTE_OWN_LIMITS) and
 * queue_bytes:<pid> (the MessagePack bytes queued, decremented by the storage role's ack script).
 * ARGV: number of groups, then per group: its number of requests c, max_depth, quota, pid, minute
 * limit, hour limit, max_bytes, then c quadruples (n, the n logs, idempotency key, answer): the key is
 * idem:<pid>:<Idempotency-Key> or "" without one; answer is what a repeat gets ("<status>\n
 * <content type>\n<body>").
 * Checks per request in the gateway's order: rate limits (every request counts), then a request
 * whose key holds an answer (set by an earlier call, or by an earlier request of this one) is a
 * repeat: nothing is queued or counted in the quota, and its value is that answer; then daily
 * quota, then queue depth and bytes. The answer is SET (EX 86400) right after the group's XADD, in the same
 * script: a key is set if and only if its logs were queued. Returns 4 values per request, groups
 * in order: code, value, minute count, hour count; code -4 (repeat; value = the stored answer, a
 * string), -3 (rate limited), -2 (quota; value = usage), -1 (queue full; value = depth) or n
 * (queued).
 */
static const char enqueue_lua[] =
    "local out, o, a, seen = {}, 0, 2, {}\n"
    "for g = 0, tonumber(ARGV[1]) - 1 do\n"
    "  local q = 2 + 5 * g\n"
    "  local dk, uk, mk, hk, bk = KEYS[q], KEYS[q + 1], KEYS[q + 2], KEYS[q + 3], KEYS[q + 4]\n"
    "  local c, maxd, quota, pid = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + "
    "3]\n"
    "  local ml, hl, maxb = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])\n"
    "  a = a + 7\n"
    "  local mc0 = tonumber(redis.call('GET', mk) or '0')\n"
    "  local hc0 = tonumber(redis.call('GET', hk) or '0')\n"
    "  local mc, hc, acc, m, sets = mc0, hc0, 0, {}, {}\n"
    "  local usage0, usage, depth, qb, accb\n"
    "  for i = 1, c do\n"
    "    local n = tonumber(ARGV[a])\n"
    "    mc, hc = mc + 1, hc + 1\n"
    "    local code, v, ik = n, 0, ARGV[a + 2]\n"
    "    local prev = nil\n"
    "    if ik ~= '' then prev = seen[ik] or redis.call('GET', ik) end\n"
    "    if mc > ml or hc > hl then\n"
    "      code = -3\n"
    "    elseif prev then\n"
    "      code, v = -4, prev\n"
    "    else\n"
    "      if usage == nil then\n"
    "        usage0 = tonumber(redis.call('GET', uk) or '0')\n"
    "        usage, depth = usage0, tonumber(redis.call('GET', dk) or '0')\n"
    "        qb, accb = tonumber(redis.call('GET', bk) or '0'), 0\n"
    "      end\n"
    "      if quota > 0 and usage + n > quota then\n"
    "        code, v = -2, usage\n"
    "      elseif depth + n > maxd or qb + #ARGV[a + 1] > maxb then\n"
    "        code, v = -1, depth\n"
    "      else\n"
    "        usage, depth, acc = usage + n, depth + n, acc + n\n"
    "        qb, accb = qb + #ARGV[a + 1], accb + #ARGV[a + 1]\n"
    "        m[#m + 1] = ARGV[a + 1]\n"
    "        if ik ~= '' then seen[ik] = ARGV[a + 3]; sets[#sets + 1] = ik; sets[#sets + 1] = ARGV[a + 3] end\n"
    "      end\n"
    "    end\n"
    "    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = code, v, mc, hc\n"
    "    o, a = o + 4, a + 4\n"
    "  end\n"
    "  if acc > 0 then\n"
    "    redis.call('XADD', KEYS[1], '*', 'p', pid, 'n', acc, 'm', table.concat(m))\n"
    "    redis.call('INCRBY', dk, acc)\n"
    "    redis.call('INCRBY', bk, accb)\n"
    "    redis.call('INCRBY', uk, acc)\n"
    "    if usage0 == 0 then redis.call('EXPIRE', uk, " USAGE_TTL_S ") end\n"
    "    for i = 1, #sets, 2 do redis.call('SET', sets[i], sets[i + 1], 'EX', " IDEM_TTL_S ") end\n"
    "  end\n"
    "  redis.call('INCRBY', mk, c)\n"
    "  if mc0 == 0 then redis.call('EXPIRE', mk, 60) end\n"
    "  redis.call('INCRBY', hk, c)\n"
    "  if hc0 == 0 then redis.call('EXPIRE', hk, 3600) end\n"
    "end\n"
    "return out\n";

static struct {
    const struct ldg_ingest_cfg *cfg;
    size_t stream_len;
    char max_s[24]; /* queue_max_depth, as the script's argument */
    size_t max_len;
    char maxb_s[24]; /* queue_max_bytes */
    size_t maxb_len;
    int index; /* in ldg_roles: role_state of each worker */
    struct ldg_redis_script enqueue;
} G;

/* ---- helpers --------------------------------------------------------------------------------- */

static void answer_503(struct ldg_req *req, const char *detail, int retry_after)
{
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after);
    ldg_req_add_header(req, "Retry-After", v);
    ldg_req_error(req, 503, detail);
}

static void respond_buf(struct ldg_req *req, int status, struct ldg_buf *b)
{
    ldg_req_json(req, status, ldg_buf_head(b), ldg_buf_size(b));
    ldg_buf_free(b);
}

/* An answer decided before the enqueue script: the gateway's limits run first, as for any other
 * route, then it is sent (unless they answered 429/402/503). Lives in the request's arena. */
struct early_answer {
    int status;
    bool json; /* body is the JSON to send, else the detail of an error */
    char *body;
    size_t len;
};

static void on_limits_passed(struct ldg_req *req, void *ud)
{
    struct early_answer *a = ud;
    if (a->json)
        ldg_req_json(req, a->status, a->body, a->len);
    else
        ldg_req_error(req, a->status, a->body);
}

static void answer_early(struct ldg_req *req, int status, bool json, const char *body, size_t len)
{
    struct early_answer *a = ldg_arena_alloc(&req->arena, sizeof *a);
    a->status = status;
    a->json = json;
    a->body = ldg_arena_alloc(&req->arena, len + 1);
    memcpy(a->body, body, len);
    a->body[len] = '\0';
    a->len = len;
    ldg_gateway_limits_then(req, on_limits_passed, a);
}

static void answer_early_error(struct ldg_req *req, int status, const char *detail)
{
    answer_early(req, status, false, detail, strlen(detail));
}

/* The API-key principal, or NULL after answering 403. */
static const struct ldg_principal *api_key_principal(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg_principal(req);
    if (!p || p->kind != LDG_PRINCIPAL_API_KEY || p->project_id <= 0) {
        ldg_req_error(req, 403, "Ingestion requires an API key");
        return NULL;
    }
    return p;
}

/* A request body's JSON tree, built in an arena whose first chunk lives with it (on the handler's
 * stack): a single log's tree fits there, a batch's continues in heap chunks. */
struct body_tree {
    struct ldg_arena arena;
    char first[16384];
};

/* Parse the body as a JSON object into t, or answer 400, release t and return NULL. The tree is
 * released with ldg_arena_free(&t->arena). */
static cJSON *body_object(struct ldg_req *req, struct body_tree *t)
{
    ldg_arena_init(&t->arena, t->first, sizeof t->first);
    size_t pos = 0;
    cJSON *root = ldg_json_parse_in(ldg_buf_head(&req->body), ldg_buf_size(&req->body), &t->arena, &pos);
    char bad_json[128];
    snprintf(bad_json, sizeof bad_json,
             "Request body must be valid JSON (UTF-8, no NUL characters): invalid at byte %zu", pos);
    const char *problem = !root                   ? bad_json
                          : !cJSON_IsObject(root) ? "Request body must be a JSON object"
                                                  : NULL;
    if (!problem)
        return root;
    ldg_arena_free(&t->arena);
    answer_early_error(req, 400, problem);
    return NULL;
}

/* ---- enqueue ----------------------------------------------------------------------------------- */

/*
 * Coalescing: an accepted request does not call Redis at once. It joins its worker's pending
 * list, and a check handle (after the poll phase, so after every request that iteration read)
 * sends the whole list as ONE script call, a flight; a full list (COALESCE_MAX requests or
 * COALESCE_BYTES of logs) is sent at once. Redis then runs one script per loop iteration instead
 * of one per request, which is most of its cost per single-log request. Nothing waits longer:
 * the requests of an iteration were all going to be written to Redis at the end of it anyway.
 */
#define COALESCE_MAX 64
#define COALESCE_BYTES (1024 * 1024)

/* Per-worker state (role_state). */
struct iw {
    struct ldg_worker *w;
    uv_check_t flush; /* active while pending is not empty */
    struct ldg_list pending;
    size_t npending, pending_bytes;
    bool stopping, closed;
    /* Redis memory guard: INFO memory of every shard every MEM_CHECK_MS */
    uv_timer_t mem_timer;
    bool mem_high[LDG_SHARDS_MAX]; /* used_memory >= redis_memory_high_pct of maxmemory at the last check */
    struct mem_probe {
        struct iw *iw;
        unsigned shard;
        bool inflight;
    } mem[LDG_SHARDS_MAX];
    unsigned mem_inflight; /* INFOs in flight: their callbacks own iw if the worker is freed first */
    bool orphan;           /* freed by the worker: the last INFO callback frees iw */
    unsigned open_handles;
};

#define MEM_CHECK_MS 1000

/* What a group of a flight sends once for all its requests (its lead's values). */
struct group_args {
    char depth_key[48], bytes_key[48], usage_key[64], count[24], quota[24], pid[24], min[24], hour[24];
};

/* One script call for n requests; heap, owned by the call until its reply. */
struct flight {
    struct iw *iw;
    unsigned shard; /* every request of a flight is of a project on this Redis shard */
    size_t n;
    bool retried; /* EVAL sent after NOSCRIPT */
    int argc;
    const char **argv; /* into the same block; point into the enqueues, ga and G */
    size_t *argl;
    char k_s[24], numkeys_s[24];
    struct group_args *ga; /* per group; into the same block */
    struct enqueue *e[];   /* in the order of the script's answers */
};

static void enqueue_free(struct enqueue *e)
{
    ldg_buf_free(&e->answer);
    ldg_buf_free(&e->errors);
    ldg_buf_free(&e->mp);
    ldg_buf_free(&e->notes);
}

/* The 202 body for e, into b (initialised here). */
static void accepted_body(const struct enqueue *e, struct ldg_buf *b)
{
    char num[24];
    ldg_buf_init(b);
    ldg_buf_puts(b, "{\"accepted\": ");
    ldg_buf_put(b, num, ldg_str_i64(num, (int64_t)e->accepted));
    ldg_buf_puts(b, ", \"rejected\": ");
    ldg_buf_put(b, num, ldg_str_i64(num, (int64_t)e->rejected));
    ldg_buf_puts(b, ", \"message\": ");
    if (e->batch)
        ldg_buf_puts(b, "null");
    else
        ldg_buf_puts(b, "\"Log accepted for processing\"");
    ldg_buf_puts(b, ", \"errors\": ");
    if (e->rejected) {
        ldg_buf_puts(b, "[");
        ldg_buf_put(b, ldg_buf_head(&e->errors), ldg_buf_size(&e->errors));
        ldg_buf_puts(b, "]");
    } else
        ldg_buf_puts(b, "null");
    ldg_buf_puts(b, "}");
}

static void respond_accepted(struct enqueue *e)
{
    struct ldg_buf b;
    accepted_body(e, &b);
    respond_buf(e->req, 202, &b);
}

/* One round trip for all of the request's notifications: replay stream, SSE channel and the §5.2
 * channel (roles/notify/notify.h). */
static void publish_notes(struct enqueue *e)
{
    ldg_notify_publish(e->req->w, e->project_id, ldg_buf_head(&e->notes), e->note_off, e->nnotes);
}

static int send_flight(struct flight *f, bool eval);

/* Logged once per flight, with its first request's id. */
static void log_redis_problem(const struct ldg_req *req, size_t n, const char *what)
{
    char ctx[128];
    snprintf(ctx, sizeof ctx, "rid=%s requests=%zu", req->request_id, n);
    ldg_log_error(ctx, "ingest Redis call failed: %s", what);
}

/* A repeat of an Idempotency-Key: the stored first answer, as it was. */
static void replay(struct ldg_req *req, const char *a, size_t len)
{
    const char *nl1 = memchr(a, '\n', len);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - a)) : NULL;
    char type[96];
    if (!nl2 || (size_t)(nl2 - nl1 - 1) >= sizeof type) {
        ldg_log_error(NULL, "ingest: malformed stored idempotent answer (%zu bytes)", len);
        ldg_req_error(req, 500, "Internal server error");
        return;
    }
    memcpy(type, nl1 + 1, (size_t)(nl2 - nl1 - 1));
    type[nl2 - nl1 - 1] = '\0';
    ldg_req_add_header(req, "Idempotent-Replayed", "true");
    ldg_req_respond(req, atoi(a), type, nl2 + 1, len - (size_t)(nl2 + 1 - a));
}

/* The script's verdict for one request of a flight (`stored`: the answer of a repeat). */
static void finish_one(struct enqueue *e, long long code, long long v, long long mc, long long hc,
                       const struct redisReply *stored)
{
    struct ldg_req *req = e->req;
    if (ldg_gateway_ratelimit_verdict(req, &e->rl, mc, hc)) {
        /* 429 answered: nothing queued */
        if (e->after)
            e->after(e, false);
    } else if (code == -4) {
        replay(req, stored->str, stored->len);
    } else if (code == -1) {
        answer_503(req, "Service temporarily unavailable - queue full", 5);
        if (e->after)
            e->after(e, false);
    } else if (code == -2 && e->otlp) {
        char detail[96];
        snprintf(detail, sizeof detail, "Daily quota exceeded: %lld/%" PRId64, v, e->quota);
        e->rejected += e->accepted;
        e->accepted = 0;
        ldg_buf_reset(&e->errors);
        ldg_buf_puts(&e->errors, detail);
        if (e->after)
            e->after(e, true);
        else
            ldg__otlp_respond(e); /* a partial success, as OTLP receivers report quota */
    } else if (code == -2) {
        char detail[96];
        snprintf(detail, sizeof detail, "Daily quota exceeded: %lld/%" PRId64, v, e->quota);
        ldg_req_error(req, 402, detail);
    } else {
        if (e->after)
            e->after(e, true);
        else if (req->conn && e->otlp)
            ldg__otlp_respond(e);
        else if (req->conn)
            respond_accepted(e);
        publish_notes(e); /* the logs are queued even if the client went away */
    }
}

/* n verdicts of 4 integers, but the value of a repeat (code -4) a string. */
static bool verdicts(const struct redisReply *reply, size_t n)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 * n)
        return false;
    for (size_t i = 0; i < 4 * n; i++) {
        int want = i % 4 == 1 && reply->element[i - 1]->integer == -4 ? REDIS_REPLY_STRING : REDIS_REPLY_INTEGER;
        if (reply->element[i]->type != want)
            return false;
    }
    return true;
}

static void flight_end(struct flight *f)
{
    for (size_t i = 0; i < f->n; i++) {
        struct ldg_req *req = f->e[i]->req;
        enqueue_free(f->e[i]);
        ldg_req_unref(req);
    }
    free(f);
}

/* The 503 of a call that was never sent (nothing queued), or of one whose outcome is unknown: a
 * reply lost or timed out after the call was sent, or a script error after earlier groups of the
 * call were queued (Redis does not undo a script's writes). */
#define DETAIL_NOT_QUEUED "Service temporarily unavailable"
#define DETAIL_UNKNOWN                                                                                       \
    "Service temporarily unavailable - outcome unknown: the logs may have been queued; retry with the "      \
    "same Idempotency-Key to have them stored once"

static void flight_fail(struct flight *f, const char *detail)
{
    for (size_t i = 0; i < f->n; i++) {
        answer_503(f->e[i]->req, detail, 1);
        if (f->e[i]->after)
            f->e[i]->after(f->e[i], false);
    }
    flight_end(f);
}

static void on_flight_reply(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct flight *f = ud;
    if (!reply) {
        log_redis_problem(f->e[0]->req, f->n, "no reply (connection lost or timed out)");
        flight_fail(f, DETAIL_UNKNOWN);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (!f->retried && ldg_redis_noscript(reply)) {
            f->retried = true;
            if (send_flight(f, true) < 0)
                flight_fail(f, DETAIL_NOT_QUEUED);
            /* else the EVAL's callback finishes */
        } else {
            log_redis_problem(f->e[0]->req, f->n, reply->str);
            /* refused before running (OOM with noeviction, BUSY): nothing written */
            bool refused = strncmp(reply->str, "OOM", 3) == 0 || strncmp(reply->str, "BUSY", 4) == 0;
            flight_fail(f, refused ? DETAIL_NOT_QUEUED : DETAIL_UNKNOWN);
        }
    } else if (!verdicts(reply, f->n)) {
        log_redis_problem(f->e[0]->req, f->n, "unexpected script reply");
        flight_fail(f, DETAIL_UNKNOWN);
    } else {
        for (size_t i = 0; i < f->n; i++) {
            struct redisReply **v = reply->element + 4 * i;
            bool rep = v[0]->integer == -4;
            finish_one(f->e[i], v[0]->integer, rep ? 0 : v[1]->integer, v[2]->integer, v[3]->integer,
                       rep ? v[1] : NULL);
        }
        flight_end(f);
    }
}

static int send_flight(struct flight *f, bool eval)
{
    ldg_redis_script_head(&G.enqueue, eval, f->argv, f->argl);
    return ldg_redis_commandargv(f->iw->w->redis_shard[f->shard], on_flight_reply, f, f->argc, f->argv,
                                 f->argl);
}

/* Same counters and limits: such requests form one group of the script call. */
static bool same_group(const struct enqueue *a, const struct enqueue *b)
{
    return a->project_id == b->project_id && a->quota == b->quota && a->day == b->day &&
           a->rl.min_limit == b->rl.min_limit && a->rl.hour_limit == b->rl.hour_limit &&
           strcmp(a->rl.min_key, b->rl.min_key) == 0 && strcmp(a->rl.hour_key, b->rl.hour_key) == 0;
}

static void group_args_fill(struct group_args *ga, const struct enqueue *lead, size_t count)
{
    size_t plen = ldg_str_i64(ga->pid, lead->project_id);
    memcpy(ga->depth_key, "queue_depth:", 12);
    memcpy(ga->depth_key + 12, ga->pid, plen + 1);
    memcpy(ga->bytes_key, "queue_bytes:", 12);
    memcpy(ga->bytes_key + 12, ga->pid, plen + 1);
    time_t t = (time_t)(lead->day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(ga->usage_key, sizeof ga->usage_key, "usage:%s:%04d%02d%02d", ga->pid, tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    ldg_str_i64(ga->count, (int64_t)count);
    ldg_str_i64(ga->quota, lead->quota);
    ldg_str_i64(ga->min, lead->rl.min_limit);
    ldg_str_i64(ga->hour, lead->rl.hour_limit);
}

/* Send the n requests of in[] (all of projects on `shard`) as one flight, grouped as the script wants. */
static void send_shard(struct iw *iw, unsigned shard, struct enqueue *const *in, size_t n)
{
    /* group-major order: groups by first arrival, requests in arrival order within a group */
    struct enqueue *arrived[COALESCE_MAX], *lead[COALESCE_MAX];
    size_t group_of[COALESCE_MAX], count[COALESCE_MAX], ngroups = 0, j = 0;
    for (size_t a = 0; a < n; a++) {
        struct enqueue *e = in[a];
        size_t g = 0;
        while (g < ngroups && !same_group(lead[g], e))
            g++;
        if (g == ngroups) {
            lead[g] = e;
            count[g] = 0;
            ngroups++;
        }
        count[g]++;
        group_of[j] = g;
        arrived[j++] = e;
    }
    LDG_ASSERT(j == n);
    int argc = 3 + 1 + 5 * (int)ngroups + 1 + 7 * (int)ngroups + 4 * (int)n;
    struct flight *f = ldg_malloc(sizeof *f + n * sizeof f->e[0] + ngroups * sizeof f->ga[0] +
                                  (size_t)argc * (sizeof *f->argv + sizeof *f->argl));
    f->iw = iw;
    f->shard = shard;
    f->n = n;
    f->retried = false;
    f->argc = argc;
    f->ga = (struct group_args *)(f->e + n);
    f->argv = (const char **)(f->ga + ngroups);
    f->argl = (size_t *)(f->argv + argc);
    ldg_str_i64(f->k_s, (int64_t)ngroups);
    ldg_str_i64(f->numkeys_s, 1 + 5 * (int64_t)ngroups);
    const char **argv = f->argv;
    size_t *argl = f->argl;
    int i = 2;
#define ARG(s, l) (argv[i] = (s), argl[i] = (l), i++)
#define SARG(s) ARG(s, strlen(s))
    SARG(f->numkeys_s);
    ARG(G.cfg->stream, G.stream_len);
    for (size_t g = 0; g < ngroups; g++) {
        group_args_fill(&f->ga[g], lead[g], count[g]);
        SARG(f->ga[g].depth_key);
        SARG(f->ga[g].usage_key);
        SARG(lead[g]->rl.min_key);
        SARG(lead[g]->rl.hour_key);
        SARG(f->ga[g].bytes_key);
    }
    SARG(f->k_s);
    size_t k = 0;
    for (size_t g = 0; g < ngroups; g++) {
        const struct group_args *ga = &f->ga[g];
        SARG(ga->count);
        ARG(G.max_s, G.max_len);
        SARG(ga->quota);
        SARG(ga->pid);
        SARG(ga->min);
        SARG(ga->hour);
        ARG(G.maxb_s, G.maxb_len);
        for (j = 0; j < n; j++) {
            if (group_of[j] != g)
                continue;
            struct enqueue *e = arrived[j];
            f->e[k++] = e;
            SARG(e->n_s);
            ARG(ldg_buf_head(&e->mp), ldg_buf_size(&e->mp));
            SARG(e->idem);
            ARG(ldg_buf_size(&e->answer) ? ldg_buf_head(&e->answer) : "", ldg_buf_size(&e->answer));
        }
    }
#undef SARG
#undef ARG
    LDG_ASSERT(i == argc && k == n);
    if (send_flight(f, false) < 0) {
        log_redis_problem(f->e[0]->req, n, "not connected, or too many commands in flight");
        flight_fail(f, DETAIL_NOT_QUEUED);
    }
}

/* Send every pending request (none pending: nothing): one flight per Redis shard. */
static void flush_pending(struct iw *iw)
{
    size_t n = iw->npending;
    if (!n)
        return;
    if (!iw->stopping)
        uv_check_stop(&iw->flush);
    LDG_ASSERT(n <= COALESCE_MAX);
    struct enqueue *all[COALESCE_MAX];
    size_t k = 0;
    struct ldg_list_node *it;
    while ((it = ldg_list_pop_front(&iw->pending)))
        all[k++] = ldg_container_of(it, struct enqueue, link);
    LDG_ASSERT(k == n);
    iw->npending = 0;
    iw->pending_bytes = 0;
    const struct ldg_config *c = iw->w->cfg;
    if (c->nredis <= 1) {
        send_shard(iw, 0, all, n);
        return;
    }
    /* the shard of the first request left, with its requests in arrival order; then the rest */
    while (n) {
        unsigned shard = ldg_settings_redis_shard(c, all[0]->project_id);
        struct enqueue *mine[COALESCE_MAX], *rest[COALESCE_MAX];
        size_t nm = 0, nr = 0;
        for (size_t j = 0; j < n; j++) {
            if (ldg_settings_redis_shard(c, all[j]->project_id) == shard)
                mine[nm++] = all[j];
            else
                rest[nr++] = all[j];
        }
        send_shard(iw, shard, mine, nm);
        memcpy(all, rest, nr * sizeof rest[0]);
        n = nr;
    }
}

static void on_flush(uv_check_t *h)
{
    flush_pending(h->data);
}

static struct iw *iw_of(const struct ldg_req *req)
{
    return req->w->role_state[G.index];
}

/* ---- Idempotency-Key ----------------------------------------------------------------------------- */

int ldg__ingest_idem_read(struct ldg_req *req, int64_t project_id, char *out, size_t cap)
{
    out[0] = '\0';
    struct ldg_str k = ldg_req_header(req, "Idempotency-Key");
    if (!k.p)
        return 0;
    bool ok = k.n >= 1 && k.n <= IDEM_KEY_MAX;
    for (size_t i = 0; ok && i < k.n; i++)
        ok = (unsigned char)k.p[i] > 0x20 && (unsigned char)k.p[i] < 0x7f;
    int n = ok ? snprintf(out, cap, "idem:%" PRId64 ":%.*s", project_id, (int)k.n, k.p) : -1;
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        answer_early_error(req, 400, "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters");
        return -1;
    }
    return 0;
}

void ldg__ingest_idem_answer(struct enqueue *e, const char *key, int status, const char *type, const void *body,
                             size_t len)
{
    if (!key[0])
        return;
    snprintf(e->idem, sizeof e->idem, "%s", key);
    char head[128];
    int n = snprintf(head, sizeof head, "%d\n%s\n", status, type);
    ldg_buf_reset(&e->answer);
    ldg_buf_put(&e->answer, head, (size_t)n);
    ldg_buf_put(&e->answer, body, len);
}

/* v1: the 202 the request gets if its logs are queued. */
static void idem_accepted(struct enqueue *e, const char *key)
{
    if (!key[0])
        return;
    struct ldg_buf b;
    accepted_body(e, &b);
    ldg__ingest_idem_answer(e, key, 202, "application/json", ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

/* Queue e (e->accepted > 0) for the next flight. Takes over e's buffers. */
static void enqueue_start(struct enqueue *e)
{
    struct ldg_req *req = e->req;
    struct iw *iw = iw_of(req);
    e->day = (int64_t)(ldg_wall_us() / 1000000 / 86400);
    ldg_str_i64(e->n_s, (int64_t)e->accepted);
    ldg_gateway_ratelimit_keys(req, &e->rl);
    unsigned shard = ldg_settings_redis_shard(req->w->cfg, e->project_id);
    if (!ldg_redis_connected(req->w->redis_shard[shard])) {
        enqueue_free(e);
        answer_503(req, DETAIL_NOT_QUEUED, 1);
        if (e->after)
            e->after(e, false);
        return;
    }
    if (iw->mem_high[shard]) {
        enqueue_free(e);
        answer_503(req, "Service temporarily unavailable - queue full", 5);
        if (e->after)
            e->after(e, false);
        return;
    }
    ldg_req_ref(req);
    ldg_list_push_back(&iw->pending, &e->link);
    iw->npending++;
    iw->pending_bytes += ldg_buf_size(&e->mp);
    if (iw->stopping || iw->npending >= COALESCE_MAX || iw->pending_bytes >= COALESCE_BYTES)
        flush_pending(iw);
    else if (iw->npending == 1)
        uv_check_start(&iw->flush, on_flush);
}

static struct enqueue *enqueue_new(struct ldg_req *req, const struct ldg_principal *p, size_t max_logs,
                                   bool batch)
{
    struct enqueue *e = ldg_arena_alloc(&req->arena, sizeof *e);
    memset(e, 0, sizeof *e);
    e->req = req;
    e->project_id = p->project_id;
    e->quota = p->daily_quota;
    e->retention_days = p->retention_days;
    e->batch = batch;
    ldg_buf_init(&e->errors);
    ldg_buf_init(&e->answer);
    ldg_buf_init(&e->mp);
    ldg_buf_init(&e->notes);
    e->note_off = ldg_arena_alloc(&req->arena, (max_logs + 1) * sizeof *e->note_off);
    e->note_off[0] = 0;
    return e;
}

/* The MessagePack of the request's logs is about as long as their JSON, often shorter: one
 * allocation of that size instead of a chain of doublings and copies. */
static void reserve_mp(struct enqueue *e)
{
    (void)ldg_buf_reserve(&e->mp, ldg_buf_size(&e->req->body) + 64, 0);
}

/* Validate one log object; on success encode it into e. Returns 0 or -EINVAL with err filled.
 * Besides the log's own rules, its timestamp must fall in the accepted window: not older than the
 * project's retention (it would be deleted at once, and would need a partition far in the past)
 * and not more than max_future_skew_ms ahead. */
static int add_log(struct enqueue *e, const cJSON *obj, int64_t now_us, char *err, size_t errlen)
{
    struct ldg_log l;
    int rc = ldg_logentry_parse(obj, e->project_id, now_us, &e->req->arena, &l, err, errlen);
    if (rc < 0)
        return rc;
    if (e->retention_days > 0 && l.ts_us < now_us - e->retention_days * INT64_C(86400000000))
        return ldg_json_fail(err, errlen, "Timestamp is older than the project's retention of %" PRId64 " days",
                             e->retention_days);
    if (l.ts_us > now_us + G.cfg->max_future_skew_ms * INT64_C(1000))
        return ldg_json_fail(err, errlen, "Timestamp cannot be more than %" PRId64 " ms in the future",
                             G.cfg->max_future_skew_ms);
    if (ldg_logcodec_encode(&l, &e->mp) < 0)
        return ldg_json_fail(err, errlen, "Field 'attributes' is nested too deeply");
    e->accepted++;
    if (ldg_logcodec_notifiable(&l, G.cfg->notify_errors, G.cfg->notify_critical)) {
        ldg_logentry_attributes_text(&l, &e->req->arena);
        ldg_logcodec_notification(&l, &e->notes);
        e->note_off[++e->nnotes] = ldg_buf_size(&e->notes);
    }
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------------------ */

static void handle_single(struct ldg_req *req)
{
    const struct ldg_principal *p = api_key_principal(req);
    if (!p)
        return;
    char idem[IDEM_KEY_MAX + 48];
    if (ldg__ingest_idem_read(req, p->project_id, idem, sizeof idem) < 0)
        return;
    struct body_tree tree;
    cJSON *root = body_object(req, &tree);
    if (!root)
        return;
    struct enqueue *e = enqueue_new(req, p, 1, false);
    reserve_mp(e);
    char err[512], detail[600];
    int rc = add_log(e, root, ldg_wall_us(), err, sizeof err);
    ldg_arena_free(&tree.arena); /* the JSON tree */
    if (rc < 0) {
        enqueue_free(e);
        snprintf(detail, sizeof detail, "Invalid log entry: %s", err);
        answer_early_error(req, 400, detail);
        return;
    }
    idem_accepted(e, idem);
    enqueue_start(e);
}

static void handle_batch(struct ldg_req *req)
{
    const struct ldg_principal *p = api_key_principal(req);
    if (!p)
        return;
    char idem[IDEM_KEY_MAX + 48];
    if (ldg__ingest_idem_read(req, p->project_id, idem, sizeof idem) < 0)
        return;
    struct body_tree tree;
    cJSON *root = body_object(req, &tree);
    if (!root)
        return;
    const cJSON *logs = ldg_json_member(root, "logs");
    if (!logs || !cJSON_IsArray(logs)) {
        ldg_arena_free(&tree.arena); /* the JSON tree */
        answer_early_error(req, 400, "Field 'logs' is required and must be a list of log objects");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(logs);
    if (n < 1 || n > BATCH_MAX) {
        ldg_arena_free(&tree.arena); /* the JSON tree */
        answer_early_error(req, 400,
                           n < 1 ? "Field 'logs' must contain at least 1 log"
                                 : "Field 'logs' must contain at most 1000 logs");
        return;
    }
    struct enqueue *e = enqueue_new(req, p, n, true);
    reserve_mp(e);
    int64_t now = ldg_wall_us();
    char err[512];
    size_t i = 0;
    for (const cJSON *it = logs->child; it; it = it->next, i++) {
        if (add_log(e, it, now, err, sizeof err) == 0)
            continue;
        e->rejected++;
        if (ldg_buf_size(&e->errors))
            ldg_buf_puts(&e->errors, ", ");
        char item[600];
        int len = snprintf(item, sizeof item, "Log %zu: %s", i, err);
        ldg_buf_puts(&e->errors, "\"");
        ldg_json_escape(&e->errors, item,
                        len < 0                      ? 0
                        : (size_t)len >= sizeof item ? sizeof item - 1
                                                     : (size_t)len);
        ldg_buf_puts(&e->errors, "\"");
    }
    ldg_arena_free(&tree.arena); /* the JSON tree */
    if (!e->accepted) {          /* nothing to queue: still 202 (reference §3.6) */
        struct ldg_buf b;
        accepted_body(e, &b);
        answer_early(req, 202, true, ldg_buf_head(&b), ldg_buf_size(&b));
        ldg_buf_free(&b);
        enqueue_free(e);
        return;
    }
    idem_accepted(e, idem);
    enqueue_start(e);
}

static void on_depth(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct ldg_req *req = ud;
    const struct ldg_principal *p = ldg_principal(req);
    long long depth = -1;
    if (reply && reply->type == REDIS_REPLY_NIL)
        depth = 0;
    else if (reply && reply->type == REDIS_REPLY_STRING) {
        char *end = NULL;
        depth = strtoll(reply->str, &end, 10);
        if (end == reply->str)
            depth = -1;
    }
    if (depth < 0) {
        log_redis_problem(req, 1,
                          reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "queue depth read");
        answer_503(req, "Service temporarily unavailable", 1);
    } else {
        char body[96];
        int len = snprintf(body, sizeof body, "{\"project_id\": %" PRId64 ", \"queue_depth\": %lld}",
                           p->project_id, depth);
        ldg_req_json(req, 200, body, (size_t)len);
    }
    ldg_req_unref(req);
}

static void handle_depth(struct ldg_req *req)
{
    const struct ldg_principal *p = api_key_principal(req);
    if (!p)
        return;
    char key[48];
    snprintf(key, sizeof key, "queue_depth:%" PRId64, p->project_id);
    const char *argv[2] = {"GET", key};
    ldg_req_ref(req);
    struct ldg_redis *r = ldg_worker_redis_for(req->w, p->project_id);
    if (!ldg_redis_connected(r) || ldg_redis_commandargv(r, on_depth, req, 2, argv, NULL) < 0) {
        ldg_req_unref(req);
        answer_503(req, "Service temporarily unavailable", 1);
    }
}

/* ---- role ---------------------------------------------------------------------------------------- */

static int ingest_validate(const void *cfg, struct ldg_cfg_err *err)
{
    const struct ldg_ingest_cfg *c = cfg;
    if (!c->stream || !*c->stream) {
        snprintf(err->msg, sizeof err->msg, "[ingest] stream must not be empty");
        return -EINVAL;
    }
    return 0;
}

static int ingest_init_global(const struct ldg_config *c, const void *cfg)
{
    (void)c;
    G.cfg = cfg;
    G.stream_len = strlen(G.cfg->stream);
    G.max_len = ldg_str_i64(G.max_s, G.cfg->queue_max_depth);
    G.maxb_len = ldg_str_i64(G.maxb_s, G.cfg->queue_max_bytes);
    G.index = ldg_role_index("ingest");
    LDG_ASSERT(G.index >= 0);
    ldg_redis_script_init(&G.enqueue, enqueue_lua);
    return 0;
}

/* "name:<digits>" in an INFO text; -1 if absent. */
static long long info_field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ':')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

static void on_mem_info(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct mem_probe *mp = ud;
    struct iw *iw = mp->iw;
    mp->inflight = false;
    iw->mem_inflight--;
    if (iw->orphan) {
        if (iw->mem_inflight == 0)
            free(iw);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_STRING)
        return; /* unknown: keep the last verdict */
    long long used = info_field(reply->str, "used_memory"), max = info_field(reply->str, "maxmemory");
    bool high = max > 0 && used >= 0 && (double)used * 100.0 >= (double)max * (double)G.cfg->redis_memory_high_pct;
    if (high != iw->mem_high[mp->shard])
        ldg_log_warn(NULL, "ingest: Redis shard %u memory %lld of maxmemory %lld: %s", mp->shard, used, max,
                     high ? "answering 503 for its projects until it falls" : "accepting again");
    iw->mem_high[mp->shard] = high;
}

static void on_mem_timer(uv_timer_t *t)
{
    struct iw *iw = t->data;
    for (unsigned i = 0; i < iw->w->nredis; i++) {
        struct mem_probe *mp = &iw->mem[i];
        struct ldg_redis *r = iw->w->redis_shard[i];
        if (mp->inflight || !ldg_redis_connected(r))
            continue;
        if (ldg_redis_command(r, on_mem_info, mp, "INFO memory") == 0) {
            mp->inflight = true;
            iw->mem_inflight++;
        }
    }
}

static int ingest_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    (void)cfg;
    struct iw *iw = ldg_calloc(1, sizeof *iw);
    iw->w = w;
    for (unsigned i = 0; i < LDG_SHARDS_MAX; i++)
        iw->mem[i] = (struct mem_probe){iw, i, false};
    ldg_list_init(&iw->pending);
    uv_check_init(&w->loop, &iw->flush);
    iw->flush.data = iw;
    uv_timer_init(&w->loop, &iw->mem_timer);
    iw->mem_timer.data = iw;
    iw->open_handles = 2;
    if (G.cfg->redis_memory_high_pct > 0)
        uv_timer_start(&iw->mem_timer, on_mem_timer, 0, MEM_CHECK_MS);
    *state = iw;
    return 0;
}

static void on_flush_closed(uv_handle_t *h)
{
    struct iw *iw = h->data;
    if (--iw->open_handles == 0)
        iw->closed = true;
}

/* Pending requests leave now; later ones (connections finishing while the worker drains) are
 * sent one by one. */
static void ingest_stop_worker(struct ldg_worker *w, void *state)
{
    (void)w;
    struct iw *iw = state;
    if (iw->stopping)
        return;
    flush_pending(iw);
    iw->stopping = true;
    uv_close((uv_handle_t *)&iw->flush, on_flush_closed);
    uv_close((uv_handle_t *)&iw->mem_timer, on_flush_closed);
}

static bool ingest_drained(const struct ldg_worker *w, const void *state)
{
    (void)w;
    const struct iw *iw = state;
    return iw->closed;
}

static void ingest_free_worker(struct ldg_worker *w, void *state)
{
    (void)w;
    struct iw *iw = state;
    if (!iw->closed) {
        ldg_log_error("role=ingest", "flush handle still open at exit; its state is left");
        return;
    }
    if (iw->mem_inflight) {
        iw->orphan = true; /* the INFO callback (NULL when Redis closes) frees it */
        return;
    }
    free(iw);
}

static void add_route(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                      unsigned flags, size_t max_body)
{
    struct ldg_route_opts o = {.flags = flags, .max_body_bytes = max_body};
    int rc = ldg_router_add(r, method, pattern, fn, &o);
    LDG_ASSERT(rc == 0);
}

/* ---- for the OTLP handlers (ingest_int.h) ------------------------------------------------------- */

const struct ldg_principal *ldg__ingest_principal(struct ldg_req *req)
{
    return api_key_principal(req);
}

struct enqueue *ldg__ingest_enqueue_new(struct ldg_req *req, const struct ldg_principal *p, size_t max_logs)
{
    struct enqueue *e = enqueue_new(req, p, max_logs, true);
    reserve_mp(e);
    return e;
}

int ldg__ingest_add_log(struct enqueue *e, const cJSON *obj, int64_t now_us, char *err, size_t errlen)
{
    return add_log(e, obj, now_us, err, errlen);
}

void ldg__ingest_enqueue_start(struct enqueue *e)
{
    enqueue_start(e);
}

void ldg__ingest_enqueue_free(struct enqueue *e)
{
    enqueue_free(e);
}

static void ingest_routes(struct ldg_router *r, const void *cfg)
{
    const struct ldg_ingest_cfg *c = cfg;
    G.cfg = c;
    /* One log can exceed the server's default limit once escaped (\uXXXX), so both share the key. */
    add_route(r, "POST", "/api/v1/ingest/single", handle_single, LDG_ROUTE_QUOTA | LDG_ROUTE_OWN_LIMITS,
              (size_t)c->max_batch_body_bytes);
    add_route(r, "POST", "/api/v1/ingest/batch", handle_batch, LDG_ROUTE_QUOTA | LDG_ROUTE_OWN_LIMITS,
              (size_t)c->max_batch_body_bytes);
    add_route(r, "GET", "/api/v1/queue/depth", handle_depth, 0, 0);
    ldg__otlp_routes(r, c);
}

const struct ldg_role ldg_role_ingest = {
    .name = "ingest",
    .keys = ldg_ingest_cfg_keys,
    .cfg_size = sizeof(struct ldg_ingest_cfg),
    .validate = ingest_validate,
    .init_global = ingest_init_global,
    .routes = ingest_routes,
    .init_worker = ingest_init_worker,
    .stop_worker = ingest_stop_worker,
    .drained = ingest_drained,
    .free_worker = ingest_free_worker,
};
