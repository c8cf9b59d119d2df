/*
 * tail.c: the live tail, GET /api/v1/logs/tail (docs/tail.md): a Server-Sent Events stream of one
 * project's logs as the storage role commits them, filtered by the search language (q), level and
 * log_type. It is the second kind of stream of the notifications role and shares its hub
 * (hub.h): credentials, the per-account cap, the loop's pub/sub connection, heartbeats, pings and
 * the drain.
 *
 *   handler -> q parsed and compiled (400 before any stream), level/log_type (422), project
 *              access (API key: its own; session: one auth-database read)
 *           -> lease (the account's stream cap, shared with notification streams) -> 429 | start
 *   start   -> channel tail:{p<id>} subscribed (reference-counted per loop), the stream's member
 *              added to tail:viewers:{p<id>} (so storage publishes), head + `connected`
 *   live    -> each published log: filter, then the stream's token bucket and its send buffer
 *              bound; a log failing either is counted, and the count goes out as `dropped` at
 *              most once a second (from the hub's tick)
 *   end     -> as any stream of the hub; the viewer member is removed (or expires).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth/principal.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "db/redis.h"
#include "http/chunk.h"
#include "http/conn.h"
#include "http/request.h"
#include "notify/tailmsg.h"
#include "query/qeval.h"
#include "query/qlang.h"
#include "roles/notify/hub.h"

#define G ldg__notify
#define DROPPED_EVERY_MS 1000 /* `dropped` events at most this often per stream */
#define FORBIDDEN_TEXT "You don't have permission to access this project"

static const char *const levels[] = {"debug", "info", "warning", "error", "critical", NULL};
static const char *const log_types[] = {"console",  "logger",   "exception", "network",
                                        "database", "endpoint", "custom",    NULL};

/* Parameters checked by the handler, carried to the start (request arena). */
struct ldg__tail_setup {
    int64_t project_id;
    const char *q; /* NULL: no query */
    size_t qn;
    unsigned levels, types; /* bit i: levels[i] / log_types[i]; 0 = any */
};

struct tproj {
    struct ldg_list_node node; /* on tails->projects[bucket] */
    int64_t id;
    struct ldg_list tails; /* of ldg__tail.node; the channel is subscribed while non-empty */
};

struct ldg__tail {
    struct client *cl;         /* borrowed: the owning stream */
    struct ldg_list_node node; /* on proj->tails */
    struct ldg_list_node all;  /* on tails->all */
    struct tproj *proj;
    struct ldg_qeval *q; /* owned; NULL = every log */
    unsigned levels, types;
    double tokens;
    uint64_t refill_ms;   /* loop time of the last refill */
    uint64_t dropped;     /* not reported yet */
    uint64_t reported_ms; /* loop time of the last `dropped` event */
};

struct ldg__tail_hub {
    struct ldg_list projects[NBUCKETS];
    struct ldg_list all; /* of ldg__tail.all */
};

void ldg__tail_hub_init(struct hub *h)
{
    h->tails = ldg_calloc(1, sizeof *h->tails);
    for (size_t i = 0; i < NBUCKETS; i++)
        ldg_list_init(&h->tails->projects[i]);
    ldg_list_init(&h->tails->all);
}

size_t ldg__tail_count(const struct hub *h)
{
    return h->tails ? h->tails->all.count : 0;
}

void ldg__tail_hub_free(struct hub *h)
{
    free(h->tails);
    h->tails = NULL;
}

static struct tproj *tproj_find(struct hub *h, int64_t id)
{
    struct ldg_list *l = &h->tails->projects[ldg__notify_bucket(id)];
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(l, it, tmp)
    {
        struct tproj *p = ldg_container_of(it, struct tproj, node);
        if (p->id == id)
            return p;
    }
    return NULL;
}

static void on_fire_and_forget(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud;
}

/* ---- the viewer set (what storage reads to decide whether to publish) -------------------------- */

static void viewer_add(struct hub *h, int64_t pid, uint64_t seq)
{
    char key[LDG_TAILMSG_NAME_MAX], member[64], exp[24], ttl[24];
    ldg_tailmsg_viewers_key(key, sizeof key, pid);
    ldg__notify_lease_member(member, sizeof member, h->w->id, seq);
    snprintf(exp, sizeof exp, "%" PRIu64, ldg_wall_ms() + (uint64_t)G.cfg->stream_lease_ms);
    snprintf(ttl, sizeof ttl, "%" PRId64, G.cfg->stream_lease_ms * 2);
    const char *za[] = {"ZADD", key, exp, member};
    const char *pe[] = {"PEXPIRE", key, ttl};
    struct ldg_redis *r = ldg_worker_redis_for(h->w, pid); /* the viewer set is on the project's shard */
    if (!r || ldg_redis_commandargv(r, on_fire_and_forget, NULL, 4, za, NULL) < 0 ||
        ldg_redis_commandargv(r, on_fire_and_forget, NULL, 3, pe, NULL) < 0)
        ldg_log_warn(NULL, "tail: viewer of project=%" PRId64 " not registered (renewed later)", pid);
}

static void viewer_remove(struct hub *h, int64_t pid, uint64_t seq)
{
    char key[LDG_TAILMSG_NAME_MAX], member[64];
    ldg_tailmsg_viewers_key(key, sizeof key, pid);
    ldg__notify_lease_member(member, sizeof member, h->w->id, seq);
    const char *argv[] = {"ZREM", key, member};
    struct ldg_redis *r = ldg_worker_redis_for(h->w, pid);
    if (!r || ldg_redis_commandargv(r, on_fire_and_forget, NULL, 3, argv, NULL) < 0)
        ldg_log_debug(NULL, "tail: viewer removal not sent (it expires)");
}

void ldg__tail_renew(struct hub *h)
{
    char key[LDG_TAILMSG_NAME_MAX];
    struct ldg__notify_renewal r;
    ldg__notify_renewal_begin(&r, h, "tail: viewer");
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&h->tails->projects[b], it, tmp)
        {
            struct tproj *p = ldg_container_of(it, struct tproj, node);
            ldg_tailmsg_viewers_key(key, sizeof key, p->id);
            ldg__notify_renewal_key_project(&r, key, p->id);
            struct ldg_list_node *ti, *ttmp;
            ldg_list_foreach_safe(&p->tails, ti, ttmp)
            {
                struct ldg__tail *t = ldg_container_of(ti, struct ldg__tail, node);
                ldg__notify_renewal_add(&r, t->cl->seq, ti->next == &p->tails.head);
            }
            ldg__notify_renewal_expire(&r);
        }
    }
    ldg__notify_renewal_end(&r);
}

/* ---- delivery -------------------------------------------------------------------------------------- */

static unsigned bit_of(const cJSON *log, const char *name, const char *const *choices)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(log, name);
    if (!cJSON_IsString(v))
        return 0;
    for (unsigned i = 0; choices[i]; i++)
        if (strcmp(choices[i], v->valuestring) == 0)
            return 1u << i;
    return 0;
}

/* The stream's token bucket: rate tail_max_logs_per_s, one second's worth of burst. */
static bool take_token(struct ldg__tail *t, uint64_t now)
{
    double rate = (double)G.cfg->tail_max_logs_per_s;
    if (now > t->refill_ms) {
        t->tokens += (double)(now - t->refill_ms) * rate / 1000.0;
        if (t->tokens > rate)
            t->tokens = rate;
        t->refill_ms = now;
    }
    if (t->tokens < 1.0)
        return false;
    t->tokens -= 1.0;
    return true;
}

static bool filtered(const struct ldg__tail *t)
{
    return t->q || t->levels || t->types;
}

void ldg__tail_message(struct hub *h, int64_t pid, const char *msg, size_t n)
{
    struct tproj *p = tproj_find(h, pid);
    if (!p)
        return; /* unsubscribed meanwhile */
    uint64_t dropped;
    struct ldg_str logs, one;
    if (!ldg_tailmsg_open(msg, n, &dropped, &logs)) {
        ldg_log_warn(NULL, "tail: malformed message for project=%" PRId64 " ignored", pid);
        return;
    }
    struct ldg_list_node *it, *tmp;
    if (dropped) {
        ldg_list_foreach_safe(&p->tails, it, tmp)
        {
            ldg_container_of(it, struct ldg__tail, node)->dropped += dropped;
        }
    }
    bool any_filter = false;
    ldg_list_foreach_safe(&p->tails, it, tmp)
    {
        any_filter |= filtered(ldg_container_of(it, struct ldg__tail, node));
    }
    uint64_t now = ldg_worker_now(h->w);
    /* Half of the hard bound at most: heartbeats and `dropped` events still fit behind the logs. */
    size_t bound = (size_t)LDG_MIN(G.cfg->tail_send_buffer_bytes, G.cfg->send_buffer_bytes / 2);
    while (ldg_tailmsg_next(&logs, &one)) {
        cJSON *root = any_filter ? ldg_json_parse(one.p, one.n) : NULL;
        if (any_filter && !root) {
            ldg_log_warn(NULL, "tail: malformed log for project=%" PRId64 " ignored", pid);
            continue;
        }
        unsigned level = root ? bit_of(root, "level", levels) : 0;
        unsigned type = root ? bit_of(root, "log_type", log_types) : 0;
        struct ldg_qdoc doc;
        ldg_qdoc_init(&doc, root);
        struct ldg_chunk *ch = NULL;
        /* The list may change under a send (a failed send closes its stream only later, from the
         * connection's close callback), so _safe is enough. */
        ldg_list_foreach_safe(&p->tails, it, tmp)
        {
            struct ldg__tail *t = ldg_container_of(it, struct ldg__tail, node);
            if (!t->cl->conn)
                continue;
            if ((t->levels && !(t->levels & level)) || (t->types && !(t->types & type)))
                continue;
            if (t->q && !ldg_qeval_match(t->q, &doc))
                continue;
            if (!ch)
                ch = ldg__notify_event_chunk(h, NULL, 0, "log", one.p, one.n);
            /* An idle stream takes any one log (the hard bound, send_buffer_bytes, still applies). */
            size_t queued = ldg_conn_stream_queued(t->cl->conn);
            if ((queued && queued + ch->len > bound) || !take_token(t, now)) {
                t->dropped++;
                continue;
            }
            (void)ldg_conn_stream_send(t->cl->conn, ch); /* a failure closes the stream */
        }
        if (ch)
            ldg_chunk_unref(ch);
        ldg_qdoc_free(&doc);
        cJSON_Delete(root);
    }
}

static void report_dropped(struct ldg__tail *t, uint64_t now)
{
    struct hub *h = t->cl->hub;
    char data[64];
    int n = snprintf(data, sizeof data, "{\"dropped\": %" PRIu64 "}", t->dropped);
    struct ldg_chunk *ch = ldg__notify_event_chunk(h, NULL, 0, "dropped", data, (size_t)n);
    (void)ldg_conn_stream_send(t->cl->conn, ch);
    ldg_chunk_unref(ch);
    t->dropped = 0;
    t->reported_ms = now;
}

void ldg__tail_tick(struct hub *h, uint64_t now)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&h->tails->all, it, tmp)
    {
        struct ldg__tail *t = ldg_container_of(it, struct ldg__tail, all);
        if (t->dropped && t->cl->conn && now - t->reported_ms >= DROPPED_EVERY_MS)
            report_dropped(t, now);
    }
}

void ldg__tail_flush(struct client *cl)
{
    struct ldg__tail *t = cl->tail;
    if (!t)
        return;
    if (t->dropped && cl->conn)
        report_dropped(t, ldg_worker_now(cl->hub->w));
    /* Now, while the Redis connection is certainly up (the stream may close after it). */
    if (t->proj)
        viewer_remove(cl->hub, t->proj->id, cl->seq);
}

/* ---- stream lifecycle ------------------------------------------------------------------------------ */

void ldg__tail_unlink(struct client *cl)
{
    struct ldg__tail *t = cl->tail;
    struct hub *h = cl->hub;
    cl->tail = NULL;
    if (t->proj) {
        struct tproj *p = t->proj;
        ldg_list_remove(&p->tails, &t->node);
        if (!h->draining) /* else done by ldg__tail_flush */
            viewer_remove(h, p->id, cl->seq);
        if (ldg_list_empty(&p->tails)) {
            char ch[LDG_TAILMSG_NAME_MAX];
            ldg_tailmsg_channel(ch, sizeof ch, p->id);
            struct ldg_redis_sub *sub = ldg__notify_sub_for(h, p->id);
            if (sub && ldg_redis_sub_unsubscribe(sub, ch) < 0)
                ldg_log_debug(NULL, "tail: %s was not subscribed", ch);
            ldg_list_remove(&h->tails->projects[ldg__notify_bucket(p->id)], &p->node);
            free(p);
        }
    }
    ldg_list_remove(&h->tails->all, &t->all);
    ldg_qeval_free(t->q);
    free(t);
}

void ldg__tail_start(struct setup *st)
{
    struct ldg_req *req = st->req;
    struct hub *h = st->hub;
    const struct ldg__tail_setup *ts = st->tail;
    struct client *cl = ldg_calloc(1, sizeof *cl);
    cl->hub = h;
    cl->seq = st->seq;
    cl->state = CL_LIVE;
    ldg_list_init(&cl->pending);
    ldg_list_node_init(&cl->acct_node);
    ldg_list_node_init(&cl->hb_node);
    ldg_list_node_init(&cl->ping_node);
    h->nclients++;
    ldg__notify_client_creds(cl, req);

    struct ldg__tail *t = ldg_calloc(1, sizeof *t);
    t->cl = cl;
    cl->tail = t;
    t->levels = ts->levels;
    t->types = ts->types;
    t->tokens = (double)G.cfg->tail_max_logs_per_s;
    t->refill_ms = ldg_worker_now(h->w);
    ldg_list_push_back(&h->tails->all, &t->all);
    if (ts->q) {
        struct ldg_qnode *root;
        struct ldg_qerror err;
        /* checked by the handler: cannot fail now */
        int rc = ldg_qlang_parse(ts->q, ts->qn, &req->arena, &root, &err);
        LDG_ASSERT(rc == 0);
        rc = ldg_qeval_new(root, ts->q, ts->qn, &t->q, &err);
        LDG_ASSERT(rc == 0);
    }

    /* The channel first: a failure still answers an error, not a stream. */
    struct tproj *p = tproj_find(h, ts->project_id);
    if (!p) {
        char ch[LDG_TAILMSG_NAME_MAX];
        ldg_tailmsg_channel(ch, sizeof ch, ts->project_id);
        if (ldg_redis_sub_subscribe(ldg__notify_sub_for(h, ts->project_id), ch) < 0) {
            ldg_log_warn(NULL, "tail: cannot subscribe %s (channel limit)", ch);
            ldg__notify_client_unlink(cl);
            h->nclients--;
            free(cl);
            ldg__notify_lease_release(req->w, st->account_id, st->seq);
            ldg__notify_503(req, "Service temporarily unavailable");
            return;
        }
        p = ldg_calloc(1, sizeof *p);
        p->id = ts->project_id;
        ldg_list_init(&p->tails);
        ldg_list_push_back(&h->tails->projects[ldg__notify_bucket(p->id)], &p->node);
    }
    t->proj = p;
    ldg_list_push_back(&p->tails, &t->node);
    viewer_add(h, p->id, cl->seq);

    struct acct *a = ldg__notify_acct_find(h, st->account_id);
    if (!a)
        a = ldg__notify_acct_new(h, st->account_id);
    cl->acct = a;
    ldg_list_push_back(&a->clients, &cl->acct_node);

    ldg_req_add_header(req, "Cache-Control", "no-cache");
    ldg_req_add_header(req, "X-Accel-Buffering", "no");
    cl->conn = ldg_conn_stream_begin(req, "text/event-stream; charset=utf-8", (size_t)G.cfg->send_buffer_bytes,
                                     ldg__notify_on_stream_closed, cl);
    if (!cl->conn) {
        ldg__notify_client_unlink(cl);
        ldg__notify_client_maybe_free(cl);
        return;
    }

    /* connected: {"project_id": 12, "q": "..."} (Python's json.dumps spacing; q null when absent). */
    struct ldg_buf d;
    ldg_buf_init(&d);
    ldg_buf_printf(&d, "{\"project_id\": %" PRId64 ", \"q\": ", ts->project_id);
    if (ts->q) {
        ldg_buf_puts(&d, "\"");
        ldg_json_escape(&d, ts->q, ts->qn);
        ldg_buf_puts(&d, "\"}");
    } else {
        ldg_buf_puts(&d, "null}");
    }
    struct ldg_chunk *ch = ldg__notify_event_chunk(h, NULL, 0, "connected", ldg_buf_head(&d), ldg_buf_size(&d));
    ldg_buf_free(&d);
    (void)ldg_conn_stream_send(cl->conn, ch);
    ldg_chunk_unref(ch);

    uint64_t now = ldg_worker_now(h->w);
    cl->hb_due = now + (uint64_t)G.cfg->heartbeat_ms;
    ldg_list_push_back(&h->hb_list, &cl->hb_node);
    if (G.cfg->ping_ms) {
        cl->ping_due = now + (uint64_t)G.cfg->ping_ms;
        ldg_list_push_back(&h->ping_list, &cl->ping_node);
    }
}

/* ---- the handler ----------------------------------------------------------------------------------- */

/* FastAPI's 422 for one query parameter. */
static void answer_422(struct ldg_req *req, const char *name, const char *type, const char *msg,
                       const char *input)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "detail");
    ldg_json_arr_begin(&jw);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "type");
    ldg_json_str(&jw, type);
    ldg_json_key(&jw, "loc");
    ldg_json_arr_begin(&jw);
    ldg_json_str(&jw, "query");
    ldg_json_str(&jw, name);
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "msg");
    ldg_json_str(&jw, msg);
    ldg_json_key(&jw, "input");
    ldg_json_str(&jw, input); /* NULL writes null */
    ldg_json_obj_end(&jw);
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 422, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

static const char *param(struct ldg_req *req, const char *name, size_t *n)
{
    struct ldg_str v;
    if (!ldg_req_query(req, name, &v))
        return NULL;
    if (n)
        *n = v.n;
    return ldg_arena_strndup(&req->arena, v.p ? v.p : "", v.p ? v.n : 0);
}

/* level=error,critical: a set of known values. false after answering 422. */
static bool enum_param(struct ldg_req *req, const char *name, const char *const *choices, unsigned *out)
{
    *out = 0;
    const char *text = param(req, name, NULL);
    if (!text)
        return true;
    for (const char *s = text;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        unsigned bit = 0;
        for (unsigned i = 0; choices[i] && !bit; i++)
            if (strlen(choices[i]) == len && strncmp(choices[i], s, len) == 0)
                bit = 1u << i;
        if (!bit) {
            char msg[160];
            snprintf(msg, sizeof msg, "Input should be one of the %s values (comma-separated)", name);
            answer_422(req, name, "enum", msg, text);
            return false;
        }
        *out |= bit;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

static void lease_or_503(struct setup *st)
{
    struct ldg_req *req = st->req;
    if (ldg__notify_send_lease(st, false) < 0) {
        ldg__notify_503(req, "Service temporarily unavailable");
        ldg_req_unref(req);
    }
}

static void on_owner(PGresult *res, void *ud)
{
    struct setup *st = ud;
    struct ldg_req *req = st->req;
    if (ldg__notify_op_end(st->hub) || !req->conn) {
        ldg_req_unref(req);
        return;
    }
    if (!res) {
        ldg_log_warn(NULL, "tail: project ownership query failed (code=%d)", ldg_pg_failure()->code);
        ldg__notify_503(req, "Service temporarily unavailable");
    } else if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, "Project not found");
    } else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != st->account_id) {
        ldg_req_error(req, 403, FORBIDDEN_TEXT);
    } else if (st->hub->draining) {
        ldg__notify_503(req, "Service is shutting down");
    } else {
        lease_or_503(st);
        return;
    }
    ldg_req_unref(req);
}

void ldg__tail_handler(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg_principal(req);
    struct hub *h = ldg__notify_hub(req->w);
    if (!G.cfg->enabled) {
        ldg_req_error(req, 503, "Notifications are currently disabled");
        return;
    }
    if (!pr || !h || h->draining) {
        ldg__notify_503(req, "Service is shutting down");
        return;
    }
    struct ldg__tail_setup *ts = ldg_arena_alloc(&req->arena, sizeof *ts);
    memset(ts, 0, sizeof *ts);
    const char *ptext = param(req, "project_id", NULL);
    if (!ptext && pr->kind == LDG_PRINCIPAL_API_KEY) {
        ts->project_id = pr->project_id;
    } else if (!ptext) {
        answer_422(req, "project_id", "missing", "Field required", NULL);
        return;
    } else {
        char *end;
        errno = 0;
        long long v = strtoll(ptext, &end, 10);
        if (!*ptext || *end || errno || v < 1) {
            answer_422(req, "project_id", "int_parsing",
                       "Input should be a valid integer, unable to parse string as an integer", ptext);
            return;
        }
        ts->project_id = v;
    }
    size_t qn = 0;
    const char *q = param(req, "q", &qn);
    if (q && qn) {
        struct ldg_qnode *root;
        struct ldg_qerror err;
        struct ldg_qeval *ev = NULL;
        if (ldg_qlang_parse(q, qn, &req->arena, &root, &err) < 0 ||
            ldg_qeval_new(root, q, qn, &ev, &err) < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "Invalid query at position %zu: %s", err.pos, err.msg);
            ldg_req_error(req, 400, msg);
            return;
        }
        ldg_qeval_free(ev);
        ts->q = q;
        ts->qn = qn;
    }
    if (!enum_param(req, "level", levels, &ts->levels) || !enum_param(req, "log_type", log_types, &ts->types))
        return;
    if (pr->kind == LDG_PRINCIPAL_API_KEY && ts->project_id != pr->project_id) {
        ldg_req_error(req, 403, FORBIDDEN_TEXT);
        return;
    }
    if (!ldg_redis_connected(req->w->redis)) {
        ldg__notify_503(req, "Service temporarily unavailable");
        return;
    }
    struct setup *st = ldg_arena_alloc(&req->arena, sizeof *st);
    memset(st, 0, sizeof *st);
    st->req = req;
    st->hub = h;
    st->account_id = pr->account_id;
    st->seq = ++h->next_seq;
    st->tail = ts;
    ldg_req_ref(req);
    if (pr->kind == LDG_PRINCIPAL_API_KEY) {
        lease_or_503(st);
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, ts->project_id);
    const char *params[] = {id};
    int rc = ldg_pgpool_query_prepared(req->w->pg_auth, "tail_owner", "SELECT account_id FROM projects WHERE id = $1",
                                       1, params, on_owner, st);
    if (rc == 0) {
        h->ops++;
        return;
    }
    ldg_req_unref(req);
    ldg__notify_503(req, "Service temporarily unavailable");
}
