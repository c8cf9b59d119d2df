/*
 * notify.c: see notify.h. A stream's life:
 *
 *   handler -> session: one PostgreSQL query (the account's preferences and projects);
 *              API key: the account's preferences if the loop has them, else a batched read
 *              shared by every stream of the account arriving meanwhile (load_later)
 *           -> lease script (per-account stream cap, one Redis round trip) -> 429 | start
 *   start   -> subscribe the projects' channels -> head + `connected`
 *           -> resume? one XRANGE per project (pipelined); live events wait in `pending`
 *           -> LIVE: heartbeats and pings from the loop's tick, events from the fan-out
 *   end     -> peer closed, slow reader, drain (final `shutdown` event): the connection's close
 *              callback unlinks the client, drops its channel references and its lease.
 *
 * Duplicates and order: every (stream, project) pair remembers the last id it sent and skips
 * anything not after it, so replayed and live copies of one event go out once, in id order.
 */
#include "roles/notify/notify.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/rand.h>

#include "auth/keycache.h"
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
#include "http/router.h"
#include "notify/event.h"
#include "notify/prefs.h"
#include "notify/tailmsg.h"
#include "roles/notify/hub.h"
#include "roles/notify/keys.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_notify_cfg, f)
#define KB 1024LL

const struct ldg_cfg_key ldg_notify_cfg_keys[] = {
    {"enabled", LDG_CFG_BOOL, CFG(enabled), "on", 0, 0, NULL, 0,
     "Serve GET /api/v1/notifications/stream and publish notifications (off: 503)"},
    {"heartbeat_ms", LDG_CFG_MS, CFG(heartbeat_ms), "30000", 50, 3600000, NULL, 0,
     "Period of the `heartbeat` event on each stream"},
    {"ping_ms", LDG_CFG_MS, CFG(ping_ms), "15000", 0, 3600000, NULL, 0,
     "Period of the `: ping` comment on each stream; 0 = none"},
    {"max_streams_per_account", LDG_CFG_INT, CFG(max_streams_per_account), "5", 1, 1000000, NULL, 0,
     "Concurrent streams per account across every process sharing the Redis; one more gets 429"},
    {"stream_lease_ms", LDG_CFG_MS, CFG(stream_lease_ms), "60000", 1000, 3600000, NULL, 0,
     "A stream's slot in the per-account count expires unless renewed (frees slots of a crashed process)"},
    {"send_buffer_bytes", LDG_CFG_SIZE, CFG(send_buffer_bytes), "262144", 1024, 64 * KB *KB, NULL, 0,
     "Bytes queued for one stream beyond what the kernel took; more disconnects the slow reader"},
    {"replay_events", LDG_CFG_INT, CFG(replay_events), "500", 0, 100000, NULL, 0,
     "Notifications kept per project for Last-Event-ID resume (approximate cap), and replayed at most"},
    {"replay_window_ms", LDG_CFG_MS, CFG(replay_window_ms), "300000", 1000, 86400000, NULL, 0,
     "A resume replays notifications at most this old; an idle project's replay stream expires after it"},
    {"replay_pending_max", LDG_CFG_INT, CFG(replay_pending_max), "1024", 1, 1000000, NULL, 0,
     "Live notifications held for a stream while its resume replays; more disconnects it"},
    {"replay_max_bytes", LDG_CFG_SIZE, CFG(replay_max_bytes), "1048576", 1024, 1024 * KB *KB, NULL, 0,
     "Bytes of stored notifications one resume reads and holds at most (all its projects together); "
     "entries past it are not replayed"},
    {"shutdown_retry_ms", LDG_CFG_MS, CFG(shutdown_retry_ms), "1000", 0, 600000, NULL, 0,
     "Reconnection delay advised (SSE retry field) by the final event sent on shutdown"},
    {"tail_max_logs_per_s", LDG_CFG_INT, CFG(tail_max_logs_per_s), "200", 1, 1000000, NULL, 0,
     "Live tail: logs sent per stream and second (bursts up to one second's worth); the excess is counted "
     "and reported by a `dropped` event"},
    {"tail_send_buffer_bytes", LDG_CFG_SIZE, CFG(tail_send_buffer_bytes), "131072", 1024, 64 * KB *KB, NULL,
     0,
     "Live tail: bytes queued for a stream past which new logs are dropped (and counted) instead of sent; "
     "at most half of send_buffer_bytes is used"},
    {0},
};

#define LOAD_BATCH 500 /* accounts per batched preferences read */

/*
 * KEYS[1] the account's lease set. ARGV: now ms, max, expiry ms, member, key ttl ms.
 * Returns 1 (slot taken) or 0 (the account is at its cap).
 */
static const char lease_lua[] = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
                                "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end\n"
                                "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])\n"
                                "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
                                "return 1\n";

struct ldg__notify_global ldg__notify = {.index = -1};
#define G ldg__notify

static uv_once_t scripts_once = UV_ONCE_INIT;

static void init_scripts(void)
{
    ldg_redis_script_init(&G.lease, lease_lua);
}

/* ---- per-loop state ------------------------------------------------------------------------------ */

static void hub_free(struct hub *h);

/* Every callback counted in `ops` calls this first (or last, see on_xrange); true when the hub is
 * dead: the callback then only releases what it holds. */
bool ldg__notify_op_end(struct hub *h)
{
    LDG_ASSERT(h->ops > 0);
    h->ops--;
    if (!h->dead)
        return false;
    if (h->ops == 0)
        hub_free(h);
    return true;
}

struct hub *ldg__notify_hub(struct ldg_worker *w)
{
    return G.index >= 0 ? w->role_state[G.index] : NULL;
}

size_t ldg__notify_bucket(int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 54) & (NBUCKETS - 1);
}

static struct proj *proj_find(struct hub *h, int64_t id)
{
    struct ldg_list *l = &h->projects[ldg__notify_bucket(id)];
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(l, it, tmp)
    {
        struct proj *p = ldg_container_of(it, struct proj, node);
        if (p->id == id)
            return p;
    }
    return NULL;
}

struct acct *ldg__notify_acct_find(struct hub *h, int64_t id)
{
    struct ldg_list *l = &h->accounts[ldg__notify_bucket(id)];
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(l, it, tmp)
    {
        struct acct *a = ldg_container_of(it, struct acct, node);
        if (a->id == id)
            return a;
    }
    return NULL;
}

struct acct *ldg__notify_acct_new(struct hub *h, int64_t id)
{
    struct acct *a = ldg_calloc(1, sizeof *a);
    a->id = id;
    ldg_list_init(&a->clients);
    ldg_list_init(&a->waiters);
    ldg_list_node_init(&a->load_node);
    ldg_prefs_init(&a->prefs);
    ldg_list_push_back(&h->accounts[ldg__notify_bucket(id)], &a->node);
    return a;
}

/* An account leaves the loop once nothing refers to it (a read in flight finds it by id). */
void ldg__notify_acct_maybe_free(struct hub *h, struct acct *a)
{
    if (!ldg_list_empty(&a->clients) || !ldg_list_empty(&a->waiters) || a->reloading || a->leasing)
        return;
    ldg_list_remove(&h->accounts[ldg__notify_bucket(a->id)], &a->node);
    ldg_prefs_free(&a->prefs);
    free(a);
}

void ldg__notify_channel(char *out, size_t cap, const char *prefix, int64_t pid)
{
    snprintf(out, cap, "%s%" PRId64, prefix, pid);
}

/* ---- chunks -------------------------------------------------------------------------------------- */

struct ldg_chunk *ldg__notify_event_chunk(struct hub *h, const char *id, size_t idlen, const char *name,
                                          const char *data, size_t n)
{
    ldg_buf_reset(&h->scratch);
    ldg_event_format(&h->scratch, id, idlen, name, data, n);
    return ldg_chunk_new(ldg_buf_head(&h->scratch), ldg_buf_size(&h->scratch));
}

static struct ldg_chunk *timestamp_chunk(struct hub *h, const char *name)
{
    char ts[40], data[64];
    ldg_event_time(ldg_wall_us(), true, ts);
    int n = snprintf(data, sizeof data, "{\"timestamp\": \"%s\"}", ts);
    return ldg__notify_event_chunk(h, NULL, 0, name, data, (size_t)n);
}

/* ---- leases (per-account stream cap) ---------------------------------------------------------- */

static void lease_key(char *out, size_t cap, int64_t account_id)
{
    snprintf(out, cap, LEASE_PREFIX "%" PRId64, account_id);
}

void ldg__notify_lease_member(char *out, size_t cap, unsigned worker, uint64_t seq)
{
    snprintf(out, cap, "%s:%u:%" PRIu64, G.instance, worker, seq);
}

static void on_fire_and_forget(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud;
}

void ldg__notify_lease_release(struct ldg_worker *w, int64_t account_id, uint64_t seq)
{
    char key[64], member[64];
    lease_key(key, sizeof key, account_id);
    ldg__notify_lease_member(member, sizeof member, w->id, seq);
    const char *argv[] = {"ZREM", key, member};
    if (ldg_redis_commandargv(w->redis, on_fire_and_forget, NULL, 3, argv, NULL) < 0)
        ldg_log_debug(NULL, "notifications: lease release not sent (it expires)");
}

void ldg__notify_renewal_begin(struct ldg__notify_renewal *r, struct hub *h, const char *what)
{
    r->h = h;
    r->what = what;
    snprintf(r->exp, sizeof r->exp, "%" PRIu64, ldg_wall_ms() + (uint64_t)G.cfg->stream_lease_ms);
    snprintf(r->ttl, sizeof r->ttl, "%" PRId64, G.cfg->stream_lease_ms * 2);
    r->members = ldg_malloc(LDG__NOTIFY_RENEW_BATCH * sizeof *r->members);
    r->argc = 2;
}

void ldg__notify_renewal_key_project(struct ldg__notify_renewal *r, const char *key, int64_t project_id)
{
    ldg__notify_renewal_key(r, key);
    r->redis = ldg_worker_redis_for(r->h->w, project_id);
}

void ldg__notify_renewal_key(struct ldg__notify_renewal *r, const char *key)
{
    r->redis = r->h->w->redis;
    r->argv[0] = "ZADD";
    r->argv[1] = key;
    r->argc = 2;
}

void ldg__notify_renewal_add(struct ldg__notify_renewal *r, uint64_t seq, bool last)
{
    size_t k = (size_t)(r->argc - 2) / 2;
    ldg__notify_lease_member(r->members[k], sizeof r->members[k], r->h->w->id, seq);
    r->argv[r->argc++] = r->exp;
    r->argv[r->argc++] = r->members[k++];
    if (k == LDG__NOTIFY_RENEW_BATCH || last) {
        if (!r->redis ||
            ldg_redis_commandargv(r->redis, on_fire_and_forget, NULL, r->argc, r->argv, NULL) < 0)
            ldg_log_debug(NULL, "%s renewal not sent", r->what);
        r->argc = 2;
    }
}

void ldg__notify_renewal_expire(struct ldg__notify_renewal *r)
{
    const char *pe[] = {"PEXPIRE", r->argv[1], r->ttl};
    if (!r->redis || ldg_redis_commandargv(r->redis, on_fire_and_forget, NULL, 3, pe, NULL) < 0)
        ldg_log_debug(NULL, "%s key expiry not sent", r->what);
}

void ldg__notify_renewal_end(struct ldg__notify_renewal *r)
{
    free(r->members);
    r->members = NULL;
}

/* Renew every lease of the loop: one ZADD per account (LDG__NOTIFY_RENEW_BATCH members at most each). */
static void on_renew(uv_timer_t *t)
{
    struct hub *h = t->data;
    char key[64];
    struct ldg__notify_renewal r;
    ldg__notify_renewal_begin(&r, h, "notifications: lease");
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&h->accounts[b], it, tmp)
        {
            struct acct *a = ldg_container_of(it, struct acct, node);
            lease_key(key, sizeof key, a->id);
            ldg__notify_renewal_key(&r, key);
            struct ldg_list_node *ci, *ctmp;
            ldg_list_foreach_safe(&a->clients, ci, ctmp)
            {
                struct client *cl = ldg_container_of(ci, struct client, acct_node);
                ldg__notify_renewal_add(&r, cl->seq, ci->next == &a->clients.head);
            }
            ldg__notify_renewal_expire(&r);
        }
    }
    ldg__notify_renewal_end(&r);
    ldg__tail_renew(h);
}

/* ---- preferences --------------------------------------------------------------------------------- */

struct reload {
    struct hub *hub;
    int64_t account_id;
};

static void prefs_reload(struct hub *h, struct acct *a);
static void flush_waiters(struct hub *h, struct acct *a, int status);

static void on_prefs_row(PGresult *res, void *ud)
{
    struct reload *job = ud;
    struct hub *h = job->hub;
    int64_t account_id = job->account_id;
    free(job);
    if (ldg__notify_op_end(h))
        return;
    struct acct *a = ldg__notify_acct_find(h, account_id);
    if (!a)
        return;
    a->reloading = false;
    int status = 0;
    if (!res) {
        ldg_log_warn(NULL, "notifications: preferences of account=%" PRId64 " not read (database)", a->id);
        status = 503;
    } else if (PQntuples(res) != 1) {
        status = 404;
    } else {
        if (!PQgetisnull(res, 0, 0))
            (void)ldg_prefs_parse(&a->prefs, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        a->memo_seq = 0;
        a->loaded = true;
    }
    flush_waiters(h, a, status);
    if (a->reload_again && !h->draining) {
        a->reload_again = false;
        prefs_reload(h, a);
    }
    ldg__notify_acct_maybe_free(h, a);
}

static void prefs_reload(struct hub *h, struct acct *a)
{
    if (a->reloading) {
        a->reload_again = true; /* the change may have landed after our read started */
        return;
    }
    struct reload *job = ldg_malloc(sizeof *job);
    job->hub = h;
    job->account_id = a->id;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, a->id);
    const char *params[] = {id};
    int rc = ldg_pgpool_query_prepared(h->w->pg_auth, "notify_prefs",
                                       "SELECT notification_preferences::text FROM accounts WHERE id = $1", 1,
                                       params, on_prefs_row, job);
    if (rc == 0)
        h->ops++;
    if (rc < 0) {
        free(job);
        ldg_log_warn(NULL, "notifications: preferences of account=%" PRId64 " not read (%s)", a->id,
                     strerror(-rc));
        flush_waiters(h, a, 503);
        return;
    }
    a->reloading = true;
}

/*
 * First reads are batched: a burst of new streams (a deploy, a gateway restart) brings thousands
 * of accounts at once, and one query per account would queue them all behind the pool's few
 * connections. Accounts needing a first read wait on load_queue; a 0 ms timer (the next loop
 * iteration) sends one query per LOAD_BATCH accounts.
 */
struct load {
    struct hub *hub;
    int64_t *ids; /* owned */
    size_t n;
};

static void on_load_rows(PGresult *res, void *ud)
{
    struct load *job = ud;
    struct hub *h = job->hub;
    if (ldg__notify_op_end(h)) {
        free(job->ids);
        free(job);
        return;
    }
    int rows = res ? PQntuples(res) : 0;
    if (!res)
        ldg_log_warn(NULL, "notifications: preferences of %zu accounts not read (database)", job->n);
    for (int i = 0; i < rows; i++) {
        struct acct *a = ldg__notify_acct_find(h, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        if (!a || !a->reloading) /* gone, or (after a failed send) read elsewhere */
            continue;
        if (!PQgetisnull(res, i, 1))
            (void)ldg_prefs_parse(&a->prefs, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
        a->memo_seq = 0;
        a->loaded = true;
    }
    for (size_t i = 0; i < job->n; i++) {
        struct acct *a = ldg__notify_acct_find(h, job->ids[i]);
        if (!a || !a->reloading)
            continue;
        a->reloading = false;
        flush_waiters(h, a, a->loaded ? 0 : res ? 404 : 503);
        if (a->reload_again && !h->draining) {
            a->reload_again = false;
            prefs_reload(h, a);
        }
        ldg__notify_acct_maybe_free(h, a);
    }
    free(job->ids);
    free(job);
}

static void on_loader(uv_timer_t *t)
{
    struct hub *h = t->data;
    while (!ldg_list_empty(&h->load_queue)) {
        struct load *job = ldg_malloc(sizeof *job);
        job->hub = h;
        job->ids = ldg_malloc(LOAD_BATCH * sizeof *job->ids);
        job->n = 0;
        struct ldg_buf arr;
        ldg_buf_init(&arr);
        ldg_buf_put(&arr, "{", 1);
        struct ldg_list_node *n;
        while (job->n < LOAD_BATCH && (n = ldg_list_pop_front(&h->load_queue))) {
            struct acct *a = ldg_container_of(n, struct acct, load_node);
            ldg_list_node_init(&a->load_node);
            ldg_buf_printf(&arr, "%s%" PRId64, job->n ? "," : "", a->id);
            job->ids[job->n++] = a->id;
        }
        ldg_buf_put(&arr, "}", 2); /* with the NUL */
        const char *params[] = {ldg_buf_head(&arr)};
        int rc = ldg_pgpool_query_prepared(h->w->pg_auth, "notify_prefs_many",
                                           "SELECT id, notification_preferences::text FROM accounts "
                                           "WHERE id = ANY($1::bigint[])",
                                           1, params, on_load_rows, job);
        ldg_buf_free(&arr);
        if (rc == 0) {
            h->ops++;
            continue;
        }
        ldg_log_warn(NULL, "notifications: preferences of %zu accounts not read (%s)", job->n, strerror(-rc));
        for (size_t i = 0; i < job->n; i++) {
            struct acct *a = ldg__notify_acct_find(h, job->ids[i]);
            if (!a)
                continue;
            a->reloading = false;
            flush_waiters(h, a, 503);
            ldg__notify_acct_maybe_free(h, a);
        }
        free(job->ids);
        free(job);
    }
}

/* Queue a read of a's preferences (its waiters are answered when it ends). While one is queued
 * or in flight, nothing more is done, unless `again` (a change may have landed after that read
 * started): then one more read follows it. */
static void load_later(struct hub *h, struct acct *a, bool again)
{
    if (h->draining)
        return;
    if (a->reloading) {
        a->reload_again |= again;
        return;
    }
    a->reloading = true;
    ldg_list_push_back(&h->load_queue, &a->load_node);
    if (!uv_is_active((uv_handle_t *)&h->loader))
        uv_timer_start(&h->loader, on_loader, 0, 0);
}

static void reload_all(struct hub *h)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&h->accounts[b], it, tmp)
        {
            load_later(h, ldg_container_of(it, struct acct, node), true);
        }
    }
}

/* ---- delivery ------------------------------------------------------------------------------------ */

static bool verdict(struct hub *h, struct acct *a, int64_t pid, struct ldg_str level, struct ldg_str type)
{
    if (a->memo_seq != h->msg_seq) {
        a->memo_seq = h->msg_seq;
        a->memo_ok = ldg_prefs_allow(&a->prefs, pid, level.p, level.n, type.p, type.n);
    }
    return a->memo_ok;
}

/* Send ch to m's stream unless it already has this id (or a later one) for the project. */
void ldg__notify_deliver(struct member *m, const struct ldg_event_id *id, struct ldg_chunk *ch, bool ok)
{
    struct client *cl = m->cl;
    if (!cl->conn || ldg_event_id_cmp(id, &m->last) <= 0)
        return;
    m->last = *id;
    if (ok)
        (void)ldg_conn_stream_send(cl->conn, ch); /* a failure closes the stream; its callback cleans up */
}

static void client_close_stream(struct client *cl)
{
    /* Closing a stream whose ending is already on its way is a no-op. */
    if (cl->conn)
        ldg_conn_stream_end(cl->conn, NULL);
}

static void hold(struct client *cl, struct member *m, const struct ldg_event_id *id, struct ldg_chunk *ch,
                 bool ok)
{
    if (cl->pending.count >= (size_t)G.cfg->replay_pending_max) {
        ldg_log_info(NULL, "notifications: stream too far behind while resuming, closing");
        client_close_stream(cl);
        return;
    }
    struct pend *p = ldg_malloc(sizeof *p);
    p->m = m;
    p->id = *id;
    p->ch = ldg_chunk_ref(ch);
    p->ok = ok;
    ldg_list_push_back(&cl->pending, &p->node);
}

bool ldg__notify_json_string_member(const cJSON *root, const char *name, struct ldg_str *out)
{
    const cJSON *v = ldg_json_member(root, name);
    if (!cJSON_IsString(v)) {
        *out = ldg_str_make("", 0);
        return false;
    }
    *out = ldg_str_make(v->valuestring, strlen(v->valuestring));
    return true;
}

static void on_event_message(struct hub *h, int64_t pid, const char *msg, size_t n)
{
    struct proj *p = proj_find(h, pid);
    if (!p)
        return; /* unsubscribed meanwhile */
    struct ldg_str idtext, json;
    struct ldg_event_id id;
    if (!ldg_event_split(msg, n, &idtext, &id, &json)) {
        ldg_log_warn(NULL, "notifications: malformed message on " EVENTS_PREFIX "%" PRId64 " ignored", pid);
        return;
    }
    struct ldg_str name, data;
    if (!ldg_event_note(json.p, json.n, &name, &data)) {
        ldg_log_warn(NULL, "notifications: malformed note on " EVENTS_PREFIX "%" PRId64 " ignored", pid);
        return;
    }
    bool is_log = json.p[0] == '{'; /* an error notification: the level and type lists filter it */
    cJSON *root = is_log ? ldg_json_parse(data.p, data.n) : NULL;
    struct ldg_str level, type;
    ldg__notify_json_string_member(root, "level", &level);
    ldg__notify_json_string_member(root, "log_type", &type);
    if (!is_log)
        level.p = NULL;
    h->msg_seq++;
    char ename[40];
    snprintf(ename, sizeof ename, "%.*s", (int)name.n, name.p);
    struct ldg_chunk *ch = ldg__notify_event_chunk(h, idtext.p, idtext.n, ename, data.p, data.n);
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&p->members, it, tmp)
    {
        struct member *m = ldg_container_of(it, struct member, node);
        bool ok = verdict(h, m->cl->acct, pid, level, type);
        if (m->cl->state == CL_REPLAYING)
            hold(m->cl, m, &id, ch, ok);
        else
            ldg__notify_deliver(m, &id, ch, ok);
    }
    ldg_chunk_unref(ch);
    cJSON_Delete(root);
}

/* ---- streams end with their credentials ------------------------------------------------------- */

void ldg__notify_client_creds(struct client *cl, const struct ldg_req *req)
{
    const struct ldg_principal *p = ldg_principal(req);
    if (!p)
        return;
    if (p->kind == LDG_PRINCIPAL_SESSION) {
        snprintf(cl->sid, sizeof cl->sid, "%s", p->sid);
        if (p->expires_at > 0) {
            cl->expires_wall_ms = (uint64_t)p->expires_at * 1000u;
            struct hub *h = cl->hub;
            if (!h->next_expiry_ms || cl->expires_wall_ms < h->next_expiry_ms)
                h->next_expiry_ms = cl->expires_wall_ms;
        }
    } else {
        snprintf(cl->key_digest, sizeof cl->key_digest, "%s", p->key_digest);
    }
}

/* End a stream whose credentials ended: one last event (`name`, with a timestamp), then the end
 * of the body. The client reconnects with fresh credentials, or is refused. */
static void end_stream_for(struct client *cl, const char *name)
{
    if (!cl->conn)
        return;
    struct ldg_chunk *ch = timestamp_chunk(cl->hub, name);
    ldg_conn_stream_end(cl->conn, ch);
    ldg_chunk_unref(ch);
}

/* Every stream (both kinds are on hb_list) opened with this session or key. */
static void end_for_credentials(struct hub *h, const char *sid, size_t sidlen, const char *digest,
                                size_t dlen)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&h->hb_list, it, tmp)
    {
        struct client *cl = ldg_container_of(it, struct client, hb_node);
        bool hit = sid ? (cl->sid[0] && strlen(cl->sid) == sidlen && memcmp(cl->sid, sid, sidlen) == 0)
                       : (cl->key_digest[0] && dlen == LDG_SHA256_HEX_LEN &&
                          memcmp(cl->key_digest, digest, dlen) == 0);
        if (hit) {
            ldg_log_info(NULL, "notifications: stream ended, its credentials were revoked");
            end_stream_for(cl, "credentials_revoked");
        }
    }
}

static void on_cred_checked(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct client *cl = ud;
    struct hub *h = cl->hub;
    cl->checks_due--;
    if (cl->conn && reply && !h->dead) {
        bool gone = cl->sid[0] ? (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
                               : (reply->type == REDIS_REPLY_STRING &&
                                  reply->len == sizeof LDG_KEYCACHE_TOMBSTONE - 1 &&
                                  memcmp(reply->str, LDG_KEYCACHE_TOMBSTONE, reply->len) == 0);
        if (gone) {
            ldg_log_info(NULL, "notifications: stream ended, its credentials were revoked while the "
                               "revocation channel was down");
            end_stream_for(cl, "credentials_revoked");
        }
    }
    ldg__notify_client_maybe_free(cl);
    (void)ldg__notify_op_end(h); /* last: the client (freed above at the latest) needed the hub */
}

/* The pub/sub connection was lost and is back: revocations published meanwhile were missed.
 * Ask Redis about every stream's credentials: a session whose key is gone, an API key whose
 * cache entry is the revocation tombstone, ends. */
static void recheck_credentials(struct hub *h)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&h->hb_list, it, tmp)
    {
        struct client *cl = ldg_container_of(it, struct client, hb_node);
        if (!cl->conn || (!cl->sid[0] && !cl->key_digest[0]))
            continue;
        char key[sizeof LDG_KEYCACHE_PREFIX + LDG_JWT_ID_MAX + LDG_SHA256_HEX_LEN + 16];
        if (cl->sid[0])
            snprintf(key, sizeof key, LDG_SESSION_PREFIX "%s", cl->sid);
        else
            snprintf(key, sizeof key, LDG_KEYCACHE_PREFIX "%s", cl->key_digest);
        const char *argv[] = {cl->sid[0] ? "EXISTS" : "GET", key};
        if (ldg_redis_commandargv(h->w->redis, on_cred_checked, cl, 2, argv, NULL) == 0) {
            cl->checks_due++;
            h->ops++;
        }
    }
}

/* Streams whose access token expired end; the next expiry is recomputed. */
static void expire_streams(struct hub *h, uint64_t wall)
{
    uint64_t next = 0;
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&h->hb_list, it, tmp)
    {
        struct client *cl = ldg_container_of(it, struct client, hb_node);
        if (!cl->expires_wall_ms || !cl->conn)
            continue;
        if (cl->expires_wall_ms <= wall) {
            cl->expires_wall_ms = 0;
            end_stream_for(cl, "credentials_expired");
        } else if (!next || cl->expires_wall_ms < next) {
            next = cl->expires_wall_ms;
        }
    }
    h->next_expiry_ms = next;
}

static void on_message(struct ldg_redis_sub *s, const char *channel, size_t chlen, const char *msg,
                       size_t msglen, void *ud)
{
    struct hub *h = ud;
    if (h->draining)
        return;
    int64_t tail_pid = ldg_tailmsg_channel_project(channel, chlen);
    if (tail_pid > 0) {
        ldg__tail_message(h, tail_pid, msg, msglen);
        return;
    }
    size_t plen = sizeof EVENTS_PREFIX - 1;
    char num[24];
    if (chlen > plen && memcmp(channel, EVENTS_PREFIX, plen) == 0 && chlen - plen < sizeof num) {
        memcpy(num, channel + plen, chlen - plen);
        num[chlen - plen] = 0;
        on_event_message(h, strtoll(num, NULL, 10), msg, msglen);
        return;
    }
    if (chlen == sizeof LDG_KEYCACHE_CHANNEL - 1 && memcmp(channel, LDG_KEYCACHE_CHANNEL, chlen) == 0) {
        end_for_credentials(h, NULL, 0, msg, msglen); /* a key revoked (or changed: reconnect) */
        return;
    }
    if (chlen == sizeof LDG_SESSION_REVOKED_CHANNEL - 1 &&
        memcmp(channel, LDG_SESSION_REVOKED_CHANNEL, chlen) == 0) {
        end_for_credentials(h, msg, msglen, NULL, 0);
        return;
    }
    if (chlen == sizeof PREFS_CHANNEL - 1 && memcmp(channel, PREFS_CHANNEL, chlen) == 0 &&
        msglen < sizeof num) {
        memcpy(num, msg, msglen);
        num[msglen] = 0;
        struct acct *a = ldg__notify_acct_find(h, strtoll(num, NULL, 10));
        if (a)
            prefs_reload(h, a);
    }
}

/* ---- heartbeats and pings ------------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    struct hub *h = t->data;
    uint64_t now = ldg_worker_now(h->w);
    /* Invalidations and notifications may have been missed while the pub/sub connection was
     * down: re-read the preferences now, and once it is back, replay to every live stream what
     * was published meanwhile. */
    uint64_t errs = 0;
    bool connected = true;
    for (unsigned i = 0; i < h->w->nredis; i++) {
        struct ldg_redis_sub *s = i ? h->shard_sub[i] : h->sub;
        errs += s ? ldg_redis_sub_errors(s) : 0;
        connected = connected && s && ldg_redis_sub_connected(s);
    }
    if (errs != h->sub_errors_seen) {
        h->sub_errors_seen = errs;
        if (!h->sub_lost_ms)
            h->sub_lost_ms = ldg_wall_ms();
        reload_all(h);
    }
    if (h->sub_lost_ms && connected) {
        recheck_credentials(h);
        ldg__notify_resume_all(h, h->sub_lost_ms);
        h->sub_lost_ms = 0;
    }
    struct ldg_chunk *hb = NULL, *ping = NULL;
    struct ldg_list_node *it;
    /* Both lists are ordered by due time: a client moves to the tail when served. */
    while ((it = ldg_list_first(&h->hb_list))) {
        struct client *cl = ldg_container_of(it, struct client, hb_node);
        if (cl->hb_due > now)
            break;
        if (!hb)
            hb = timestamp_chunk(h, "heartbeat");
        ldg_list_remove(&h->hb_list, it);
        cl->hb_due = now + (uint64_t)G.cfg->heartbeat_ms;
        ldg_list_push_back(&h->hb_list, it);
        if (cl->conn)
            (void)ldg_conn_stream_send(cl->conn, hb);
    }
    while ((it = ldg_list_first(&h->ping_list))) {
        struct client *cl = ldg_container_of(it, struct client, ping_node);
        if (cl->ping_due > now)
            break;
        if (!ping) {
            char ts[40], text[64];
            ldg_event_time(ldg_wall_us(), false, ts);
            snprintf(text, sizeof text, "ping - %s", ts);
            ldg_buf_reset(&h->scratch);
            ldg_event_comment(&h->scratch, text);
            ping = ldg_chunk_new(ldg_buf_head(&h->scratch), ldg_buf_size(&h->scratch));
        }
        ldg_list_remove(&h->ping_list, it);
        cl->ping_due = now + (uint64_t)G.cfg->ping_ms;
        ldg_list_push_back(&h->ping_list, it);
        if (cl->conn)
            (void)ldg_conn_stream_send(cl->conn, ping);
    }
    if (hb)
        ldg_chunk_unref(hb);
    if (ping)
        ldg_chunk_unref(ping);
    ldg__tail_tick(h, now);
    if (h->next_expiry_ms && ldg_wall_ms() >= h->next_expiry_ms)
        expire_streams(h, ldg_wall_ms());
}

static uint64_t tick_ms(void)
{
    uint64_t m = (uint64_t)G.cfg->heartbeat_ms;
    if (G.cfg->ping_ms && (uint64_t)G.cfg->ping_ms < m)
        m = (uint64_t)G.cfg->ping_ms;
    m /= 20; /* heartbeats and pings go out at most 5% late */
    return m < 10 ? 10 : m > 1000 ? 1000 : m;
}

/* ---- client lifecycle ---------------------------------------------------------------------------- */

void ldg__notify_free_replay(struct client *cl)
{
    for (size_t i = 0; i < cl->nreps; i++)
        free(cl->reps[i].json);
    free(cl->reps);
    cl->reps = NULL;
    cl->nreps = cl->reps_cap = 0;
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&cl->pending))) {
        struct pend *p = ldg_container_of(n, struct pend, node);
        ldg_chunk_unref(p->ch);
        free(p);
    }
}

/* Drop the client's channel and account references; free it unless replies are still due (the
 * last one frees it). */
void ldg__notify_client_unlink(struct client *cl)
{
    struct hub *h = cl->hub;
    if (cl->tail)
        ldg__tail_unlink(cl);
    for (size_t i = 0; i < cl->nmembers; i++) {
        struct member *m = &cl->members[i];
        struct proj *p = m->proj;
        if (!p)
            continue;
        ldg_list_remove(&p->members, &m->node);
        m->proj = NULL;
        if (ldg_list_empty(&p->members)) {
            char ch[64];
            ldg__notify_channel(ch, sizeof ch, EVENTS_PREFIX, p->id);
            struct ldg_redis_sub *sub = ldg__notify_sub_for(h, p->id);
            if (sub && ldg_redis_sub_unsubscribe(sub, ch) < 0)
                ldg_log_debug(NULL, "notifications: %s was not subscribed", ch);
            ldg_list_remove(&h->projects[ldg__notify_bucket(p->id)], &p->node);
            free(p);
        }
    }
    struct acct *a = cl->acct;
    if (a) {
        ldg_list_remove(&a->clients, &cl->acct_node);
        if (!h->draining)
            ldg__notify_lease_release(h->w, a->id, cl->seq);
        cl->acct = NULL;
        ldg__notify_acct_maybe_free(h, a);
    }
    if (ldg_list_node_linked(&cl->hb_node))
        ldg_list_remove(&h->hb_list, &cl->hb_node);
    if (ldg_list_node_linked(&cl->ping_node))
        ldg_list_remove(&h->ping_list, &cl->ping_node);
    ldg__notify_free_replay(cl);
}

void ldg__notify_client_maybe_free(struct client *cl)
{
    if (cl->conn || cl->replies_due || cl->checks_due)
        return;
    cl->hub->nclients--;
    free(cl);
}

void ldg__notify_on_stream_closed(struct ldg_conn *c, void *ud)
{
    struct client *cl = ud;
    cl->conn = NULL;
    ldg__notify_client_unlink(cl);
    ldg__notify_client_maybe_free(cl);
}

/* ---- the handler ----------------------------------------------------------------------------------- */

void ldg__notify_503(struct ldg_req *req, const char *detail)
{
    ldg_req_add_header(req, "Retry-After", "1");
    ldg_req_error(req, 503, detail);
}

static void start_stream(struct setup *st);
int ldg__notify_send_lease(struct setup *st, bool eval);

static void on_lease(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct setup *st = ud;
    struct ldg_req *req = st->req;
    struct hub *h = st->hub;
    if (ldg__notify_op_end(h)) {
        ldg_req_unref(req);
        return;
    }
    if (reply && !st->retried && ldg_redis_noscript(reply)) {
        st->retried = true;
        if (ldg__notify_send_lease(st, true) == 0)
            return;
        reply = NULL;
    }
    struct acct *a = h && st->leasing ? ldg__notify_acct_find(h, st->account_id) : NULL;
    if (a)
        a->leasing--;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        ldg_log_warn(NULL, "notifications: stream lease failed (%s)",
                     reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
        ldg__notify_503(req, "Service temporarily unavailable");
    } else if (reply->integer == 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "Too many %s streams for this account (limit %" PRId64 ")",
                 st->tail ? "live" : "notification", G.cfg->max_streams_per_account);
        ldg_req_add_header(req, "Retry-After", "5");
        ldg_req_error(req, 429, detail);
    } else if (!req->conn || !h || h->draining) {
        ldg__notify_lease_release(req->w, st->account_id, st->seq);
        if (req->conn)
            ldg__notify_503(req, "Service is shutting down");
    } else if (st->tail) {
        ldg__tail_start(st);
    } else {
        start_stream(st);
    }
    if (a && (a = ldg__notify_acct_find(h, st->account_id)) != NULL) /* start_stream may have dropped it */
        ldg__notify_acct_maybe_free(h, a);
    ldg_req_unref(req);
}

int ldg__notify_send_lease(struct setup *st, bool eval)
{
    struct ldg_req *req = st->req;
    char key[64], member[64], now[24], max[24], exp[24], ttl[24];
    uint64_t t = ldg_wall_ms();
    lease_key(key, sizeof key, st->account_id);
    ldg__notify_lease_member(member, sizeof member, req->w->id, st->seq);
    snprintf(now, sizeof now, "%" PRIu64, t);
    snprintf(max, sizeof max, "%" PRId64, G.cfg->max_streams_per_account);
    snprintf(exp, sizeof exp, "%" PRIu64, t + (uint64_t)G.cfg->stream_lease_ms);
    snprintf(ttl, sizeof ttl, "%" PRId64, G.cfg->stream_lease_ms * 2);
    const char *argv[9];
    size_t argl[9];
    ldg_redis_script_head(&G.lease, eval, argv, argl);
    const char *rest[] = {"1", key, now, max, exp, member, ttl};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(rest); i++) {
        argv[2 + i] = rest[i];
        argl[2 + i] = strlen(rest[i]);
    }
    int rc = ldg_redis_commandargv(req->w->redis, on_lease, st, 9, argv, argl);
    if (rc == 0)
        st->hub->ops++;
    return rc;
}

/* "{1,2,3}" (PostgreSQL array text) into the arena. */
static void parse_id_array(struct ldg_req *req, const char *s, int64_t **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    int64_t *ids = ldg_arena_alloc(&req->arena, cap * sizeof *ids);
    size_t k = 0;
    for (const char *p = s; *p && k < cap;) {
        if (*p >= '0' && *p <= '9') {
            char *end;
            ids[k++] = strtoll(p, &end, 10);
            p = end;
        } else {
            p++;
        }
    }
    *out = ids;
    *n = k;
}

static void on_setup_row(PGresult *res, void *ud)
{
    struct setup *st = ud;
    struct ldg_req *req = st->req;
    if (ldg__notify_op_end(st->hub) || !req->conn) {
        ldg_req_unref(req);
        return;
    }
    if (!res) {
        ldg_log_warn(NULL, "notifications: stream setup query failed (code=%d)", ldg_pg_failure()->code);
        ldg__notify_503(req, "Service temporarily unavailable");
        ldg_req_unref(req);
        return;
    }
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, "Account not found");
        ldg_req_unref(req);
        return;
    }
    st->have_prefs = true;
    if (!PQgetisnull(res, 0, 0))
        st->prefs = ldg_arena_strndup(&req->arena, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    const struct ldg_principal *p = ldg_principal(req);
    if (p->kind == LDG_PRINCIPAL_API_KEY) {
        st->projects = ldg_arena_alloc(&req->arena, sizeof *st->projects);
        st->projects[0] = p->project_id;
        st->nprojects = 1;
    } else {
        parse_id_array(req, PQgetvalue(res, 0, 1), &st->projects, &st->nprojects);
    }
    if (ldg__notify_send_lease(st, false) < 0) {
        ldg__notify_503(req, "Service temporarily unavailable");
        ldg_req_unref(req);
    }
}

/* The account's first read finished (status 0) or failed (404, 503): start or answer every
 * stream waiting for it. */
static void flush_waiters(struct hub *h, struct acct *a, int status)
{
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&a->waiters))) {
        struct setup *st = ldg_container_of(n, struct setup, wnode);
        struct ldg_req *req = st->req;
        if (!req->conn) {
            ldg_req_unref(req);
            continue;
        }
        if (status == 404)
            ldg_req_error(req, 404, "Account not found");
        else if (status || h->draining)
            ldg__notify_503(req,
                            h->draining ? "Service is shutting down" : "Service temporarily unavailable");
        if (status || h->draining) {
            ldg_req_unref(req);
            continue;
        }
        st->have_prefs = true; /* the account's, on the loop */
        st->leasing = true;
        a->leasing++;
        if (ldg__notify_send_lease(st, false) < 0) {
            st->leasing = false;
            a->leasing--;
            ldg__notify_503(req, "Service temporarily unavailable");
            ldg_req_unref(req);
        }
    }
}

static void stream_handler(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg_principal(req);
    struct hub *h = ldg__notify_hub(req->w);
    if (!G.cfg->enabled) {
        ldg_req_error(req, 503, "Notifications are currently disabled");
        return;
    }
    if (!p || !h || h->draining) {
        ldg__notify_503(req, "Service is shutting down");
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
    st->account_id = p->account_id;
    st->seq = ++h->next_seq;
    struct ldg_str last = ldg_req_header(req, "Last-Event-ID");
    if (last.n && ldg_event_id_parse(last.p, last.n, &st->last_id))
        st->resume = true;
    ldg_req_ref(req);
    if (p->kind == LDG_PRINCIPAL_API_KEY) {
        /* A key's project is known; the account's preferences are read once per loop (streams
         * arriving meanwhile wait for that read) and then kept current by invalidations. */
        st->projects = ldg_arena_alloc(&req->arena, sizeof *st->projects);
        st->projects[0] = p->project_id;
        st->nprojects = 1;
        struct acct *a = ldg__notify_acct_find(h, p->account_id);
        if (!a)
            a = ldg__notify_acct_new(h, p->account_id);
        ldg_list_push_back(&a->waiters, &st->wnode);
        if (a->loaded)
            flush_waiters(h, a, 0);
        else
            load_later(h, a, false); /* no-op while a read is queued or in flight */
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, p->account_id);
    const char *params[] = {id};
    int rc = ldg_pgpool_query_prepared(req->w->pg_auth, "notify_setup",
                                       "SELECT a.notification_preferences::text, "
                                       "ARRAY(SELECT id FROM projects WHERE account_id = a.id ORDER BY "
                                       "id)::text FROM accounts a WHERE a.id = $1",
                                       1, params, on_setup_row, st);
    if (rc == 0)
        h->ops++;
    if (rc < 0) {
        ldg_req_unref(req);
        ldg__notify_503(req, "Service temporarily unavailable");
    }
}

static void start_stream(struct setup *st)
{
    struct ldg_req *req = st->req;
    struct hub *h = ldg__notify_hub(req->w);
    struct client *cl = ldg_calloc(1, sizeof *cl + st->nprojects * sizeof cl->members[0]);
    cl->hub = h;
    cl->seq = st->seq;
    cl->state = CL_LIVE;
    ldg_list_init(&cl->pending);
    ldg_list_node_init(&cl->acct_node);
    ldg_list_node_init(&cl->hb_node);
    ldg_list_node_init(&cl->ping_node);
    h->nclients++;
    ldg__notify_client_creds(cl, req);

    /* Channels first: a failure still answers an error, not a stream. */
    size_t k = 0;
    for (size_t i = 0; i < st->nprojects; i++) {
        int64_t pid = st->projects[i];
        struct proj *p = proj_find(h, pid);
        if (!p) {
            char ch[64];
            ldg__notify_channel(ch, sizeof ch, EVENTS_PREFIX, pid);
            if (ldg_redis_sub_subscribe(ldg__notify_sub_for(h, pid), ch) < 0) {
                ldg_log_warn(NULL, "notifications: cannot subscribe %s (channel limit)", ch);
                ldg__notify_client_unlink(cl);
                h->nclients--;
                free(cl);
                ldg__notify_lease_release(req->w, st->account_id, st->seq);
                ldg__notify_503(req, "Service temporarily unavailable");
                return;
            }
            p = ldg_calloc(1, sizeof *p);
            p->id = pid;
            ldg_list_init(&p->members);
            ldg_list_push_back(&h->projects[ldg__notify_bucket(pid)], &p->node);
        }
        struct member *m = &cl->members[k++];
        m->cl = cl;
        m->proj = p;
        ldg_list_push_back(&p->members, &m->node);
        cl->nmembers = k;
    }

    struct acct *a = ldg__notify_acct_find(h, st->account_id);
    if (!a)
        a = ldg__notify_acct_new(h, st->account_id);
    if (!a->loaded && st->have_prefs && !st->leasing) { /* a session's own read */
        if (st->prefs)
            (void)ldg_prefs_parse(&a->prefs, st->prefs, strlen(st->prefs));
        a->loaded = true;
    } else if (!a->loaded && !a->reloading) {
        prefs_reload(h, a);
    }
    cl->acct = a;
    ldg_list_push_back(&a->clients, &cl->acct_node);

    ldg_req_add_header(req, "Cache-Control", "no-cache");
    ldg_req_add_header(req, "X-Accel-Buffering", "no");
    cl->conn = ldg_conn_stream_begin(req, "text/event-stream; charset=utf-8",
                                     (size_t)G.cfg->send_buffer_bytes, ldg__notify_on_stream_closed, cl);
    if (!cl->conn) {
        ldg__notify_client_unlink(cl);
        ldg__notify_client_maybe_free(cl);
        return;
    }

    /* connected: {"timestamp": "...", "projects": [1, 2]} (Python's json.dumps spacing). */
    char ts[40];
    ldg_event_time(ldg_wall_us(), true, ts);
    struct ldg_buf d;
    ldg_buf_init(&d);
    ldg_buf_printf(&d, "{\"timestamp\": \"%s\", \"projects\": [", ts);
    for (size_t i = 0; i < st->nprojects; i++)
        ldg_buf_printf(&d, "%s%" PRId64, i ? ", " : "", st->projects[i]);
    ldg_buf_puts(&d, "]}");
    struct ldg_chunk *ch =
        ldg__notify_event_chunk(h, NULL, 0, "connected", ldg_buf_head(&d), ldg_buf_size(&d));
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
    if (st->resume && cl->nmembers) {
        cl->resume_from = st->last_id;
        ldg__notify_replay_start(cl);
    }
}

/* ---- lifecycle -------------------------------------------------------------------------------------- */

static int notify_validate(const void *cfg, struct ldg_cfg_err *err)
{
    const struct ldg_notify_cfg *c = cfg;
    if (c->ping_ms && c->ping_ms < 50) {
        snprintf(err->msg, sizeof err->msg, "[notifications] ping_ms must be 0 or at least 50");
        return -EINVAL;
    }
    return 0;
}

static int notify_init_global(const struct ldg_config *c, const void *cfg)
{
    G.cfg = cfg;
    G.index = ldg_role_index("notifications");
    uv_once(&scripts_once, init_scripts);
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1)
        return -EIO;
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(G.instance + 2 * i, 3, "%02x", r[i]);
    return 0;
}

static void notify_routes(struct ldg_router *r, const void *cfg)
{
    struct ldg_route_opts o = {.flags = LDG_ROUTE_TOKEN_QUERY};
    int rc = ldg_router_add(r, "GET", "/api/v1/notifications/stream", stream_handler, &o);
    LDG_ASSERT(rc == 0);
    rc = ldg_router_add(r, "GET", "/api/v1/logs/tail", ldg__tail_handler, &o);
    LDG_ASSERT(rc == 0);
}

static int notify_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    struct hub *h = ldg_calloc(1, sizeof *h);
    h->w = w;
    for (size_t i = 0; i < NBUCKETS; i++) {
        ldg_list_init(&h->projects[i]);
        ldg_list_init(&h->accounts[i]);
    }
    ldg_list_init(&h->hb_list);
    ldg_list_init(&h->ping_list);
    ldg_buf_init(&h->scratch);
    ldg__tail_hub_init(h);
    const struct ldg_config *c = w->cfg;
    char name[32];
    snprintf(name, sizeof name, "notify-sub-%u", w->id);
    h->sub = ldg_redis_sub_new(&w->loop, &c->redis, c->redis_password, name, on_message, h);
    int rc = ldg_redis_sub_subscribe(h->sub, PREFS_CHANNEL);
    LDG_ASSERT(rc == 0);
    /* Credentials that end streams: key revocations and ended sessions. */
    rc = ldg_redis_sub_subscribe(h->sub, LDG_KEYCACHE_CHANNEL);
    LDG_ASSERT(rc == 0);
    rc = ldg_redis_sub_subscribe(h->sub, LDG_SESSION_REVOKED_CHANNEL);
    LDG_ASSERT(rc == 0);
    for (unsigned i = 1; i < w->nredis; i++) {
        snprintf(name, sizeof name, "notify-sub-%u.s%u", w->id, i);
        h->shard_sub[i] = ldg_redis_sub_new(&w->loop, ldg_settings_redis_cfg(c, i),
                                            ldg_settings_redis_password(c, i), name, on_message, h);
        h->shard_subs_open++;
    }
    uv_timer_init(&w->loop, &h->tick);
    uv_timer_init(&w->loop, &h->renew);
    uv_timer_init(&w->loop, &h->loader);
    ldg_list_init(&h->load_queue);
    h->tick.data = h->renew.data = h->loader.data = h;
    h->timers_open = 3;
    uint64_t t = tick_ms();
    uv_timer_start(&h->tick, on_tick, t, t);
    uint64_t rn = (uint64_t)G.cfg->stream_lease_ms / 3;
    uv_timer_start(&h->renew, on_renew, rn, rn);
    *state = h;
    return 0;
}

static void on_timer_closed(uv_handle_t *t)
{
    struct hub *h = t->data;
    h->timers_open--;
}

static void on_sub_closed(void *ud)
{
    struct hub *h = ud;
    h->sub_closed = true;
}

static void on_shard_sub_closed(void *ud)
{
    struct hub *h = ud;
    h->shard_subs_open--;
}

struct ldg_redis_sub *ldg__notify_sub_for(struct hub *h, int64_t project_id)
{
    unsigned s = ldg_settings_redis_shard(h->w->cfg, project_id);
    return s ? h->shard_sub[s] : h->sub;
}

/* Drain: every stream gets a final `shutdown` event (with an SSE retry hint) and ends; its lease
 * is released now, while the Redis connection is still up. */
static void notify_stop_worker(struct ldg_worker *w, void *state)
{
    struct hub *h = state;
    if (h->draining)
        return;
    h->draining = true;
    struct ldg_chunk *last = NULL;
    char ts[40];
    ldg_event_time(ldg_wall_us(), true, ts);
    ldg_buf_reset(&h->scratch);
    ldg_buf_printf(&h->scratch, "retry: %" PRId64 "\r\n", G.cfg->shutdown_retry_ms);
    struct ldg_buf data;
    ldg_buf_init(&data);
    ldg_buf_printf(&data, "{\"timestamp\": \"%s\", \"reason\": \"server shutting down\"}", ts);
    ldg_event_format(&h->scratch, NULL, 0, "shutdown", ldg_buf_head(&data), ldg_buf_size(&data));
    ldg_buf_free(&data);
    last = ldg_chunk_new(ldg_buf_head(&h->scratch), ldg_buf_size(&h->scratch));
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&h->accounts[b], it, tmp)
        {
            struct acct *a = ldg_container_of(it, struct acct, node);
            struct ldg_list_node *ci, *ctmp;
            ldg_list_foreach_safe(&a->clients, ci, ctmp)
            {
                struct client *cl = ldg_container_of(ci, struct client, acct_node);
                ldg__notify_lease_release(w, a->id, cl->seq);
                if (cl->tail)
                    ldg__tail_flush(cl);
                if (cl->conn)
                    ldg_conn_stream_end(cl->conn, last);
            }
        }
    }
    ldg_chunk_unref(last);
    uv_close((uv_handle_t *)&h->tick, on_timer_closed);
    uv_close((uv_handle_t *)&h->renew, on_timer_closed);
    uv_close((uv_handle_t *)&h->loader, on_timer_closed);
    /* First reads still queued will not be sent: answer their streams now. */
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&h->load_queue))) {
        struct acct *a = ldg_container_of(n, struct acct, load_node);
        ldg_list_node_init(&a->load_node);
        a->reloading = false;
        flush_waiters(h, a, 503);
        ldg__notify_acct_maybe_free(h, a);
    }
    if (h->sub) {
        struct ldg_redis_sub *s = h->sub;
        h->sub = NULL;
        ldg_redis_sub_close(s, on_sub_closed, h);
    }
    for (unsigned i = 1; i < LDG_SHARDS_MAX; i++)
        if (h->shard_sub[i]) {
            struct ldg_redis_sub *s = h->shard_sub[i];
            h->shard_sub[i] = NULL;
            ldg_redis_sub_close(s, on_shard_sub_closed, h);
        }
}

static bool notify_drained(const struct ldg_worker *w, const void *state)
{
    const struct hub *h = state;
    return h->sub_closed && h->shard_subs_open == 0 && h->timers_open == 0 && h->nclients == 0 && h->ops == 0;
}

static void hub_free(struct hub *h)
{
    ldg__tail_hub_free(h);
    ldg_buf_free(&h->scratch);
    free(h);
}

static void notify_free_worker(struct ldg_worker *w, void *state)
{
    struct hub *h = state;
    h->dead = true;
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct ldg_list_node *n;
        while ((n = ldg_list_pop_front(&h->accounts[b]))) {
            struct acct *a = ldg_container_of(n, struct acct, node);
            struct ldg_list_node *wn;
            while ((wn = ldg_list_pop_front(&a->waiters))) /* their read's callback will not look */
                ldg_req_unref(ldg_container_of(wn, struct setup, wnode)->req);
            ldg_prefs_free(&a->prefs);
            free(a);
        }
    }
    if (h->ops == 0)
        hub_free(h); /* else the last callback does (the Redis and PostgreSQL clients close later) */
}

static void notify_health(const struct ldg_worker *w, const void *state, struct ldg_buf *out)
{
    const struct hub *h = state;
    size_t channels = h->sub ? ldg_redis_sub_channels(h->sub) : 0;
    bool sub = h->sub && ldg_redis_sub_connected(h->sub);
    channels = channels ? channels - 1 : 0;
    for (unsigned i = 1; i < w->nredis; i++) {
        channels += h->shard_sub[i] ? ldg_redis_sub_channels(h->shard_sub[i]) : 0;
        sub = sub && h->shard_sub[i] && ldg_redis_sub_connected(h->shard_sub[i]);
    }
    ldg_buf_printf(
        out, "{\"status\":\"running\",\"streams\":%zu,\"tails\":%zu,\"channels\":%zu,\"pubsub\":\"%s\"}",
        h->nclients, ldg__tail_count(h), channels, sub ? "subscribed" : "disconnected");
}

const struct ldg_role ldg_role_notify = {
    .name = "notifications",
    .keys = ldg_notify_cfg_keys,
    .cfg_size = sizeof(struct ldg_notify_cfg),
    .validate = notify_validate,
    .init_global = notify_init_global,
    .routes = notify_routes,
    .init_worker = notify_init_worker,
    .stop_worker = notify_stop_worker,
    .drained = notify_drained,
    .free_worker = notify_free_worker,
    .health = notify_health,
};
