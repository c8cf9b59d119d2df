/*
 * pg.c: one libpq connection in non-blocking mode on a uv_poll_t.
 *
 * The socket can change or disappear under us, and libuv must never watch a closed fd:
 *   - During connect, PQconnectPoll may close the socket and open a new one (next address, SSL or
 *     GSS fallback), possibly with the same number. So the poll is stopped before every
 *     PQconnectPoll (uv_poll_stop removes the fd from epoll at once) and, afterwards, the poll
 *     handle is replaced when PQsocket() differs. Restarting a stopped poll re-adds the fd, so a
 *     same-numbered new socket is watched correctly.
 *   - Once connected, libpq closes the socket only when the connection fails. After every libpq
 *     call that can fail (check_alive) we detach the poll handle when PQstatus is BAD or the fd
 *     changed, before any other code can run and reuse the fd number.
 *   - Close: the poll handle is closed (which unregisters the fd) before PQfinish closes the fd.
 * Poll handles are separate heap objects freed in their own close callbacks; the connection is
 * freed only when all its handles are closed.
 *
 * Operations: statements always run in pipeline mode (a single query is a pipeline of one), which
 * lets a statement be prepared and executed in one round trip. Results are collected per
 * statement and delivered, in order, after PGRES_PIPELINE_SYNC, once the connection is IDLE again,
 * so the last callback can start the next operation. COPY runs outside pipeline mode (libpq does
 * not allow it inside).
 *
 * Re-entrancy: user code runs in statement/put callbacks and in the owner's on_state hook, and may
 * close the connection or start a new operation. Every path re-checks c->closing and the state
 * after calling out, and never keeps pointers into c->op across a callback.
 */
#include "db/pg.h"

#include <limits.h>
#include <stdarg.h>

#include "core/alloc.h"
#include "core/log.h"

/* clang-format off */
#define LDG_PG_CFG_KEYS(section_db)                                                                        \
    {"host", LDG_CFG_STR, offsetof(struct ldg_pg_cfg, host), "127.0.0.1", 0, 0, NULL, LDG_CFG_RESTART,     \
     "server address, or a unix-socket directory starting with /"},                                      \
    {"port", LDG_CFG_INT, offsetof(struct ldg_pg_cfg, port), "5432", 1, 65535, NULL, LDG_CFG_RESTART,      \
     "server port (also names the unix socket)"},                                                        \
    {"dbname", LDG_CFG_STR, offsetof(struct ldg_pg_cfg, dbname), section_db, 0, 0, NULL, LDG_CFG_RESTART,  \
     "database name (created by --migrate when missing)"},                                               \
    {"user", LDG_CFG_STR, offsetof(struct ldg_pg_cfg, user), "postgres", 0, 0, NULL, LDG_CFG_RESTART,      \
     "database user"},                                                                                   \
    {"password_file", LDG_CFG_PATH, offsetof(struct ldg_pg_cfg, password_file), "", 0, 0, NULL,            \
     LDG_CFG_RESTART, "file holding the password; empty for none (trust, peer or .pgpass)"},             \
    {"pool_size", LDG_CFG_INT, offsetof(struct ldg_pg_cfg, pool_size), "4", 1, 1000, NULL,                 \
     LDG_CFG_RESTART, "connections per worker, opened on demand"},                                       \
    {"connect_timeout_ms", LDG_CFG_MS, offsetof(struct ldg_pg_cfg, connect_timeout_ms), "5000", 10,        \
     600000, NULL, LDG_CFG_RESTART, "deadline for connecting and authenticating"},                       \
    {"statement_timeout_ms", LDG_CFG_MS, offsetof(struct ldg_pg_cfg, statement_timeout_ms), "30000", 10,   \
     86400000, NULL, LDG_CFG_RESTART, "server statement_timeout; the client gives up 2 s later"},        \
    {"acquire_timeout_ms", LDG_CFG_MS, offsetof(struct ldg_pg_cfg, acquire_timeout_ms), "5000", 1,         \
     600000, NULL, LDG_CFG_RESTART, "longest wait for a free pooled connection"},                        \
    {"max_waiters", LDG_CFG_INT, offsetof(struct ldg_pg_cfg, max_waiters), "1000", 1, 1000000, NULL,       \
     LDG_CFG_RESTART, "callers queued for a connection before new ones are refused (503)"},              \
    {"reconnect_min_ms", LDG_CFG_MS, offsetof(struct ldg_pg_cfg, reconnect_min_ms), "100", 1, 600000,      \
     NULL, LDG_CFG_RESTART, "first delay after a failed connect (jittered, doubling)"},                  \
    {"reconnect_max_ms", LDG_CFG_MS, offsetof(struct ldg_pg_cfg, reconnect_max_ms), "10000", 1, 3600000,   \
     NULL, LDG_CFG_RESTART, "longest delay between connect attempts"}

const struct ldg_cfg_key ldg_pg_auth_cfg_keys[] = {LDG_PG_CFG_KEYS("ledger_auth"), {0}};
const struct ldg_cfg_key ldg_pg_logs_cfg_keys[] = {LDG_PG_CFG_KEYS("ledger_logs"), {0}};
/* [pg_logs_replica.N]: the connection keys (struct ldg_pg_cfg is the first member) plus three. */
const struct ldg_cfg_key ldg_pg_replica_cfg_keys[] = {
    LDG_PG_CFG_KEYS("ledger_logs"),
    {"shard", LDG_CFG_INT, offsetof(struct ldg_pg_replica_cfg, shard), "0", 0, 7, NULL, LDG_CFG_RESTART,
     "logs shard this server replicates: 0 = [pg_logs], N = [pg_logs.N]"},
    {"max_lag_ms", LDG_CFG_MS, offsetof(struct ldg_pg_replica_cfg, max_lag_ms), "10000", 0, 86400000, NULL,
     LDG_CFG_RESTART, "a replica further behind its primary than this is skipped (reads go to the primary)"},
    {"probe_interval_ms", LDG_CFG_MS, offsetof(struct ldg_pg_replica_cfg, probe_interval_ms), "1000", 50,
     600000, NULL, LDG_CFG_RESTART, "how often each worker measures the lag (one query on each side)"},
    {0}};
/* clang-format on */

struct ldg_pg;

struct pollw {
    uv_poll_t poll;   /* first; freed in on_poll_closed */
    struct ldg_pg *c; /* borrowed: c outlives all its handles */
    int fd;
    int events; /* currently started events, 0 = stopped */
};

/* One statement of the current operation (or, for COPY, the pending start/end callback). */
struct slot {
    ldg_pg_cb cb;
    void *ud;
    PGresult *res; /* owned until delivered */
    int err;
    char sqlstate[6];
    char constraint[64]; /* PG_DIAG_CONSTRAINT_NAME of an -EIO error, "" if none */
    char *errmsg;        /* owned */
};

enum exp_kind { EXP_PREPARE, EXP_EXEC };

/* What the next group of results (ended by a NULL from PQgetResult) belongs to. */
struct expect {
    enum exp_kind kind;
    uint32_t stmt;
    const char *prep_name; /* EXP_PREPARE: borrowed from the registry entry it added */
};

enum op_kind { OP_NONE, OP_STMTS, OP_COPY };

struct op {
    enum op_kind kind;
    struct slot *slots; /* owned; n entries (1 for COPY) */
    uint32_t n;
    struct expect *exp; /* owned; nexp entries */
    uint32_t nexp, cur;
    /* COPY */
    const char *put_data; /* borrowed from the caller until put_cb */
    size_t put_len;
    ldg_pg_copy_cb put_cb; /* non-NULL while a put is outstanding */
    void *put_ud;
    bool put_handed; /* accepted by PQputCopyData, waiting for PQflush == 0 */
    bool end_wanted, end_sent;
    char *end_errmsg; /* owned; NULL = finish normally */
};

struct prep {
    struct prep *next;
    char name[];
};

struct ldg_pg {
    uv_loop_t *loop;              /* borrowed */
    const struct ldg_pg_cfg *cfg; /* borrowed, immutable */
    char *ctx;                    /* owned: logfmt fields */
    PGconn *pq;                   /* owned; NULL once finished */
    struct pollw *pw;             /* owned handle, NULL when not watching */
    int fd;                       /* socket being watched after connect */
    uv_timer_t timer;             /* connect / operation deadline */
    unsigned handles;             /* open uv handles */
    enum ldg_pg_state state;
    bool closing;
    bool early_fail; /* PQconnectStartParams failed: report from the timer */
    bool want_write; /* PQflush returned 1 */
    struct op op;
    struct prep *prepared; /* owned: names prepared on this connection */
    uint64_t errors;
    char lasterr[256];
    ldg_pg_state_cb on_state;
    void *ud;
    ldg_pg_closed_cb on_closed;
    void *closed_ud;
};

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- small helpers ----------------------------------------------------------------------- */

/* libpq messages end in a newline and may span lines: make them one line, spaces collapsed. */
static void copy_msg(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const char *p = src ? src : ""; *p && o + 1 < cap; p++) {
        char ch = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        if (ch == ' ' && (o == 0 || dst[o - 1] == ' '))
            continue;
        dst[o++] = ch;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static char *dup_msg(const char *src)
{
    char buf[512];
    copy_msg(buf, sizeof buf, src);
    return ldg_strdup(buf);
}

static void set_state(struct ldg_pg *c, enum ldg_pg_state to)
{
    static const unsigned legal[LDG_PG_NSTATES] = {
        [LDG_PG_CONNECTING] = 1u << LDG_PG_IDLE | 1u << LDG_PG_BROKEN,
        [LDG_PG_IDLE] = 1u << LDG_PG_BUSY | 1u << LDG_PG_BROKEN,
        [LDG_PG_BUSY] = 1u << LDG_PG_IDLE | 1u << LDG_PG_COPY_IN | 1u << LDG_PG_BROKEN,
        [LDG_PG_COPY_IN] = 1u << LDG_PG_BUSY | 1u << LDG_PG_BROKEN,
        [LDG_PG_BROKEN] = 0,
    };
    enum ldg_pg_state from = c->state;
    LDG_ASSERT(legal[from] & (1u << to));
    c->state = to;
    if (!c->closing && c->on_state && (to == LDG_PG_IDLE || to == LDG_PG_BROKEN))
        c->on_state(c, from, to, c->ud);
}

static void on_timer(uv_timer_t *t);

static void arm_deadline(struct ldg_pg *c, int64_t ms)
{
    uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static int64_t op_deadline_ms(const struct ldg_pg *c)
{
    return c->cfg->statement_timeout_ms + LDG_PG_DEADLINE_MARGIN_MS;
}

/* ---- poll handles ------------------------------------------------------------------------- */

static void maybe_free(struct ldg_pg *c);

static void on_poll_closed(uv_handle_t *h)
{
    struct pollw *pw = (struct pollw *)h;
    struct ldg_pg *c = pw->c;
    free(pw);
    c->handles--;
    maybe_free(c);
}

/* Stop watching at once (uv_close unregisters the fd synchronously); freed in on_poll_closed. */
static void poll_detach(struct ldg_pg *c)
{
    struct pollw *pw = c->pw;
    if (!pw)
        return;
    c->pw = NULL;
    uv_close((uv_handle_t *)&pw->poll, on_poll_closed);
}

static int poll_attach(struct ldg_pg *c, int fd)
{
    struct pollw *pw = ldg_calloc(1, sizeof *pw);
    int rc = uv_poll_init(c->loop, &pw->poll, fd);
    if (rc < 0) {
        free(pw); /* not initialised: nothing to close */
        return rc;
    }
    pw->c = c;
    pw->fd = fd;
    c->handles++;
    c->pw = pw;
    return 0;
}

static void poll_set(struct ldg_pg *c, int events)
{
    struct pollw *pw = c->pw;
    if (!pw || pw->events == events)
        return;
    if (events)
        uv_poll_start(&pw->poll, events, on_poll);
    else
        uv_poll_stop(&pw->poll);
    pw->events = events;
}

static bool copy_needs_write(const struct ldg_pg *c)
{
    const struct op *op = &c->op;
    return op->kind == OP_COPY && c->state == LDG_PG_COPY_IN &&
           ((op->put_cb && !op->put_handed) || (op->end_wanted && !op->end_sent && !op->put_cb));
}

static void update_poll(struct ldg_pg *c)
{
    if (c->closing || !c->pq)
        return;
    int ev = UV_READABLE;
    if (c->want_write || copy_needs_write(c))
        ev |= UV_WRITABLE;
    poll_set(c, ev);
}

/* ---- operations: delivery and failure ----------------------------------------------------- */

static void slot_error(struct slot *s, int err, const char *sqlstate, const char *msg)
{
    if (s->res) {
        PQclear(s->res);
        s->res = NULL;
    }
    s->err = err;
    snprintf(s->sqlstate, sizeof s->sqlstate, "%s", sqlstate ? sqlstate : "");
    s->constraint[0] = '\0';
    free(s->errmsg);
    s->errmsg = dup_msg(msg);
}

static void slot_error_from(struct slot *s, const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    slot_error(s, state ? -EIO : -ECONNRESET, state, PQresultErrorMessage(r));
    const char *cons = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    snprintf(s->constraint, sizeof s->constraint, "%s", state && cons ? cons : "");
}

/* The callback being run on this thread, innermost first: what ldg_pg_failure and ldg_pg_keep
 * refer to. One loop per thread, so a thread-local stack is exact. */
struct delivery {
    PGresult *res; /* NULL once kept */
    struct ldg_pg_error err;
    struct delivery *prev;
};
static _Thread_local struct delivery *cur_delivery;

static void deliver_with(ldg_pg_cb cb, void *ud, PGresult *res, int code, const char *sqlstate,
                         const char *constraint, const char *message)
{
    struct delivery d = {.res = res, .prev = cur_delivery};
    d.err.code = res ? 0 : (code ? code : -ECANCELED);
    snprintf(d.err.sqlstate, sizeof d.err.sqlstate, "%s", res || !sqlstate ? "" : sqlstate);
    d.err.constraint = res || !constraint ? "" : constraint;
    d.err.message = res ? "" : (message && *message ? message : "no result");
    cur_delivery = &d;
    cb(res, ud);
    cur_delivery = d.prev;
    if (d.res)
        PQclear(d.res);
}

void ldg__pg_deliver(ldg_pg_cb cb, void *ud, PGresult *res, int code, const char *sqlstate,
                     const char *message)
{
    deliver_with(cb, ud, res, code, sqlstate, NULL, message);
}

const struct ldg_pg_error *ldg_pg_failure(void)
{
    static const struct ldg_pg_error none = {0, "", "", ""};
    return cur_delivery ? &cur_delivery->err : &none;
}

void ldg_pg_keep(PGresult *res)
{
    for (struct delivery *d = cur_delivery; d; d = d->prev)
        if (d->res == res && res) {
            d->res = NULL;
            return;
        }
}

static void deliver(struct ldg_pg *c, struct slot *s)
{
    (void)c;
    if (s->cb)
        deliver_with(s->cb, s->ud, s->err ? NULL : s->res, s->err, s->sqlstate, s->constraint, s->errmsg);
    else if (s->res)
        PQclear(s->res);
    if (s->err && s->res)
        PQclear(s->res);
    free(s->errmsg);
}

static struct op detach_op(struct ldg_pg *c)
{
    struct op op = c->op;
    memset(&c->op, 0, sizeof c->op);
    return op;
}

static void free_op(struct op *op)
{
    free(op->slots);
    free(op->exp);
    free(op->end_errmsg);
}

/* Deliver errors for everything a detached operation still owes its caller. */
static void fail_op(struct ldg_pg *c, struct op *op, int err, const char *msg)
{
    if (op->kind == OP_COPY && op->put_cb)
        op->put_cb(c, err, op->put_ud);
    for (uint32_t i = 0; i < op->n; i++) {
        struct slot *s = &op->slots[i];
        if (s->err != -EIO) /* keep the server's own error, more useful than the follow-up */
            slot_error(s, err, NULL, msg);
        deliver(c, s);
    }
    free_op(op);
}

/* A cancel request for a statement still running on a connection being closed. PQcancel blocks (it
 * opens its own connection; libpq 15 has no non-blocking form), so it runs on the loop's thread
 * pool; the request object is independent of the PGconn, which is finished at once. */
struct cancel_req {
    uv_work_t work;
    PGcancel *cancel;
    char err[256];
    int ok;
};

static void on_cancel_work(uv_work_t *w)
{
    struct cancel_req *r = ldg_container_of(w, struct cancel_req, work);
    r->ok = PQcancel(r->cancel, r->err, (int)sizeof r->err);
}

static void on_cancel_done(uv_work_t *w, int status)
{
    struct cancel_req *r = ldg_container_of(w, struct cancel_req, work);
    if (status == 0 && !r->ok)
        ldg_log_warn(NULL, "cancel request of an abandoned statement failed: %s", r->err);
    PQfreeCancel(r->cancel);
    free(r);
}

static void send_cancel(struct ldg_pg *c);

void ldg_pg_cancel(struct ldg_pg *c)
{
    if (c->pq && !c->closing && (c->state == LDG_PG_BUSY || c->state == LDG_PG_COPY_IN))
        send_cancel(c);
}

static void send_cancel(struct ldg_pg *c)
{
    PGcancel *cancel = PQgetCancel(c->pq);
    if (!cancel)
        return;
    struct cancel_req *r = ldg_malloc(sizeof *r);
    r->cancel = cancel;
    r->err[0] = '\0';
    r->ok = 0;
    if (uv_queue_work(uv_handle_get_loop((uv_handle_t *)&c->timer), &r->work, on_cancel_work, on_cancel_done) <
        0) {
        PQfreeCancel(cancel);
        free(r);
    }
}

/* The connection is unusable: stop watching, finish libpq, report. */
static void fail_conn(struct ldg_pg *c, int err, const char *fmt, ...) LDG_PRINTF(3, 4);
static void fail_conn(struct ldg_pg *c, int err, const char *fmt, ...)
{
    if (c->closing || c->state == LDG_PG_BROKEN)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    copy_msg(c->lasterr, sizeof c->lasterr, msg);
    c->errors++;
    if (c->state == LDG_PG_CONNECTING)
        ldg_log_debug(c->ctx, "%s", c->lasterr); /* the pool logs connect failures with backoff */
    else
        ldg_log_warn(c->ctx, "connection dropped: %s", c->lasterr);
    if (c->pq && err == -ETIMEDOUT && (c->state == LDG_PG_BUSY || c->state == LDG_PG_COPY_IN))
        send_cancel(c); /* a statement past its deadline may still be running */
    poll_detach(c);
    if (c->pq) {
        PQfinish(c->pq);
        c->pq = NULL;
    }
    uv_timer_stop(&c->timer);
    struct op op = detach_op(c);
    set_state(c, LDG_PG_BROKEN);
    fail_op(c, &op, err, c->lasterr);
}

/* After any libpq call that can fail: is the connection still usable? If not, fail it now,
 * before anything else can reuse the closed fd's number. */
static bool check_alive(struct ldg_pg *c)
{
    if (!c->pq)
        return false;
    if (PQstatus(c->pq) == CONNECTION_BAD || PQsocket(c->pq) != c->fd) {
        poll_detach(c);
        fail_conn(c, -ECONNRESET, "connection lost: %s", PQerrorMessage(c->pq));
        return false;
    }
    return true;
}

static void finish_op(struct ldg_pg *c)
{
    uv_timer_stop(&c->timer);
    struct op op = detach_op(c);
    c->want_write = false;
    set_state(c, LDG_PG_IDLE);
    for (uint32_t i = 0; i < op.n; i++)
        deliver(c, &op.slots[i]);
    free_op(&op);
}

/* ---- prepared statement registry ---------------------------------------------------------- */

static bool is_prepared(const struct ldg_pg *c, const char *name)
{
    for (const struct prep *p = c->prepared; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return true;
    return false;
}

static void add_prepared(struct ldg_pg *c, const char *name)
{
    size_t n = strlen(name);
    struct prep *p = ldg_malloc(sizeof *p + n + 1);
    memcpy(p->name, name, n + 1);
    p->next = c->prepared;
    c->prepared = p;
}

static void forget_prepared(struct ldg_pg *c, const char *name)
{
    for (struct prep **pp = &c->prepared; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct prep *p = *pp;
            *pp = p->next;
            free(p);
            return;
        }
    }
}

/* ---- result processing -------------------------------------------------------------------- */

static bool status_ok(ExecStatusType st)
{
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ||
           st == PGRES_SINGLE_TUPLE;
}

/* Returns true to stop reading results (the operation ended, or we must wait for more input). */
static bool stmt_result(struct ldg_pg *c, PGresult *r)
{
    struct op *op = &c->op;
    if (!r) {
        if (op->cur < op->nexp) {
            op->cur++;
            return false;
        }
        return true; /* all groups done; PGRES_PIPELINE_SYNC not read yet */
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (!PQexitPipelineMode(c->pq)) {
            fail_conn(c, -ECONNRESET, "cannot leave pipeline mode: %s", PQerrorMessage(c->pq));
            return true;
        }
        finish_op(c);
        return true;
    }
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);
        fail_conn(c, -ECONNRESET, "COPY is only supported through ldg_pg_copy_start");
        return true;
    }
    if (op->cur >= op->nexp) {
        PQclear(r);
        return false;
    }
    struct expect *e = &op->exp[op->cur];
    struct slot *s = &op->slots[e->stmt];
    if (e->kind == EXP_PREPARE) {
        if (st != PGRES_COMMAND_OK) {
            forget_prepared(c, e->prep_name); /* never prepared: prepare again next time */
            e->prep_name = NULL;
            if (st == PGRES_PIPELINE_ABORTED)
                slot_error(s, -ECANCELED, NULL, "not run: an earlier statement of the pipeline failed");
            else
                slot_error_from(s, r);
        }
        PQclear(r);
        return false;
    }
    if (s->err) {
        PQclear(r); /* the PREPARE already failed; keep its error */
    } else if (st == PGRES_PIPELINE_ABORTED) {
        slot_error(s, -ECANCELED, NULL, "not run: an earlier statement of the pipeline failed");
        PQclear(r);
    } else if (status_ok(st)) {
        if (s->res)
            PQclear(s->res);
        s->res = r;
    } else {
        slot_error_from(s, r);
        PQclear(r);
    }
    return false;
}

static bool copy_result(struct ldg_pg *c, PGresult *r)
{
    struct op *op = &c->op;
    struct slot *s = &op->slots[0];
    if (!r) {
        /* The end of an error (start refused) or of the final result: the COPY is over. */
        finish_op(c);
        return true;
    }
    ExecStatusType st = PQresultStatus(r);
    if (!op->end_sent && st == PGRES_COPY_IN) {
        /* Deliver the start result now; in COPY_IN PQgetResult must not be called again (it
         * would keep returning PGRES_COPY_IN) until PQputCopyEnd. */
        struct slot start = *s;
        memset(s, 0, sizeof *s);
        start.res = r;
        set_state(c, LDG_PG_COPY_IN);
        deliver(c, &start);
        return true;
    }
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);
        fail_conn(c, -ECONNRESET, "only COPY ... FROM STDIN is supported");
        return true;
    }
    if (status_ok(st) && op->end_sent) {
        if (s->res)
            PQclear(s->res);
        s->res = r;
    } else if (status_ok(st)) {
        slot_error(s, -EINVAL, NULL, "statement is not COPY ... FROM STDIN");
        PQclear(r);
    } else {
        slot_error_from(s, r);
        PQclear(r);
    }
    return false;
}

static void read_results(struct ldg_pg *c)
{
    while (!c->closing && c->pq && c->state == LDG_PG_BUSY) {
        if (PQisBusy(c->pq))
            break;
        PGresult *r = PQgetResult(c->pq);
        if (!check_alive(c)) {
            if (r)
                PQclear(r);
            return;
        }
        bool stop = c->op.kind == OP_COPY ? copy_result(c, r) : stmt_result(c, r);
        if (stop)
            break; /* the next operation, if a callback started one, is driven by poll events */
    }
}

/* Push COPY data / end, then flush. Returns -1 when the connection failed. */
static int write_step(struct ldg_pg *c)
{
    struct op *op = &c->op;
    if (op->kind == OP_COPY && c->state == LDG_PG_COPY_IN) {
        if (op->put_cb && !op->put_handed) {
            int r = PQputCopyData(c->pq, op->put_data, (int)op->put_len);
            if (r < 0) {
                fail_conn(c, -ECONNRESET, "COPY data failed: %s", PQerrorMessage(c->pq));
                return -1;
            }
            if (r == 1)
                op->put_handed = true; /* 0: libpq buffers full, retry on writable */
        }
        if (op->end_wanted && !op->end_sent && !op->put_cb) {
            int r = PQputCopyEnd(c->pq, op->end_errmsg);
            if (r < 0) {
                fail_conn(c, -ECONNRESET, "COPY end failed: %s", PQerrorMessage(c->pq));
                return -1;
            }
            if (r == 1) {
                op->end_sent = true;
                set_state(c, LDG_PG_BUSY);
            }
        }
    }
    int f = PQflush(c->pq);
    if (f < 0) {
        fail_conn(c, -ECONNRESET, "send failed: %s", PQerrorMessage(c->pq));
        return -1;
    }
    if (!check_alive(c))
        return -1;
    c->want_write = f == 1;
    if (f == 0 && op->kind == OP_COPY && op->put_cb && op->put_handed) {
        ldg_pg_copy_cb cb = op->put_cb;
        void *ud = op->put_ud;
        op->put_cb = NULL;
        op->put_data = NULL;
        op->put_handed = false;
        cb(c, 0, ud);
    }
    return 0;
}

static void drive(struct ldg_pg *c, int events)
{
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pq)) {
            fail_conn(c, -ECONNRESET, "receive failed: %s", PQerrorMessage(c->pq));
            return;
        }
        if (!check_alive(c))
            return;
        PGnotify *n;
        while ((n = PQnotifies(c->pq)))
            PQfreemem(n); /* we never LISTEN; keep the queue empty */
    }
    if (c->state == LDG_PG_BUSY || c->state == LDG_PG_COPY_IN) {
        if (c->want_write || (events & UV_WRITABLE) || copy_needs_write(c)) {
            if (write_step(c) < 0 || c->closing || !c->pq)
                return;
        }
    }
    if (c->state == LDG_PG_BUSY)
        read_results(c);
    update_poll(c);
}

/* ---- connect ------------------------------------------------------------------------------ */

static void connect_step(struct ldg_pg *c)
{
    if (c->pw) {
        uv_poll_stop(&c->pw->poll); /* libpq may close this fd inside PQconnectPoll */
        c->pw->events = 0;
    }
    PostgresPollingStatusType st = PQconnectPoll(c->pq);
    int fd = PQsocket(c->pq);
    if (c->pw && c->pw->fd != fd)
        poll_detach(c);
    switch (st) {
    case PGRES_POLLING_OK:
        uv_timer_stop(&c->timer);
        c->fd = fd;
        if (!c->pw && poll_attach(c, fd) < 0) {
            fail_conn(c, -ECONNRESET, "cannot watch socket %d", fd);
            return;
        }
        poll_set(c, UV_READABLE);
        ldg_log_debug(c->ctx, "connected");
        set_state(c, LDG_PG_IDLE); /* last: the hook may start an operation */
        return;
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        if (!c->pw) {
            int rc = fd < 0 ? -EBADF : poll_attach(c, fd);
            if (rc < 0) {
                fail_conn(c, -ECONNRESET, "cannot watch socket %d: %s", fd, uv_strerror(rc));
                return;
            }
        }
        poll_set(c, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
        return;
    case PGRES_POLLING_FAILED:
    default:
        fail_conn(c, -ECONNRESET, "connect failed: %s", PQerrorMessage(c->pq));
        return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pollw *pw = (struct pollw *)h;
    struct ldg_pg *c = pw->c;
    if (c->pw != pw || c->closing || !c->pq)
        return;
    if (status < 0) {
        /* libuv reports socket errors as a status and stops the handle: let libpq read the
         * error itself (it says why), and drop the connection if it somehow does not. */
        pw->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (c->state == LDG_PG_CONNECTING) {
        connect_step(c);
    } else {
        drive(c, events);
        if (status < 0 && !c->closing && c->state != LDG_PG_BROKEN)
            fail_conn(c, -ECONNRESET, "socket error: %s", uv_strerror(status));
    }
}

static void on_timer(uv_timer_t *t)
{
    struct ldg_pg *c = ldg_container_of(t, struct ldg_pg, timer);
    if (c->closing)
        return;
    switch (c->state) {
    case LDG_PG_CONNECTING:
        if (c->early_fail)
            fail_conn(c, -ECONNRESET, "connect failed: %s", c->lasterr);
        else
            fail_conn(c, -ETIMEDOUT, "connect timed out after %lld ms",
                      (long long)c->cfg->connect_timeout_ms);
        break;
    case LDG_PG_BUSY:
    case LDG_PG_COPY_IN:
        fail_conn(c, -ETIMEDOUT, "operation timed out after %lld ms", (long long)op_deadline_ms(c));
        break;
    default:
        break;
    }
}

static void on_notice(void *arg, const char *message)
{
    struct ldg_pg *c = arg;
    if (LDG_LOG_DEBUG >= ldg_log_min_level) {
        char buf[512];
        copy_msg(buf, sizeof buf, message);
        ldg_log_debug(c->ctx, "server notice: %s", buf);
    }
}

struct ldg_pg *ldg_pg_new(uv_loop_t *loop, const struct ldg_pg_cfg *cfg, const char *password,
                          const char *logctx, ldg_pg_state_cb on_state, void *ud)
{
    struct ldg_pg *c = ldg_calloc(1, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    c->ctx = ldg_strdup(logctx ? logctx : "pg=default");
    c->fd = -1;
    c->state = LDG_PG_CONNECTING;
    c->on_state = on_state;
    c->ud = ud;
    uv_timer_init(loop, &c->timer);
    c->handles = 1;

    char port[16], options[64];
    snprintf(port, sizeof port, "%lld", (long long)cfg->port);
    snprintf(options, sizeof options, "-c statement_timeout=%lld", (long long)cfg->statement_timeout_ms);
    const char *keys[9], *vals[9];
    int k = 0;
    keys[k] = "host", vals[k++] = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    keys[k] = "port", vals[k++] = port;
    keys[k] = "dbname", vals[k++] = cfg->dbname && *cfg->dbname ? cfg->dbname : "postgres";
    keys[k] = "user", vals[k++] = cfg->user && *cfg->user ? cfg->user : "postgres";
    keys[k] = "options", vals[k++] = options;
    keys[k] = "application_name", vals[k++] = "ledgerd";
    keys[k] = "client_encoding", vals[k++] = "UTF8";
    if (password && *password)
        keys[k] = "password", vals[k++] = password;
    keys[k] = NULL, vals[k] = NULL;

    c->pq = PQconnectStartParams(keys, vals, 0);
    if (!c->pq)
        ldg_panic("PQconnectStartParams: out of memory");
    PQsetNoticeProcessor(c->pq, on_notice, c);
    if (PQstatus(c->pq) == CONNECTION_BAD || PQsetnonblocking(c->pq, 1) != 0) {
        /* Report through the owner's hook like any other failure, never from inside this call. */
        copy_msg(c->lasterr, sizeof c->lasterr, PQerrorMessage(c->pq));
        c->early_fail = true;
        uv_timer_start(&c->timer, on_timer, 0, 0);
        return c;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)cfg->connect_timeout_ms, 0);
    /* Right after PQconnectStart, behave as if PQconnectPoll had returned PGRES_POLLING_WRITING. */
    int fd = PQsocket(c->pq);
    int rc = fd < 0 ? -EBADF : poll_attach(c, fd);
    if (rc < 0) {
        snprintf(c->lasterr, sizeof c->lasterr, "cannot watch socket: %s", uv_strerror(rc));
        c->early_fail = true;
        uv_timer_start(&c->timer, on_timer, 0, 0);
        return c;
    }
    poll_set(c, UV_WRITABLE);
    return c;
}

/* ---- public operations -------------------------------------------------------------------- */

static int can_start(const struct ldg_pg *c)
{
    if (c->closing || c->state == LDG_PG_CONNECTING)
        return -ENOTCONN;
    if (c->state == LDG_PG_BROKEN || !c->pq)
        return -ECONNRESET;
    if (c->state != LDG_PG_IDLE)
        return -EBUSY;
    return 0;
}

/* A send failed inside a public call: no callback will ever run for it; the connection is
 * broken (the owner hears it through on_state). */
static int send_failed(struct ldg_pg *c, struct op *op, const char *what)
{
    char msg[300];
    copy_msg(msg, sizeof msg, PQerrorMessage(c->pq));
    free_op(op);
    fail_conn(c, -ECONNRESET, "%s failed: %s", what, msg);
    return -ECONNRESET;
}

static void start_op(struct ldg_pg *c, struct op *op, bool want_write)
{
    c->op = *op;
    c->want_write = want_write;
    arm_deadline(c, op_deadline_ms(c));
    set_state(c, LDG_PG_BUSY);
    update_poll(c);
}

int ldg_pg_pipeline(struct ldg_pg *c, const struct ldg_pg_stmt *stmts, size_t n)
{
    int rc = can_start(c);
    if (rc < 0)
        return rc;
    if (n == 0 || n > LDG_PG_MAX_PIPELINE || !stmts)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!stmts[i].sql || !stmts[i].cb || stmts[i].nparams < 0 || stmts[i].nparams > 65535 ||
            (stmts[i].nparams > 0 && !stmts[i].params) || (stmts[i].name && !*stmts[i].name))
            return -EINVAL;

    struct op op = {.kind = OP_STMTS, .n = (uint32_t)n};
    op.slots = ldg_calloc(n, sizeof *op.slots);
    op.exp = ldg_calloc(2 * n, sizeof *op.exp);
    if (!PQenterPipelineMode(c->pq))
        return send_failed(c, &op, "entering pipeline mode");
    for (size_t i = 0; i < n; i++) {
        const struct ldg_pg_stmt *st = &stmts[i];
        op.slots[i].cb = st->cb;
        op.slots[i].ud = st->ud;
        int ok;
        if (st->name) {
            if (!is_prepared(c, st->name)) {
                if (!PQsendPrepare(c->pq, st->name, st->sql, st->nparams, NULL))
                    return send_failed(c, &op, "prepare");
                add_prepared(c, st->name);
                op.exp[op.nexp++] = (struct expect){EXP_PREPARE, (uint32_t)i, c->prepared->name};
            }
            ok = PQsendQueryPrepared(c->pq, st->name, st->nparams, st->params, NULL, NULL, 0);
        } else {
            ok = PQsendQueryParams(c->pq, st->sql, st->nparams, NULL, st->params, NULL, NULL, 0);
        }
        if (!ok)
            return send_failed(c, &op, "send");
        op.exp[op.nexp++] = (struct expect){EXP_EXEC, (uint32_t)i, NULL};
    }
    if (!PQpipelineSync(c->pq))
        return send_failed(c, &op, "sync");
    int f = PQflush(c->pq);
    if (f < 0)
        return send_failed(c, &op, "flush");
    start_op(c, &op, f == 1);
    return 0;
}

int ldg_pg_query(struct ldg_pg *c, const char *sql, int nparams, const char *const *params, ldg_pg_cb cb,
                 void *ud)
{
    struct ldg_pg_stmt st = {sql, NULL, nparams, params, cb, ud};
    return ldg_pg_pipeline(c, &st, 1);
}

int ldg_pg_query_prepared(struct ldg_pg *c, const char *name, const char *sql, int nparams,
                          const char *const *params, ldg_pg_cb cb, void *ud)
{
    if (!name)
        return -EINVAL;
    struct ldg_pg_stmt st = {sql, name, nparams, params, cb, ud};
    return ldg_pg_pipeline(c, &st, 1);
}

int ldg_pg_copy_start(struct ldg_pg *c, const char *sql, ldg_pg_cb cb, void *ud)
{
    int rc = can_start(c);
    if (rc < 0)
        return rc;
    if (!sql || !cb)
        return -EINVAL;
    struct op op = {.kind = OP_COPY, .n = 1};
    op.slots = ldg_calloc(1, sizeof *op.slots);
    op.slots[0].cb = cb;
    op.slots[0].ud = ud;
    if (!PQsendQueryParams(c->pq, sql, 0, NULL, NULL, NULL, NULL, 0))
        return send_failed(c, &op, "COPY start");
    int f = PQflush(c->pq);
    if (f < 0)
        return send_failed(c, &op, "flush");
    start_op(c, &op, f == 1);
    return 0;
}

static int copy_check(const struct ldg_pg *c)
{
    if (c->closing)
        return -ENOTCONN;
    if (c->state == LDG_PG_BROKEN || !c->pq)
        return -ECONNRESET;
    if (c->state != LDG_PG_COPY_IN || c->op.kind != OP_COPY || c->op.end_wanted)
        return -EINVAL;
    if (c->op.put_cb)
        return -EBUSY;
    return 0;
}

int ldg_pg_copy_put(struct ldg_pg *c, const void *data, size_t len, ldg_pg_copy_cb cb, void *ud)
{
    int rc = copy_check(c);
    if (rc < 0)
        return rc;
    if (!cb || !data || len == 0 || len > INT_MAX)
        return -EINVAL;
    /* Written from the next writable event, so cb never runs inside this call. */
    c->op.put_data = data;
    c->op.put_len = len;
    c->op.put_cb = cb;
    c->op.put_ud = ud;
    c->op.put_handed = false;
    update_poll(c);
    return 0;
}

int ldg_pg_copy_end(struct ldg_pg *c, const char *errmsg, ldg_pg_cb cb, void *ud)
{
    int rc = copy_check(c);
    if (rc < 0)
        return rc;
    if (!cb)
        return -EINVAL;
    c->op.slots[0].cb = cb;
    c->op.slots[0].ud = ud;
    c->op.end_wanted = true;
    c->op.end_errmsg = errmsg ? ldg_strdup(errmsg) : NULL;
    update_poll(c);
    return 0;
}

/* ---- accessors and close ------------------------------------------------------------------- */

enum ldg_pg_state ldg_pg_state(const struct ldg_pg *c)
{
    return c->closing ? LDG_PG_BROKEN : c->state;
}

void *ldg_pg_data(const struct ldg_pg *c)
{
    return c->ud;
}

bool ldg_pg_in_transaction(const struct ldg_pg *c)
{
    return c->pq && c->state == LDG_PG_IDLE && PQtransactionStatus(c->pq) != PQTRANS_IDLE;
}

uint64_t ldg_pg_errors(const struct ldg_pg *c)
{
    return c->errors;
}

const char *ldg_pg_last_error(const struct ldg_pg *c)
{
    return c->lasterr;
}

static void maybe_free(struct ldg_pg *c)
{
    if (!c->closing || c->handles)
        return;
    ldg_pg_closed_cb cb = c->on_closed;
    void *ud = c->closed_ud;
    while (c->prepared) {
        struct prep *p = c->prepared;
        c->prepared = p->next;
        free(p);
    }
    free(c->ctx);
    free(c);
    if (cb)
        cb(ud);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ldg_pg *c = ldg_container_of((uv_timer_t *)h, struct ldg_pg, timer);
    c->handles--;
    maybe_free(c);
}

void ldg_pg_close(struct ldg_pg *c, ldg_pg_closed_cb on_closed, void *ud)
{
    LDG_ASSERT(!c->closing);
    c->closing = true;
    c->on_closed = on_closed;
    c->closed_ud = ud;
    struct op op = detach_op(c);
    poll_detach(c); /* before PQfinish closes the fd */
    if (c->pq) {
        PQfinish(c->pq);
        c->pq = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    fail_op(c, &op, -ECANCELED, "connection closed");
}

const char *ldg_pg_connect_cause(const char *m)
{
    if (!m)
        return "server unreachable";
    if (strstr(m, "authentication failed") || (strstr(m, "role \"") && strstr(m, "does not exist")) ||
        strstr(m, "no pg_hba.conf entry") || strstr(m, "no password supplied") ||
        strstr(m, "password is too long") || strstr(m, "is not permitted to log in"))
        return "authentication failed";
    if (strstr(m, "database \"") && strstr(m, "does not exist"))
        return "database missing";
    if (strstr(m, "too many clients") || strstr(m, "starting up") || strstr(m, "shutting down") ||
        strstr(m, "in recovery mode") || strstr(m, "remaining connection slots"))
        return "server refused the connection";
    return "server unreachable";
}
