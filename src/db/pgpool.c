/*
 * pgpool.c: per-loop PostgreSQL pool.
 *
 * Every connection sits in a slot, and every slot is on exactly one list, that of its pool state
 * (changed only by slot_set):
 *   CONNECTING  ldg_pg is connecting                 -> IDLE | CLOSING
 *   IDLE        connected, not lent                  -> LENT | CLOSING
 *   LENT        handed to a caller (pg state IDLE, BUSY or COPY_IN)  -> IDLE | CLOSING
 *   CLOSING     ldg_pg_close called, waiting for its close callbacks (then the slot is freed)
 * The pg-level state (CONNECTING/IDLE/BUSY/COPY_IN/BROKEN) lives in the connection; the pool
 * hears about IDLE and BROKEN through the on_state hook.
 *
 * All hand-outs happen in pump(), run from the pool's single timer, never from inside
 * acquire/release: callers never see re-entrant callbacks, and a release from inside a result
 * callback does not nest the next waiter's whole request inside it. The same timer carries the
 * waiters' deadlines: all waits have the same length, so the FIFO head expires first.
 */
#include "db/pgpool.h"

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "db/backoff.h"

enum slot_state { SLOT_CONNECTING, SLOT_IDLE, SLOT_LENT, SLOT_CLOSING, SLOT_NSTATES };

struct slot {
    struct ldg_list_node node; /* on pool->slots[state] */
    enum slot_state state;
    struct ldg_pg *conn;     /* owned: closed with ldg_pg_close, freed by it */
    struct ldg_pgpool *pool; /* borrowed */
};

struct waiter {
    struct ldg_list_node node; /* on pool->waiters, FIFO = deadline order */
    uint64_t deadline;         /* uv_now() based */
    ldg_pgpool_acquire_cb cb;
    void *ud;
};

struct ldg_pgpool {
    uv_loop_t *loop;              /* borrowed */
    const struct ldg_pg_cfg *cfg; /* borrowed, immutable */
    char *password;               /* owned, nullable */
    char *name;                   /* owned */
    char *ctx;                    /* owned: "pg=<name>" */
    uv_timer_t timer;             /* pump + waiter deadlines */
    bool timer_closed;
    struct ldg_list slots[SLOT_NSTATES];
    struct ldg_list waiters; /* struct waiter, owned, at most max_waiters */
    struct ldg_backoff backoff;
    bool down;         /* the last connect attempt failed */
    uint64_t retry_at; /* while down: no new attempt before this (uv_now ms) */
    uint64_t errors;   /* acquire failures + errors of discarded connections */
    uint64_t next_id;
    bool closing;
    ldg_pgpool_closed_cb on_closed;
    void *closed_ud;
};

static void on_timer(uv_timer_t *t);

static void slot_set(struct slot *s, enum slot_state to)
{
    static const unsigned legal[SLOT_NSTATES] = {
        [SLOT_CONNECTING] = 1u << SLOT_IDLE | 1u << SLOT_CLOSING,
        [SLOT_IDLE] = 1u << SLOT_LENT | 1u << SLOT_CLOSING,
        [SLOT_LENT] = 1u << SLOT_IDLE | 1u << SLOT_CLOSING,
        [SLOT_CLOSING] = 0,
    };
    LDG_ASSERT(legal[s->state] & (1u << to));
    ldg_list_remove(&s->pool->slots[s->state], &s->node);
    s->state = to;
    ldg_list_push_back(&s->pool->slots[to], &s->node);
}

static void schedule_pump(struct ldg_pgpool *p)
{
    if (!p->closing)
        uv_timer_start(&p->timer, on_timer, 0, 0);
}

static void maybe_free(struct ldg_pgpool *p)
{
    if (!p->closing || !p->timer_closed)
        return;
    for (int i = 0; i < SLOT_NSTATES; i++)
        if (!ldg_list_empty(&p->slots[i]))
            return;
    ldg_pgpool_closed_cb cb = p->on_closed;
    void *ud = p->closed_ud;
    free(p->password);
    free(p->name);
    free(p->ctx);
    free(p);
    if (cb)
        cb(ud);
}

static void on_conn_closed(void *ud)
{
    struct slot *s = ud;
    struct ldg_pgpool *p = s->pool;
    ldg_list_remove(&p->slots[SLOT_CLOSING], &s->node);
    free(s);
    maybe_free(p);
}

static void discard(struct slot *s)
{
    if (s->state == SLOT_CLOSING)
        return;
    s->pool->errors += ldg_pg_errors(s->conn); /* a closing connection counts no more errors */
    slot_set(s, SLOT_CLOSING);
    ldg_pg_close(s->conn, on_conn_closed, s);
}

static bool is_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

static void on_conn_state(struct ldg_pg *c, enum ldg_pg_state from, enum ldg_pg_state to, void *ud)
{
    struct slot *s = ud;
    struct ldg_pgpool *p = s->pool;
    if (from == LDG_PG_CONNECTING && to == LDG_PG_IDLE) {
        if (p->down)
            ldg_log_info(p->ctx, "connected again after %u failed attempts", p->backoff.failures);
        p->down = false;
        ldg_backoff_reset(&p->backoff);
        slot_set(s, SLOT_IDLE);
        schedule_pump(p);
    } else if (to == LDG_PG_BROKEN && s->state == SLOT_CONNECTING) {
        uint64_t delay = ldg_backoff_next(&p->backoff);
        p->down = true;
        p->retry_at = uv_now(p->loop) + delay;
        if (is_pow2(p->backoff.failures))
            ldg_log_warn(p->ctx, "cannot connect: %s (attempt %u, next in %llu ms): %s",
                         ldg_pg_connect_cause(ldg_pg_last_error(c)), p->backoff.failures,
                         (unsigned long long)delay, ldg_pg_last_error(c));
        discard(s);
        schedule_pump(p);
    } else if (to == LDG_PG_BROKEN && s->state == SLOT_IDLE) {
        discard(s); /* replaced on demand */
    }
    /* LENT connections: the holder gets the error and releases the connection. */
}

static void open_conn(struct ldg_pgpool *p)
{
    struct slot *s = ldg_calloc(1, sizeof *s);
    s->pool = p;
    s->state = SLOT_CONNECTING;
    ldg_list_push_back(&p->slots[SLOT_CONNECTING], &s->node);
    char ctx[160];
    snprintf(ctx, sizeof ctx, "%s conn=%llu", p->ctx, (unsigned long long)++p->next_id);
    s->conn = ldg_pg_new(p->loop, p->cfg, p->password, ctx, on_conn_state, s);
}

static void fail_waiters(struct ldg_pgpool *p, int err)
{
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&p->waiters))) {
        struct waiter *w = ldg_container_of(n, struct waiter, node);
        ldg_pgpool_acquire_cb cb = w->cb;
        void *ud = w->ud;
        free(w);
        if (err != -ECANCELED)
            p->errors++;
        cb(NULL, err, ud);
    }
}

static void pump(struct ldg_pgpool *p)
{
    uint64_t now = uv_now(p->loop);
    struct ldg_list_node *n;

    while (!p->closing && (n = ldg_list_first(&p->waiters))) {
        struct waiter *w = ldg_container_of(n, struct waiter, node);
        if (w->deadline > now)
            break;
        ldg_list_remove(&p->waiters, n);
        ldg_pgpool_acquire_cb cb = w->cb;
        void *ud = w->ud;
        free(w);
        p->errors++;
        cb(NULL, -ETIMEDOUT, ud);
    }

    while (!p->closing && !ldg_list_empty(&p->waiters) && !ldg_list_empty(&p->slots[SLOT_IDLE])) {
        struct slot *s = ldg_container_of(ldg_list_first(&p->slots[SLOT_IDLE]), struct slot, node);
        if (ldg_pg_state(s->conn) != LDG_PG_IDLE) {
            discard(s);
            continue;
        }
        struct waiter *w = ldg_container_of(ldg_list_pop_front(&p->waiters), struct waiter, node);
        ldg_pgpool_acquire_cb cb = w->cb;
        void *ud = w->ud;
        free(w);
        slot_set(s, SLOT_LENT);
        cb(s->conn, 0, ud);
    }
    if (p->closing)
        return;

    size_t waiting = p->waiters.count, connecting = p->slots[SLOT_CONNECTING].count;
    if (waiting > connecting) {
        if (p->down && now < p->retry_at) {
            if (connecting == 0)
                fail_waiters(p, -ENOTCONN);
        } else {
            size_t open = connecting + p->slots[SLOT_IDLE].count + p->slots[SLOT_LENT].count;
            size_t room = (size_t)p->cfg->pool_size > open ? (size_t)p->cfg->pool_size - open : 0;
            size_t want = LDG_MIN(waiting - connecting, room);
            if (p->down) /* probe with one connection until the server answers again */
                want = LDG_MIN(want, connecting ? 0 : 1);
            for (size_t i = 0; i < want; i++)
                open_conn(p);
        }
    }
    if (p->closing)
        return;

    if ((n = ldg_list_first(&p->waiters))) {
        struct waiter *w = ldg_container_of(n, struct waiter, node);
        uv_timer_start(&p->timer, on_timer, w->deadline > now ? w->deadline - now : 0, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct ldg_pgpool *p = ldg_container_of(t, struct ldg_pgpool, timer);
    if (!p->closing)
        pump(p);
}

struct ldg_pgpool *ldg_pgpool_new(uv_loop_t *loop, const struct ldg_pg_cfg *cfg, const char *password,
                                  const char *name)
{
    struct ldg_pgpool *p = ldg_calloc(1, sizeof *p);
    p->loop = loop;
    p->cfg = cfg;
    p->password = password && *password ? ldg_strdup(password) : NULL;
    p->name = ldg_strdup(name && *name ? name : "default");
    p->ctx = ldg_asprintf("pg=%s", p->name);
    for (int i = 0; i < SLOT_NSTATES; i++)
        ldg_list_init(&p->slots[i]);
    ldg_list_init(&p->waiters);
    ldg_backoff_init(&p->backoff, cfg->reconnect_min_ms, cfg->reconnect_max_ms,
                     uv_hrtime() ^ (uint64_t)(uintptr_t)p);
    uv_timer_init(loop, &p->timer);
    return p;
}

int ldg_pgpool_acquire(struct ldg_pgpool *p, ldg_pgpool_acquire_cb cb, void *ud)
{
    if (p->closing)
        return -ECANCELED;
    if (!cb)
        return -EINVAL;
    if (p->waiters.count >= (size_t)p->cfg->max_waiters) {
        p->errors++;
        return -EAGAIN;
    }
    uint64_t now = uv_now(p->loop);
    if (p->down && now < p->retry_at && ldg_list_empty(&p->slots[SLOT_CONNECTING]) &&
        ldg_list_empty(&p->slots[SLOT_IDLE])) {
        p->errors++;
        return -ENOTCONN;
    }
    struct waiter *w = ldg_malloc(sizeof *w);
    w->deadline = now + (uint64_t)p->cfg->acquire_timeout_ms;
    w->cb = cb;
    w->ud = ud;
    ldg_list_push_back(&p->waiters, &w->node);
    schedule_pump(p);
    return 0;
}

void ldg_pgpool_release(struct ldg_pgpool *p, struct ldg_pg *conn)
{
    struct slot *s = ldg_pg_data(conn);
    LDG_ASSERT(s && s->pool == p && s->conn == conn);
    if (s->state == SLOT_CLOSING)
        return;
    LDG_ASSERT(s->state == SLOT_LENT);
    if (ldg_pg_state(conn) == LDG_PG_IDLE && !ldg_pg_in_transaction(conn))
        slot_set(s, SLOT_IDLE);
    else
        discard(s);
    schedule_pump(p);
}

/* ---- one-shot queries --------------------------------------------------------------------- */

struct pquery {
    struct ldg_pgpool *pool; /* borrowed */
    struct ldg_pg *conn;     /* lent to this query once acquired */
    ldg_pg_cb cb;
    void *ud;
    char *name; /* owned copies */
    char *sql;
    int nparams;
    char **params; /* entries may be NULL (SQL NULL) */
};

static void pquery_free(struct pquery *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->name);
    free(q->sql);
    free(q);
}

static void on_query_result(PGresult *res, void *ud)
{
    struct pquery *q = ud;
    q->cb(res, q->ud); /* inside pg's delivery: ldg_pg_failure/ldg_pg_keep refer to this result */
    ldg_pgpool_release(q->pool, q->conn);
    pquery_free(q);
}

static void on_query_conn(struct ldg_pg *conn, int err, void *ud)
{
    struct pquery *q = ud;
    if (!conn) {
        ldg__pg_deliver(q->cb, q->ud, NULL, err, NULL,
                        err == -ETIMEDOUT  ? "timed out waiting for a database connection"
                        : err == -ENOTCONN ? "database unreachable"
                                           : "database pool closed");
        pquery_free(q);
        return;
    }
    q->conn = conn;
    int rc = q->name
                 ? ldg_pg_query_prepared(conn, q->name, q->sql, q->nparams, (const char *const *)q->params,
                                         on_query_result, q)
                 : ldg_pg_query(conn, q->sql, q->nparams, (const char *const *)q->params, on_query_result, q);
    if (rc < 0) {
        ldg__pg_deliver(q->cb, q->ud, NULL, rc, NULL, ldg_pg_last_error(conn));
        ldg_pgpool_release(q->pool, conn);
        pquery_free(q);
    }
}

static int submit(struct ldg_pgpool *p, const char *name, const char *sql, int nparams,
                  const char *const *params, ldg_pg_cb cb, void *ud)
{
    if (!p)
        return -ENOTCONN; /* the worker's pool is already closed (shutdown) */
    if (!sql || !cb || nparams < 0 || nparams > 65535 || (nparams && !params) || (name && !*name))
        return -EINVAL;
    struct pquery *q = ldg_calloc(1, sizeof *q);
    q->pool = p;
    q->cb = cb;
    q->ud = ud;
    q->name = name ? ldg_strdup(name) : NULL;
    q->sql = ldg_strdup(sql);
    q->nparams = nparams;
    q->params = ldg_calloc((size_t)nparams, sizeof *q->params);
    for (int i = 0; i < nparams; i++)
        q->params[i] = ldg_strdup(params[i]);
    int rc = ldg_pgpool_acquire(p, on_query_conn, q);
    if (rc < 0)
        pquery_free(q);
    return rc;
}

int ldg_pgpool_query(struct ldg_pgpool *p, const char *sql, int nparams, const char *const *params,
                     ldg_pg_cb cb, void *ud)
{
    return submit(p, NULL, sql, nparams, params, cb, ud);
}

int ldg_pgpool_query_prepared(struct ldg_pgpool *p, const char *name, const char *sql, int nparams,
                              const char *const *params, ldg_pg_cb cb, void *ud)
{
    if (!name)
        return -EINVAL;
    return submit(p, name, sql, nparams, params, cb, ud);
}

/* ---- stats and close ---------------------------------------------------------------------- */

void ldg_pgpool_stats(const struct ldg_pgpool *p, struct ldg_pgpool_stats *out)
{
    out->connecting = p->slots[SLOT_CONNECTING].count;
    out->idle = p->slots[SLOT_IDLE].count;
    out->lent = p->slots[SLOT_LENT].count;
    out->closing = p->slots[SLOT_CLOSING].count;
    out->waiters = p->waiters.count;
    out->down = p->down;
}

uint64_t ldg_pgpool_errors(const struct ldg_pgpool *p)
{
    uint64_t n = p->errors;
    for (int i = 0; i < SLOT_CLOSING; i++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&p->slots[i], it, tmp)
        {
            n += ldg_pg_errors(ldg_container_of(it, struct slot, node)->conn);
        }
    }
    return n;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ldg_pgpool *p = ldg_container_of((uv_timer_t *)h, struct ldg_pgpool, timer);
    p->timer_closed = true;
    maybe_free(p);
}

void ldg_pgpool_close(struct ldg_pgpool *p, ldg_pgpool_closed_cb on_closed, void *ud)
{
    LDG_ASSERT(!p->closing);
    p->closing = true;
    p->on_closed = on_closed;
    p->closed_ud = ud;
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    fail_waiters(p, -ECANCELED);
    for (int i = 0; i < SLOT_CLOSING; i++) {
        struct ldg_list_node *n;
        while ((n = ldg_list_first(&p->slots[i])))
            discard(ldg_container_of(n, struct slot, node));
    }
}
