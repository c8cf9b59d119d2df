/*
 * ingest.c: [ingest] keys, registration and the three ingest endpoints (see ingest.h).
 *
 * One request = one EVALSHA round trip (EVAL again when Redis answers NOSCRIPT, e.g. after a
 * restart or SCRIPT FLUSH). The encoded entries and the notification texts live in heap buffers
 * owned by a per-request struct in req->arena until the reply arrives; the JSON tree is freed as
 * soon as everything is encoded.
 */
#include "roles/ingest/ingest.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/principal.h"
#include "core/json.h"
#include "core/clock.h"
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

#define CFG(f) offsetof(struct ldg_ingest_cfg, f)
#define MB (1024LL * 1024)
#define BATCH_MAX 1000
#define USAGE_TTL_S "172800"

const struct ldg_cfg_key ldg_ingest_cfg_keys[] = {
    {"queue_max_depth", LDG_CFG_INT, CFG(queue_max_depth), "100000", 1, 1000000000, NULL, 0,
     "Logs of one project queued but not yet stored before ingestion answers 503 (checked atomically with "
     "the enqueue)"},
    {"stream", LDG_CFG_STR, CFG(stream), "ledger:logs", 0, 0, NULL, 0,
     "Redis Stream holding the ingest queue (read by the storage role's consumer group)"},
    {"max_batch_body_bytes", LDG_CFG_SIZE, CFG(max_batch_body_bytes), "10485760", 1024, 1024 * MB, NULL, 0,
     "Largest request body of POST /api/v1/ingest/batch and /single (before gzip inflation); larger answers "
     "413"},
    {"notify_errors", LDG_CFG_BOOL, CFG(notify_errors), "on", 0, 0, NULL, 0,
     "Publish accepted error-level logs on notifications:errors:<project_id>"},
    {"notify_critical", LDG_CFG_BOOL, CFG(notify_critical), "on", 0, 0, NULL, 0,
     "Publish accepted critical-level logs on notifications:errors:<project_id> (exception logs always are)"},
    {0},
};

/*
 * KEYS: queue_depth:<pid>, usage:<pid>:<day>, stream, and the gateway's two rate-limit windows
 * (ratelimit:<pid>:min:<m>, ratelimit:<pid>:hour:<h>, see LDG_ROUTE_OWN_LIMITS).
 * ARGV: n, max_depth, quota, pid, the n logs (MessagePack, back to back), minute limit, hour limit.
 * One stream entry per request: fields p, n, m. The checks run in the gateway's order: rate
 * limits (every request counts), daily quota, then queue depth.
 * Returns {code, value, minute count, hour count}: code -3 (rate limited), -2 (quota; value =
 * usage), -1 (queue full; value = depth) or n (queued).
 */
static const char enqueue_lua[] =
    "local mc = redis.call('INCR', KEYS[4])\n"
    "if mc == 1 then redis.call('EXPIRE', KEYS[4], 60) end\n"
    "local hc = redis.call('INCR', KEYS[5])\n"
    "if hc == 1 then redis.call('EXPIRE', KEYS[5], 3600) end\n"
    "if mc > tonumber(ARGV[6]) or hc > tonumber(ARGV[7]) then return {-3, 0, mc, hc} end\n"
    "local n = tonumber(ARGV[1])\n"
    "local usage = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local quota = tonumber(ARGV[3])\n"
    "if quota > 0 and usage + n > quota then return {-2, usage, mc, hc} end\n"
    "local depth = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if depth + n > tonumber(ARGV[2]) then return {-1, depth, mc, hc} end\n"
    "redis.call('XADD', KEYS[3], '*', 'p', ARGV[4], 'n', ARGV[1], 'm', ARGV[5])\n"
    "redis.call('INCRBY', KEYS[1], n)\n"
    "redis.call('INCRBY', KEYS[2], n)\n"
    "if usage == 0 then redis.call('EXPIRE', KEYS[2], " USAGE_TTL_S ") end\n"
    "return {n, 0, mc, hc}\n";

static struct {
    const struct ldg_ingest_cfg *cfg;
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
    cJSON *root = ldg_json_parse_in(ldg_buf_head(&req->body), ldg_buf_size(&req->body), &t->arena);
    const char *problem = !root ? "Request body must be valid JSON (UTF-8, no NUL characters)"
                          : !cJSON_IsObject(root) ? "Request body must be a JSON object"
                                                  : NULL;
    if (!problem)
        return root;
    ldg_arena_free(&t->arena);
    answer_early_error(req, 400, problem);
    return NULL;
}

/* ---- enqueue ----------------------------------------------------------------------------------- */

struct enqueue {
    struct ldg_req *req;
    int64_t project_id, quota;
    bool batch;
    size_t accepted, rejected;
    struct ldg_buf errors; /* JSON array items, already escaped and comma-joined */
    struct ldg_buf mp;     /* the accepted logs' MessagePack maps, back to back */
    struct ldg_buf notes;  /* notification JSON texts back to back */
    size_t *note_off;      /* arena: nnotes + 1 offsets into notes */
    size_t nnotes;
    char depth_key[48], usage_key[64], pid[24], n_s[24], max_s[24], quota_s[24], min_s[24], hour_s[24];
    struct ldg_ratelimit rl;
    bool retried; /* EVAL sent after NOSCRIPT */
};

static void enqueue_free(struct enqueue *e)
{
    ldg_buf_free(&e->errors);
    ldg_buf_free(&e->mp);
    ldg_buf_free(&e->notes);
}

/* The 202 body for e, into b (initialised here). */
static void accepted_body(const struct enqueue *e, struct ldg_buf *b)
{
    ldg_buf_init(b);
    ldg_buf_printf(b, "{\"accepted\": %zu, \"rejected\": %zu, \"message\": ", e->accepted, e->rejected);
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

static int send_script(struct enqueue *e, bool eval);

static void log_redis_problem(struct ldg_req *req, const char *what)
{
    char ctx[96];
    snprintf(ctx, sizeof ctx, "rid=%s", req->request_id);
    ldg_log_error(ctx, "ingest enqueue failed: %s", what);
}

static void on_enqueued(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct enqueue *e = ud;
    struct ldg_req *req = e->req;
    bool done = true;
    if (!reply) {
        log_redis_problem(req, "no reply (connection lost or timed out)");
        answer_503(req, "Service temporarily unavailable", 1);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (!e->retried && ldg_redis_noscript(reply)) {
            e->retried = true;
            if (send_script(e, true) == 0)
                done = false; /* the EVAL's callback finishes */
            else
                answer_503(req, "Service temporarily unavailable", 1);
        } else {
            log_redis_problem(req, reply->str);
            answer_503(req, "Service temporarily unavailable", 1);
        }
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
               reply->element[0]->type != REDIS_REPLY_INTEGER) {
        log_redis_problem(req, "unexpected script reply");
        answer_503(req, "Service temporarily unavailable", 1);
    } else {
        long long code = reply->element[0]->integer;
        long long v = reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_INTEGER
                          ? reply->element[1]->integer
                          : 0;
        long long mc = reply->elements > 3 && reply->element[2]->type == REDIS_REPLY_INTEGER
                           ? reply->element[2]->integer
                           : 0;
        long long hc = reply->elements > 3 && reply->element[3]->type == REDIS_REPLY_INTEGER
                           ? reply->element[3]->integer
                           : 0;
        if (ldg_gateway_ratelimit_verdict(req, &e->rl, mc, hc)) {
            /* 429 answered: nothing queued */
        } else if (code == -1) {
            answer_503(req, "Service temporarily unavailable - queue full", 5);
        } else if (code == -2) {
            char detail[96];
            snprintf(detail, sizeof detail, "Daily quota exceeded: %lld/%" PRId64, v, e->quota);
            ldg_req_error(req, 402, detail);
        } else {
            if (req->conn)
                respond_accepted(e);
            publish_notes(e); /* the logs are queued even if the client went away */
        }
    }
    if (done) {
        enqueue_free(e);
        ldg_req_unref(req);
    }
}

static int send_script(struct enqueue *e, bool eval)
{
    struct ldg_req *req = e->req;
    const char *argv[3 + 5 + 7];
    size_t argl[3 + 5 + 7];
    int i = 0;
#define ARG(s, l) (argv[i] = (s), argl[i] = (l), i++)
    ldg_redis_script_head(&G.enqueue, eval, argv, argl);
    i = 2;
    ARG("5", 1u);
    ARG(e->depth_key, strlen(e->depth_key));
    ARG(e->usage_key, strlen(e->usage_key));
    ARG(G.cfg->stream, strlen(G.cfg->stream));
    ARG(e->rl.min_key, strlen(e->rl.min_key));
    ARG(e->rl.hour_key, strlen(e->rl.hour_key));
    ARG(e->n_s, strlen(e->n_s));
    ARG(e->max_s, strlen(e->max_s));
    ARG(e->quota_s, strlen(e->quota_s));
    ARG(e->pid, strlen(e->pid));
    ARG(ldg_buf_head(&e->mp), ldg_buf_size(&e->mp));
    ARG(e->min_s, strlen(e->min_s));
    ARG(e->hour_s, strlen(e->hour_s));
#undef ARG
    return ldg_redis_commandargv(req->w->redis, on_enqueued, e, i, argv, argl);
}

/* Start the enqueue of e->accepted entries (> 0). Takes over e's buffers. */
static void enqueue_start(struct enqueue *e)
{
    struct ldg_req *req = e->req;
    time_t t = (time_t)(ldg_wall_us() / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(e->depth_key, sizeof e->depth_key, "queue_depth:%" PRId64, e->project_id);
    snprintf(e->usage_key, sizeof e->usage_key, "usage:%" PRId64 ":%04d%02d%02d", e->project_id,
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    ldg_str_i64(e->pid, e->project_id);
    ldg_str_i64(e->n_s, (int64_t)e->accepted);
    ldg_str_i64(e->max_s, G.cfg->queue_max_depth);
    ldg_str_i64(e->quota_s, e->quota);
    ldg_gateway_ratelimit_keys(req, &e->rl);
    ldg_str_i64(e->min_s, e->rl.min_limit);
    ldg_str_i64(e->hour_s, e->rl.hour_limit);
    if (!ldg_redis_connected(req->w->redis)) {
        enqueue_free(e);
        answer_503(req, "Service temporarily unavailable", 1);
        return;
    }
    ldg_req_ref(req);
    int rc = send_script(e, false);
    if (rc < 0) {
        ldg_req_unref(req);
        enqueue_free(e);
        answer_503(req, "Service temporarily unavailable", 1);
    }
}

static struct enqueue *enqueue_new(struct ldg_req *req, const struct ldg_principal *p, size_t max_logs,
                                   bool batch)
{
    struct enqueue *e = ldg_arena_alloc(&req->arena, sizeof *e);
    memset(e, 0, sizeof *e);
    e->req = req;
    e->project_id = p->project_id;
    e->quota = p->daily_quota;
    e->batch = batch;
    ldg_buf_init(&e->errors);
    ldg_buf_init(&e->mp);
    ldg_buf_init(&e->notes);
    e->note_off = ldg_arena_alloc(&req->arena, (max_logs + 1) * sizeof *e->note_off);
    e->note_off[0] = 0;
    return e;
}

/* Validate one log object; on success encode it into e. Returns 0 or -EINVAL with err filled. */
static int add_log(struct enqueue *e, const cJSON *obj, int64_t now_us, char *err, size_t errlen)
{
    struct ldg_log l;
    int rc = ldg_logentry_parse(obj, e->project_id, now_us, &e->req->arena, &l, err, errlen);
    if (rc < 0)
        return rc;
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
    struct body_tree tree;
    cJSON *root = body_object(req, &tree);
    if (!root)
        return;
    struct enqueue *e = enqueue_new(req, p, 1, false);
    char err[512], detail[600];
    int rc = add_log(e, root, ldg_wall_us(), err, sizeof err);
    ldg_arena_free(&tree.arena); /* the JSON tree */
    if (rc < 0) {
        enqueue_free(e);
        snprintf(detail, sizeof detail, "Invalid log entry: %s", err);
        answer_early_error(req, 400, detail);
        return;
    }
    enqueue_start(e);
}

static void handle_batch(struct ldg_req *req)
{
    const struct ldg_principal *p = api_key_principal(req);
    if (!p)
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
        log_redis_problem(req, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "queue depth read");
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
    if (!ldg_redis_connected(req->w->redis) ||
        ldg_redis_commandargv(req->w->redis, on_depth, req, 2, argv, NULL) < 0) {
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
    ldg_redis_script_init(&G.enqueue, enqueue_lua);
    return 0;
}

static void add_route(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                      unsigned flags, size_t max_body)
{
    struct ldg_route_opts o = {.flags = flags, .max_body_bytes = max_body};
    int rc = ldg_router_add(r, method, pattern, fn, &o);
    LDG_ASSERT(rc == 0);
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
}

const struct ldg_role ldg_role_ingest = {
    .name = "ingest",
    .keys = ldg_ingest_cfg_keys,
    .cfg_size = sizeof(struct ldg_ingest_cfg),
    .validate = ingest_validate,
    .init_global = ingest_init_global,
    .routes = ingest_routes,
};
