/*
 * redis.c: hiredis 0.14 async contexts on our own uv_poll_t adapter, with client-side deadlines.
 *
 * Both public types embed a `struct link`, which owns one hiredis context at a time plus one
 * timer. The link's state says what the timer means:
 *   WAIT_RETRY  no context; the timer is the jittered reconnect delay
 *   CONNECTING  context exists, TCP connect or AUTH/SELECT in progress; the timer is the connect
 *               deadline
 *   READY       the timer checks the oldest pending entry's deadline (entries are FIFO and all
 *               have the same timeout, so the head always expires first: one timer, O(1))
 *   CLOSING     the owner called close; nothing restarts
 *
 * Lifetime of a hiredis context (the part the stock 0.14 adapter gets wrong):
 *   - hiredis frees the context itself on every error path: 0.14.1 calls every pending reply
 *     callback with NULL, then our `cleanup` hook, then the disconnect callback (1.x calls
 *     `cleanup` first, and possibly twice). We never free a context hiredis is freeing; we learn
 *     that it is gone from `cleanup` (context_gone), which is idempotent and does not depend on
 *     that order: command entries are always answered (and freed) by hiredis's own NULL
 *     callbacks, context_gone only drops the pub/sub confirmation entries, which are ours.
 *   - We drop a context (timeout, AUTH failure, close) with redisAsyncFree. From inside a reply
 *     callback hiredis defers that until the callback returns (REDIS_IN_CALLBACK). From the
 *     connect callback it would not (0.14 does not set the flag there), so nothing that can free
 *     runs inside on_connect: a failing handshake is left to the connect deadline.
 *   - The poll handle is its own heap object (struct pollw) closed from `cleanup` and freed in its
 *     close callback, so a late poll event after the context died finds pw->ac == NULL.
 *   - The link itself is freed only in a close callback, once every handle it opened is closed,
 *     and after hiredis is done with the context (a deferred free completes on the same stack as
 *     the close call, so before any close callback can run).
 */
#include "db/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "db/backoff.h"

/* clang-format off */
const struct ldg_cfg_key ldg_redis_cfg_keys[] = {
    {"host", LDG_CFG_STR, offsetof(struct ldg_redis_cfg, host), "127.0.0.1", 0, 0, NULL, LDG_CFG_RESTART,
     "Redis IP address, or a unix socket path starting with /"},
    {"port", LDG_CFG_INT, offsetof(struct ldg_redis_cfg, port), "6379", 1, 65535, NULL, LDG_CFG_RESTART,
     "Redis TCP port"},
    {"password_file", LDG_CFG_PATH, offsetof(struct ldg_redis_cfg, password_file), "", 0, 0, NULL,
     LDG_CFG_RESTART, "file holding the Redis password (AUTH); empty for none"},
    {"db", LDG_CFG_INT, offsetof(struct ldg_redis_cfg, db), "0", 0, 65535, NULL, LDG_CFG_RESTART,
     "database number SELECTed after connecting"},
    {"connect_timeout_ms", LDG_CFG_MS, offsetof(struct ldg_redis_cfg, connect_timeout_ms), "2000", 10, 600000,
     NULL, LDG_CFG_RESTART, "deadline for TCP connect plus AUTH and SELECT"},
    {"command_timeout_ms", LDG_CFG_MS, offsetof(struct ldg_redis_cfg, command_timeout_ms), "2000", 10, 600000,
     NULL, LDG_CFG_RESTART, "deadline for every reply; a late reply drops and reconnects"},
    {"reconnect_min_ms", LDG_CFG_MS, offsetof(struct ldg_redis_cfg, reconnect_min_ms), "100", 1, 600000, NULL,
     LDG_CFG_RESTART, "first reconnect delay (jittered, doubling on each failure)"},
    {"reconnect_max_ms", LDG_CFG_MS, offsetof(struct ldg_redis_cfg, reconnect_max_ms), "5000", 1, 3600000,
     NULL, LDG_CFG_RESTART, "longest reconnect delay"},
    {"max_pending", LDG_CFG_INT, offsetof(struct ldg_redis_cfg, max_pending), "10000", 1, 10000000, NULL,
     LDG_CFG_RESTART, "commands in flight per connection before callers get 503"},
    {"project_shards", LDG_CFG_LIST, offsetof(struct ldg_redis_cfg, project_shards), "", 0, 0, NULL,
     LDG_CFG_RESTART,
     "[redis] only: projects pinned to a shard, as project_id:shard pairs (42:1, 7:2); others go by a "
     "consistent hash of the project id ([redis] is shard 0, [redis.1] shard 1, ...)"},
    {0},
};
/* clang-format on */

enum link_state { ST_WAIT_RETRY, ST_CONNECTING, ST_READY, ST_CLOSING };

struct link;

/* Our hiredis event adapter: one per context. */
struct pollw {
    uv_poll_t poll;         /* first: (struct pollw *)handle */
    uv_check_t flush;       /* deferred write, see ev_add_write */
    uv_prepare_t flush_pre; /* the same write for commands issued after the check phase */
    unsigned open;          /* handles of this object not closed yet; freed at 0 */
    struct link *l;         /* borrowed: for handle accounting; outlives this object */
    redisAsyncContext *ac;  /* borrowed: NULL once hiredis called cleanup */
    int events;             /* UV_READABLE | UV_WRITABLE armed on the poll handle */
    bool armed;             /* events has been applied to the poll handle once */
    bool flush_armed;       /* the check handle will write the output buffer */
    bool in_flush;
};

/* A command waiting for its reply, or (cb == NULL) a pub/sub confirmation. */
struct pending {
    struct ldg_list_node node; /* on link->pending, FIFO = deadline order */
    uint64_t deadline;         /* uv_now() based, ms */
    struct link *l;            /* borrowed */
    ldg_redis_cb cb;
    void *ud;
};

struct link {
    uv_loop_t *loop;                 /* borrowed */
    const struct ldg_redis_cfg *cfg; /* borrowed, immutable */
    char *password;                  /* owned; NULL = no AUTH */
    char *ctx;                       /* owned: "redis=<name> kind=cmd|sub" log fields */
    enum link_state state;
    redisAsyncContext *ac; /* owned by hiredis; NULL when none */
    bool dropping;         /* redisAsyncFree requested for ac */
    bool is_sub;
    char why[160];           /* reason of the current drop, for the log line */
    uv_timer_t timer;        /* see the file comment */
    unsigned handles;        /* open uv handles (timer + pollw), freed at 0 */
    unsigned handshake_left; /* AUTH/SELECT replies still expected */
    struct ldg_backoff backoff;
    struct ldg_list pending; /* struct pending, FIFO */
    uint64_t errors;
    ldg_redis_closed_cb on_closed;
    void *closed_ud;
};

struct ldg_redis {
    struct link l; /* first */
};

struct chan {
    struct ldg_list_node node; /* on ldg_redis_sub.channels */
    size_t len;
    char name[];
};

/* A caller waiting until the (UN)SUBSCRIBEs sent before it are confirmed. */
struct barrier {
    struct ldg_list_node node; /* on ldg_redis_sub.barriers, FIFO = target order */
    uint64_t target;           /* confirmations of this connection it waits for */
    ldg_redis_sub_barrier_cb cb;
    void *ud;
};

struct ldg_redis_sub {
    struct link l; /* first */
    ldg_redis_msg_cb on_message;
    void *ud;
    struct ldg_list channels; /* struct chan, owned: the set to (re)subscribe */
    struct ldg_list barriers; /* struct barrier, owned */
    uint64_t sent, confirmed; /* (UN)SUBSCRIBEs of the current connection */
};

static void start_connect(struct link *l);
static void on_timer(uv_timer_t *t);
static void subscribe_all(struct ldg_redis_sub *s);
static void fail_barriers(struct link *l);

/* ---- adapter hooks ---------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events);

/* Arm the poll handle for pw->events if they changed. hiredis asks for reads again after every
 * read and write; uv_poll_start costs an epoll_ctl at the next poll even when nothing changes. */
static void ev_set(struct pollw *pw, int events)
{
    if (events == pw->events && pw->armed)
        return;
    pw->events = events;
    pw->armed = true;
    if (!pw->ac)
        return;
    if (pw->events)
        uv_poll_start(&pw->poll, pw->events, on_poll);
    else
        uv_poll_stop(&pw->poll);
}

static void ev_add_read(void *p)
{
    struct pollw *pw = p;
    ev_set(pw, pw->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    struct pollw *pw = p;
    ev_set(pw, pw->events & ~UV_READABLE);
}

static void flush_now(struct pollw *pw)
{
    uv_check_stop(&pw->flush);
    uv_prepare_stop(&pw->flush_pre);
    pw->flush_armed = false;
    if (!pw->ac)
        return;
    pw->in_flush = true;
    redisAsyncHandleWrite(pw->ac); /* may drop the context: pw lives until its close callbacks */
    pw->in_flush = false;
}

static void on_flush(uv_check_t *h)
{
    flush_now(h->data);
}

static void on_flush_pre(uv_prepare_t *h)
{
    flush_now(h->data);
}

/* hiredis wants to write. Once connected, commands issued during one loop iteration are written
 * together by one write(2) at the end of it (a uv_check handle), without arming the poll handle
 * for writability: toggling it cost two epoll_ctl calls per batch of commands. Only when that
 * write leaves bytes behind (socket buffer full) is writability really waited for. Commands
 * issued after the check phase, or before the poll (timers, check and close callbacks), are
 * written by a prepare handle before the loop blocks in poll; whichever runs first writes. */
static void ev_add_write(void *p)
{
    struct pollw *pw = p;
    if (pw->ac && (pw->ac->c.flags & REDIS_CONNECTED) && !pw->in_flush) {
        if (!pw->flush_armed) {
            pw->flush_armed = true;
            uv_check_start(&pw->flush, on_flush);
            uv_prepare_start(&pw->flush_pre, on_flush_pre);
        }
        return;
    }
    ev_set(pw, pw->events | UV_WRITABLE);
}

static void ev_del_write(void *p)
{
    struct pollw *pw = p;
    ev_set(pw, pw->events & ~UV_WRITABLE);
}

static void maybe_free(struct link *l);

static void on_poll_closed(uv_handle_t *h)
{
    struct pollw *pw = h->data;
    if (--pw->open > 0)
        return;
    struct link *l = pw->l;
    free(pw);
    l->handles--;
    maybe_free(l);
}

static void context_gone(struct link *l, redisAsyncContext *ac);

/* hiredis is freeing the context: stop watching the fd now (hiredis closes it right after this
 * returns), and let the link react. Idempotent (hiredis 1.x may call it twice). */
static void ev_cleanup(void *p)
{
    struct pollw *pw = p;
    redisAsyncContext *ac = pw->ac;
    if (!ac)
        return;
    pw->ac = NULL;
    ac->ev.data = NULL;
    ac->ev.addRead = ac->ev.delRead = ac->ev.addWrite = ac->ev.delWrite = NULL;
    ac->ev.cleanup = NULL;
    uv_close((uv_handle_t *)&pw->poll, on_poll_closed);
    uv_close((uv_handle_t *)&pw->flush, on_poll_closed);
    uv_close((uv_handle_t *)&pw->flush_pre, on_poll_closed);
    context_gone(pw->l, ac);
}

static void drop(struct link *l, const char *fmt, ...) LDG_PRINTF(2, 3);

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pollw *pw = (struct pollw *)h;
    if (!pw->ac)
        return;
    if (status < 0) {
        /* libuv reports a socket error (e.g. a refused connect) as a status; let hiredis read the
         * real error from the socket so the log says why. */
        if (pw->ac->c.flags & REDIS_CONNECTED)
            redisAsyncHandleRead(pw->ac);
        else
            redisAsyncHandleWrite(pw->ac);
        if (pw->ac)
            drop(pw->l, "poll error: %s", uv_strerror(status));
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(pw->ac);
    if (pw->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(pw->ac);
}

/* ---- connection lifecycle --------------------------------------------------------------- */

/* Drop the pub/sub confirmation entries of a dead context. Command entries (cb != NULL) are not
 * ours to free: hiredis answers each of them with NULL while it frees the context. */
static void drop_confirmations(struct link *l)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&l->pending, it, tmp)
    {
        struct pending *p = ldg_container_of(it, struct pending, node);
        if (!p->cb) {
            ldg_list_remove(&l->pending, it);
            free(p);
        }
    }
}

static void schedule_retry(struct link *l)
{
    uint64_t delay = ldg_backoff_next(&l->backoff);
    l->state = ST_WAIT_RETRY;
    uv_timer_start(&l->timer, on_timer, delay, 0);
}

static bool is_pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

/* The context is gone (hiredis is freeing it right now; `ac` stays readable until we return). */
static void context_gone(struct link *l, redisAsyncContext *ac)
{
    enum link_state was = l->state;
    if (l->ac == ac)
        l->ac = NULL;
    l->dropping = false;
    const char *why = l->why[0] ? l->why : (ac->errstr && ac->errstr[0] ? ac->errstr : "disconnected");
    if (was == ST_READY) {
        l->errors++;
        ldg_log_warn(l->ctx, "connection lost: %s", why);
    } else if (was == ST_CONNECTING) {
        l->errors++;
        uint32_t n = l->backoff.failures + 1;
        if (is_pow2(n))
            ldg_log_warn(l->ctx, "connect failed (attempt %u): %s", n, why);
        else
            ldg_log_debug(l->ctx, "connect failed (attempt %u): %s", n, why);
    }
    l->why[0] = '\0';
    if (was != ST_CLOSING) {
        /* With hiredis 1.x the NULL reply callbacks run after this: one that retries then gets
         * -ENOTCONN from the state; with 0.14 it gets it from hiredis (REDIS_DISCONNECTING). */
        l->state = ST_WAIT_RETRY;
        schedule_retry(l);
    }
    drop_confirmations(l);
    fail_barriers(l);
}

/* Drop the current context (deadline, failed handshake, poll error). Safe from any callback:
 * hiredis defers the free while it runs one of our reply callbacks. */
static void drop(struct link *l, const char *fmt, ...)
{
    if (!l->ac || l->dropping)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->why, sizeof l->why, fmt, ap);
    va_end(ap);
    l->dropping = true;
    redisAsyncFree(l->ac);
}

/* The backoff restarts from reconnect_min_ms only once the server has answered something: a
 * server that accepts connections but never replies (stalled, DEBUG SLEEP, overloaded) must not
 * be reconnected to at the minimum delay forever. */
static void server_answered(struct link *l)
{
    ldg_backoff_reset(&l->backoff);
}

static void become_ready(struct link *l)
{
    l->state = ST_READY;
    uv_timer_stop(&l->timer);
    ldg_log_info(l->ctx, "connected");
    if (l->is_sub)
        subscribe_all((struct ldg_redis_sub *)l);
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct link *l = ac->data;
    redisReply *r = reply;
    if (!r || l->state != ST_CONNECTING || l->dropping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        drop(l, "handshake refused: %.*s", (int)LDG_MIN(r->len, 120), r->str);
        return;
    }
    server_answered(l);
    if (--l->handshake_left == 0)
        become_ready(l);
}

/* hiredis 0.14 does not mark this callback as "in callback", so freeing the context from here
 * would be a use after free: everything that can fail is left to the connect deadline. */
static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)(uintptr_t)cac;
    struct link *l = ac->data;
    if (status != REDIS_OK) {
        snprintf(l->why, sizeof l->why, "%s", ac->errstr ? ac->errstr : "connect error");
        return; /* hiredis frees the context next; context_gone schedules the retry */
    }
    l->handshake_left = 0;
    if (l->password) {
        if (redisAsyncCommand(ac, on_handshake, NULL, "AUTH %s", l->password) == REDIS_OK)
            l->handshake_left++;
    }
    if (!l->is_sub && l->cfg->db != 0) {
        if (redisAsyncCommand(ac, on_handshake, NULL, "SELECT %lld", (long long)l->cfg->db) == REDIS_OK)
            l->handshake_left++;
    }
    if (l->handshake_left == 0)
        become_ready(l);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status; /* everything was handled in context_gone, which hiredis called just before */
}

static void start_connect(struct link *l)
{
    const char *host = l->cfg->host && l->cfg->host[0] ? l->cfg->host : "127.0.0.1";
    l->state = ST_CONNECTING;
    l->why[0] = '\0';
    redisAsyncContext *ac =
        host[0] == '/' ? redisAsyncConnectUnix(host) : redisAsyncConnect(host, (int)l->cfg->port);
    if (!ac)
        ldg_panic("redisAsyncConnect: out of memory");
    struct pollw *pw = NULL;
    int rc = 0;
    if (!ac->err) {
        pw = ldg_calloc(1, sizeof *pw);
        rc = uv_poll_init(l->loop, &pw->poll, ac->c.fd);
        if (rc < 0) {
            free(pw); /* never initialised: no close needed */
            pw = NULL;
        } else {
            uv_check_init(l->loop, &pw->flush);
            uv_prepare_init(l->loop, &pw->flush_pre);
            pw->poll.data = pw->flush.data = pw->flush_pre.data = pw;
            pw->open = 3;
        }
    }
    if (!pw) {
        l->errors++;
        uint32_t n = l->backoff.failures + 1;
        const char *why = ac->err ? ac->errstr : uv_strerror(rc);
        if (is_pow2(n))
            ldg_log_warn(l->ctx, "connect failed (attempt %u): %s", n, why);
        redisAsyncFree(ac); /* no hooks attached: a plain free */
        schedule_retry(l);
        return;
    }
    pw->l = l;
    pw->ac = ac;
    l->handles++;
    ac->data = l;
    ac->ev.data = pw;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    l->ac = ac;
    l->dropping = false;
    uv_timer_start(&l->timer, on_timer, (uint64_t)l->cfg->connect_timeout_ms, 0);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    redisAsyncSetConnectCallback(ac, on_connect); /* arms the write watch that detects connect */
}

static void check_deadlines(struct link *l)
{
    struct ldg_list_node *n = ldg_list_first(&l->pending);
    if (!n)
        return;
    struct pending *p = ldg_container_of(n, struct pending, node);
    uint64_t now = uv_now(l->loop);
    if (p->deadline <= now) {
        drop(l, "%s timed out after %lld ms (%zu pending)", p->cb ? "command" : "subscription",
             (long long)l->cfg->command_timeout_ms, l->pending.count);
        return;
    }
    uv_timer_start(&l->timer, on_timer, p->deadline - now, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct link *l = ldg_container_of(t, struct link, timer);
    switch (l->state) {
    case ST_WAIT_RETRY:
        start_connect(l);
        break;
    case ST_CONNECTING:
        drop(l, "connect timed out after %lld ms", (long long)l->cfg->connect_timeout_ms);
        break;
    case ST_READY:
        check_deadlines(l);
        break;
    case ST_CLOSING:
        break;
    }
}

static void arm_deadline(struct link *l)
{
    if (!uv_is_active((uv_handle_t *)&l->timer))
        uv_timer_start(&l->timer, on_timer, (uint64_t)l->cfg->command_timeout_ms, 0);
}

static struct pending *push_pending(struct link *l, ldg_redis_cb cb, void *ud)
{
    struct pending *p = ldg_malloc(sizeof *p);
    p->deadline = uv_now(l->loop) + (uint64_t)l->cfg->command_timeout_ms;
    p->l = l;
    p->cb = cb;
    p->ud = ud;
    ldg_list_push_back(&l->pending, &p->node);
    arm_deadline(l);
    return p;
}

static void link_init(struct link *l, uv_loop_t *loop, const struct ldg_redis_cfg *cfg, const char *password,
                      const char *name, bool is_sub)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->cfg = cfg;
    l->password = password && *password ? ldg_strdup(password) : NULL;
    l->ctx = ldg_asprintf("redis=%s kind=%s", name && *name ? name : "default", is_sub ? "sub" : "cmd");
    l->is_sub = is_sub;
    ldg_list_init(&l->pending);
    ldg_backoff_init(&l->backoff, cfg->reconnect_min_ms, cfg->reconnect_max_ms,
                     uv_hrtime() ^ (uint64_t)(uintptr_t)l);
    uv_timer_init(loop, &l->timer);
    l->handles = 1;
    start_connect(l);
}

static void maybe_free(struct link *l)
{
    if (l->state != ST_CLOSING || l->handles || l->ac)
        return;
    LDG_ASSERT(ldg_list_empty(&l->pending));
    ldg_redis_closed_cb cb = l->on_closed;
    void *ud = l->closed_ud;
    if (l->is_sub) {
        struct ldg_redis_sub *s = (struct ldg_redis_sub *)l;
        struct ldg_list_node *n;
        while ((n = ldg_list_pop_front(&s->channels)))
            free(ldg_container_of(n, struct chan, node));
    }
    free(l->password);
    free(l->ctx);
    free(l);
    if (cb)
        cb(ud);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct link *l = ldg_container_of((uv_timer_t *)h, struct link, timer);
    l->handles--;
    maybe_free(l);
}

static void link_close(struct link *l, ldg_redis_closed_cb on_closed, void *ud)
{
    LDG_ASSERT(l->state != ST_CLOSING);
    l->state = ST_CLOSING;
    l->on_closed = on_closed;
    l->closed_ud = ud;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
    if (l->ac && !l->dropping) {
        snprintf(l->why, sizeof l->why, "closed");
        l->dropping = true;
        redisAsyncFree(l->ac); /* pending callbacks get NULL, now or when the current one returns */
    }
    if (!l->ac) {
        drop_confirmations(l);
        fail_barriers(l);
    }
}

/* ---- command connection ----------------------------------------------------------------- */

struct ldg_redis *ldg_redis_new(uv_loop_t *loop, const struct ldg_redis_cfg *cfg, const char *password,
                                const char *name)
{
    struct ldg_redis *r = ldg_malloc(sizeof *r);
    link_init(&r->l, loop, cfg, password, name, false);
    return r;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    struct link *l = p->l;
    ldg_list_remove(&l->pending, &p->node);
    ldg_redis_cb cb = p->cb;
    void *ud = p->ud;
    free(p);
    if (!reply)
        l->errors++;
    else
        server_answered(l);
    cb((struct ldg_redis *)l, reply, ud);
}

static int can_issue(const struct link *l)
{
    if (l->state != ST_READY || !l->ac || l->dropping)
        return -ENOTCONN;
    if (l->pending.count >= (size_t)l->cfg->max_pending)
        return -EAGAIN;
    return 0;
}

static int issue_failed(struct link *l, struct pending *p)
{
    ldg_list_remove(&l->pending, &p->node);
    free(p);
    return (l->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? -ENOTCONN : -EINVAL;
}

int ldg_redis_command(struct ldg_redis *r, ldg_redis_cb cb, void *ud, const char *fmt, ...)
{
    if (!r)
        return -ENOTCONN; /* the worker's client is already closed (shutdown) */
    struct link *l = &r->l;
    int rc = can_issue(l);
    if (rc < 0)
        return rc;
    struct pending *p = push_pending(l, cb, ud);
    va_list ap;
    va_start(ap, fmt);
    rc = redisvAsyncCommand(l->ac, on_reply, p, fmt, ap);
    va_end(ap);
    return rc == REDIS_OK ? 0 : issue_failed(l, p);
}

int ldg_redis_commandargv(struct ldg_redis *r, ldg_redis_cb cb, void *ud, int argc, const char **argv,
                          const size_t *argvlen)
{
    if (!r)
        return -ENOTCONN; /* the worker's client is already closed (shutdown) */
    struct link *l = &r->l;
    if (argc <= 0 || !argv)
        return -EINVAL;
    int rc = can_issue(l);
    if (rc < 0)
        return rc;
    struct pending *p = push_pending(l, cb, ud);
    rc = redisAsyncCommandArgv(l->ac, on_reply, p, argc, argv, argvlen);
    return rc == REDIS_OK ? 0 : issue_failed(l, p);
}

bool ldg_redis_connected(const struct ldg_redis *r)
{
    return r && r->l.state == ST_READY && !r->l.dropping;
}

size_t ldg_redis_pending(const struct ldg_redis *r)
{
    return r ? r->l.pending.count : 0;
}

uint64_t ldg_redis_errors(const struct ldg_redis *r)
{
    return r->l.errors;
}

void ldg_redis_close(struct ldg_redis *r, ldg_redis_closed_cb on_closed, void *ud)
{
    link_close(&r->l, on_closed, ud);
}

/* ---- pub/sub connection ----------------------------------------------------------------- */

/* Take the first waiting barrier off the list and call it (it may add barriers, subscribe or close). */
static void barrier_end(struct ldg_redis_sub *s, bool ok)
{
    struct barrier *bar = ldg_container_of(ldg_list_pop_front(&s->barriers), struct barrier, node);
    ldg_redis_sub_barrier_cb cb = bar->cb;
    void *ud = bar->ud;
    free(bar);
    cb(s, ok, ud);
}

/* Every reply on a subscribed context comes here: messages, and the (un)subscribe confirmations,
 * which arrive in the order the commands were sent and pop the confirmation FIFO. */
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct ldg_redis_sub *s = privdata;
    struct link *l = &s->l;
    redisReply *r = reply;
    if (!r || l->state == ST_CLOSING || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcasecmp(kind, "message") == 0) {
        if (r->element[1]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING)
            s->on_message(s, r->element[1]->str, r->element[1]->len, r->element[2]->str, r->element[2]->len,
                          s->ud);
    } else if (strcasecmp(kind, "subscribe") == 0 || strcasecmp(kind, "unsubscribe") == 0) {
        struct ldg_list_node *n = ldg_list_pop_front(&l->pending);
        if (n)
            free(ldg_container_of(n, struct pending, node));
        server_answered(l);
        s->confirmed++;
        /* One at a time from the front: a callback may add barriers, subscribe or close. */
        struct ldg_list_node *b;
        while (l->state == ST_READY && (b = ldg_list_first(&s->barriers)) &&
               ldg_container_of(b, struct barrier, node)->target <= s->confirmed)
            barrier_end(s, true);
    }
}

/* The connection is gone or closing: its confirmations will not come. Every waiting barrier gets
 * ok = false, and the counts start again with the next connection. */
static void fail_barriers(struct link *l)
{
    if (!l->is_sub)
        return;
    struct ldg_redis_sub *s = (struct ldg_redis_sub *)l;
    s->sent = s->confirmed = 0;
    while (!ldg_list_empty(&s->barriers))
        barrier_end(s, false);
}

static void send_sub(struct ldg_redis_sub *s, const char *verb, const struct chan *c)
{
    struct link *l = &s->l;
    if (l->state != ST_READY || !l->ac || l->dropping)
        return;
    const char *argv[2] = {verb, c->name};
    size_t argvlen[2] = {strlen(verb), c->len};
    if (redisAsyncCommandArgv(l->ac, on_sub_reply, s, 2, argv, argvlen) == REDIS_OK) {
        push_pending(l, NULL, NULL);
        s->sent++;
    }
}

static void subscribe_all(struct ldg_redis_sub *s)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&s->channels, it, tmp)
    {
        send_sub(s, "SUBSCRIBE", ldg_container_of(it, struct chan, node));
    }
}

static struct chan *find_chan(const struct ldg_redis_sub *s, const char *name, size_t len)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&s->channels, it, tmp)
    {
        struct chan *c = ldg_container_of(it, struct chan, node);
        if (c->len == len && memcmp(c->name, name, len) == 0)
            return c;
    }
    return NULL;
}

struct ldg_redis_sub *ldg_redis_sub_new(uv_loop_t *loop, const struct ldg_redis_cfg *cfg,
                                        const char *password, const char *name, ldg_redis_msg_cb on_message,
                                        void *ud)
{
    struct ldg_redis_sub *s = ldg_malloc(sizeof *s);
    LDG_ASSERT(on_message != NULL);
    ldg_list_init(&s->channels);
    ldg_list_init(&s->barriers);
    s->sent = s->confirmed = 0;
    s->on_message = on_message;
    s->ud = ud;
    link_init(&s->l, loop, cfg, password, name, true);
    return s;
}

int ldg_redis_sub_subscribe(struct ldg_redis_sub *s, const char *channel)
{
    size_t len = channel ? strlen(channel) : 0;
    if (len == 0)
        return -EINVAL;
    if (s->l.state == ST_CLOSING)
        return -ENOTCONN;
    if (find_chan(s, channel, len))
        return 0;
    if (s->channels.count >= (size_t)s->l.cfg->max_pending)
        return -EAGAIN;
    struct chan *c = ldg_malloc(sizeof *c + len + 1);
    c->len = len;
    memcpy(c->name, channel, len + 1);
    ldg_list_push_back(&s->channels, &c->node);
    send_sub(s, "SUBSCRIBE", c);
    return 0;
}

int ldg_redis_sub_unsubscribe(struct ldg_redis_sub *s, const char *channel)
{
    size_t len = channel ? strlen(channel) : 0;
    struct chan *c = len ? find_chan(s, channel, len) : NULL;
    if (!c)
        return -ENOENT;
    ldg_list_remove(&s->channels, &c->node);
    send_sub(s, "UNSUBSCRIBE", c);
    free(c);
    return 0;
}

int ldg_redis_sub_barrier(struct ldg_redis_sub *s, ldg_redis_sub_barrier_cb cb, void *ud)
{
    const struct link *l = &s->l;
    if (l->state != ST_READY || !l->ac || l->dropping)
        return -ENOTCONN;
    if (s->confirmed >= s->sent)
        return 1;
    struct barrier *bar = ldg_malloc(sizeof *bar);
    bar->target = s->sent;
    bar->cb = cb;
    bar->ud = ud;
    ldg_list_push_back(&s->barriers, &bar->node);
    return 0;
}

bool ldg_redis_sub_connected(const struct ldg_redis_sub *s)
{
    return s->l.state == ST_READY && !s->l.dropping;
}

size_t ldg_redis_sub_channels(const struct ldg_redis_sub *s)
{
    return s->channels.count;
}

uint64_t ldg_redis_sub_errors(const struct ldg_redis_sub *s)
{
    return s->l.errors;
}

void ldg_redis_sub_close(struct ldg_redis_sub *s, ldg_redis_closed_cb on_closed, void *ud)
{
    link_close(&s->l, on_closed, ud);
}

/* ---- Lua scripts ------------------------------------------------------------------------- */

void ldg_redis_script_init(struct ldg_redis_script *s, const char *body)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA_DIGEST_LENGTH];
    s->body = body;
    s->len = strlen(body);
    SHA1((const unsigned char *)body, s->len, d);
    for (size_t i = 0; i < sizeof d; i++) {
        s->sha[2 * i] = hex[d[i] >> 4];
        s->sha[2 * i + 1] = hex[d[i] & 15];
    }
    s->sha[2 * SHA_DIGEST_LENGTH] = 0;
}

void ldg_redis_script_head(const struct ldg_redis_script *s, bool eval, const char **argv, size_t *argl)
{
    argv[0] = eval ? "EVAL" : "EVALSHA";
    argv[1] = eval ? s->body : s->sha;
    if (argl) {
        argl[0] = eval ? 4 : 7;
        argl[1] = eval ? s->len : 2 * SHA_DIGEST_LENGTH;
    }
}

bool ldg_redis_noscript(const struct redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}
