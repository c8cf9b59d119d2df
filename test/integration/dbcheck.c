/*
 * dbcheck: drives the Redis and PostgreSQL clients (src/db) against real servers, one scenario
 * per invocation, on a private uv loop. test_db_clients.py starts the servers, runs a scenario,
 * and for the *-restart/-reconnect/-sub scenarios restarts the server when the scenario prints
 * READY.
 *
 *   dbcheck SCENARIO [--host H] [--port P] [--user U] [--dbname D] [--password-file F]
 *                    [--schema-dir DIR] [--prefix NAME]
 *
 * Output: one line per observation ("KEY detail"), "FAIL <where>: <what>" on failure.
 * Every scenario ends by closing every client and requiring uv_loop_close() == 0.
 * Exit code 0 = pass.
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "db/migrate.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/redis.h"

static uv_loop_t loop;
static uv_timer_t tick;

static struct {
    const char *host;
    int port;
    const char *user;
    const char *dbname;
    char *password;
    const char *schema_dir;
    const char *prefix;
} opt = {"127.0.0.1", 0, "postgres", "postgres", NULL, "schema", "dbcheck"};

/* ---- harness ------------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void say(const char *fmt, ...) LDG_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static LDG_NORETURN void die_at(int line, const char *fmt, ...) LDG_PRINTF(2, 3);
static void die_at(int line, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL dbcheck.c:%d: ", line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    exit(1);
}

/* Print the rest of a FAIL line (after "FAIL file:line: ...") and exit 1. */
static LDG_NORETURN void die_rest(const char *fmt, ...) LDG_PRINTF(1, 2);
static void die_rest(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    exit(1);
}

/* CHECK(cond) or CHECK(cond, "detail %d", x) */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            printf("FAIL dbcheck.c:%d: check failed: %s", __LINE__, #cond);                                  \
            die_rest(" " __VA_ARGS__);                                                                       \
        }                                                                                                    \
    } while (0)

/* Run the loop until `cond` holds or `ms` pass; the 5 ms tick keeps UV_RUN_ONCE from blocking. */
#define RUN_UNTIL(cond, ms)                                                                                  \
    ({                                                                                                       \
        uint64_t dl_ = now_ms() + (ms);                                                                      \
        while (!(cond) && now_ms() < dl_)                                                                    \
            uv_run(&loop, UV_RUN_ONCE);                                                                      \
        (bool)(cond);                                                                                        \
    })

static void sleep_loop(uint64_t ms)
{
    uint64_t dl = now_ms() + ms;
    while (now_ms() < dl)
        uv_run(&loop, UV_RUN_ONCE);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    say("LEFTOVER handle type=%s active=%d closing=%d", uv_handle_type_name(h->type), uv_is_active(h),
        uv_is_closing(h));
}

static void finish(void)
{
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0) {
        uv_walk(&loop, on_walk, NULL);
        die_at(__LINE__, "uv_loop_close: %s", uv_strerror(rc));
    }
    say("LOOP_CLOSED ok");
}

static void on_closed_flag(void *ud)
{
    *(bool *)ud = true;
}

/* True while the test is inside a client call: callbacks must never run then. */
static bool in_call;
static int seq;

/* ---- config through the real key tables ------------------------------------------------------ */

static void load_cfg(const char *section, const struct ldg_cfg_key *keys, void *base, const char *fmt, ...)
    LDG_PRINTF(4, 5);
static void load_cfg(const char *section, const struct ldg_cfg_key *keys, void *base, const char *fmt, ...)
{
    struct ldg_cfg_section sec = {section, keys, base, NULL};
    struct ldg_cfg_err err;
    char body[1024], text[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(text, sizeof text, "[%s]\n%s", section, body);
    CHECK(ldg_cfg_defaults(&sec, 1, &err) == 0, "%s", err.msg);
    CHECK(ldg_cfg_load_string(&sec, 1, "dbcheck", text, &err) == 0, "%s", err.msg);
}

static void free_cfg(const char *section, const struct ldg_cfg_key *keys, void *base)
{
    struct ldg_cfg_section sec = {section, keys, base, NULL};
    ldg_cfg_free(&sec, 1);
}

/* "port = N\n" when --port was given, else "" (the table's default applies). */
static const char *port_line(void)
{
    static char buf[32];
    if (opt.port <= 0)
        return "";
    snprintf(buf, sizeof buf, "port = %d\n", opt.port);
    return buf;
}

static void load_redis(struct ldg_redis_cfg *c, const char *extra)
{
    memset(c, 0, sizeof *c);
    load_cfg("redis", ldg_redis_cfg_keys, c, "host = %s\n%sreconnect_min_ms = 50\nreconnect_max_ms = 500\n%s",
             opt.host, port_line(), extra);
}

static void load_pg(struct ldg_pg_cfg *c, const char *dbname, const char *extra)
{
    memset(c, 0, sizeof *c);
    bool own_backoff = strstr(extra, "reconnect_") != NULL;
    load_cfg("pg_logs", ldg_pg_logs_cfg_keys, c,
             "host = %s\n%suser = %s\ndbname = %s\nconnect_timeout_ms = 3000\n%s%s", opt.host, port_line(),
             opt.user, dbname, own_backoff ? "" : "reconnect_min_ms = 100\nreconnect_max_ms = 1000\n", extra);
}

/* ---- Redis helpers --------------------------------------------------------------------------- */

struct rres {
    bool done, null;
    int type;
    long long integer;
    size_t len;
    char str[512];
    uint64_t at;
    int seq;
};

static void on_rres(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct rres *x = ud;
    CHECK(!in_call, "callback ran inside a client call");
    CHECK(!x->done, "callback ran twice");
    x->done = true;
    x->at = now_ms();
    x->seq = ++seq;
    if (!reply) {
        x->null = true;
        return;
    }
    x->type = reply->type;
    x->integer = reply->integer;
    if (reply->str) {
        x->len = reply->len;
        memcpy(x->str, reply->str, LDG_MIN(reply->len, sizeof x->str - 1));
    }
}

static int rcmd_rc;
#define RCMD(r, x, ...)                                                                                      \
    (in_call = true, rcmd_rc = ldg_redis_command((r), on_rres, (x), __VA_ARGS__), in_call = false, rcmd_rc)

/* Issue PING until one is answered PONG (reconnect loops). */
static bool redis_ping_until_ok(struct ldg_redis *r, uint64_t ms, int *enotconn_seen)
{
    uint64_t dl = now_ms() + ms;
    while (now_ms() < dl) {
        struct rres x = {0};
        int rc = RCMD(r, &x, "PING");
        if (rc == -ENOTCONN) {
            if (enotconn_seen)
                (*enotconn_seen)++;
            sleep_loop(50);
            continue;
        }
        CHECK(rc == 0, "rc=%d", rc);
        CHECK(RUN_UNTIL(x.done, 10000));
        if (!x.null && x.type == REDIS_REPLY_STATUS && strcmp(x.str, "PONG") == 0)
            return true;
        sleep_loop(50);
    }
    return false;
}

static void close_redis(struct ldg_redis *r)
{
    bool closed = false;
    ldg_redis_close(r, on_closed_flag, &closed);
    CHECK(RUN_UNTIL(closed, 5000));
}

/* ---- scenarios: Redis ------------------------------------------------------------------------ */

struct close_in_cb {
    struct ldg_redis *r;
    bool closed;
    struct rres first;
};

static void on_reply_then_close(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct close_in_cb *c = ud;
    on_rres(r, reply, &c->first);
    ldg_redis_close(r, on_closed_flag, &c->closed); /* from inside a hiredis reply callback */
}

static int sc_redis_basic(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "db = 3\nmax_pending = 8\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, opt.password, "basic");
    struct rres x0 = {0};
    CHECK(!ldg_redis_connected(r));
    CHECK(RCMD(r, &x0, "PING") == -ENOTCONN);
    CHECK(RUN_UNTIL(ldg_redis_connected(r), 5000), "never connected");
    say("CONNECTED");

    struct rres a = {0}, b = {0};
    CHECK(RCMD(r, &a, "SET %s %s", "dbcheck:k", "v") == 0);
    CHECK(RCMD(r, &b, "GET %s", "dbcheck:k") == 0);
    CHECK(!a.done && !b.done);
    CHECK(RUN_UNTIL(a.done && b.done, 3000));
    CHECK(a.type == REDIS_REPLY_STATUS && strcmp(a.str, "OK") == 0);
    CHECK(b.type == REDIS_REPLY_STRING && strcmp(b.str, "v") == 0);
    CHECK(a.seq < b.seq);
    say("SET_GET ok");

    struct rres del = {0}, p[9];
    memset(p, 0, sizeof p);
    CHECK(RCMD(r, &del, "DEL %s", "dbcheck:cnt") == 0);
    CHECK(RUN_UNTIL(del.done, 3000));
    for (int i = 0; i < 8; i++)
        CHECK(RCMD(r, &p[i], "INCR %s", "dbcheck:cnt") == 0, "i=%d", i);
    CHECK(ldg_redis_pending(r) == 8);
    CHECK(RCMD(r, &p[8], "INCR %s", "dbcheck:cnt") == -EAGAIN, "max_pending not enforced");
    CHECK(RUN_UNTIL(p[7].done, 3000));
    for (int i = 0; i < 8; i++) {
        CHECK(p[i].done && !p[i].null && p[i].integer == i + 1, "i=%d integer=%lld", i, p[i].integer);
        CHECK(i == 0 || p[i].seq == p[i - 1].seq + 1, "out of order at %d", i);
    }
    CHECK(!p[8].done);
    say("PIPELINE ok depth=8 eagain=1");

    const char *argv[3] = {"SET", "dbcheck:bin", "a\0b"};
    const size_t lens[3] = {3, 11, 3};
    struct rres s = {0}, g = {0}, e = {0};
    in_call = true;
    CHECK(ldg_redis_commandargv(r, on_rres, &s, 3, argv, lens) == 0);
    in_call = false;
    CHECK(RCMD(r, &g, "GET %s", "dbcheck:bin") == 0);
    CHECK(RCMD(r, &e, "INCR %s", "dbcheck:k") == 0);
    CHECK(RUN_UNTIL(e.done, 3000));
    CHECK(g.type == REDIS_REPLY_STRING && g.len == 3 && memcmp(g.str, "a\0b", 3) == 0);
    CHECK(!e.null && e.type == REDIS_REPLY_ERROR, "an error reply is a reply, not NULL");
    CHECK(ldg_redis_errors(r) == 0, "errors=%llu", (unsigned long long)ldg_redis_errors(r));
    say("ARGV_AND_ERROR_REPLY ok");

    /* Close with a command pending: its callback gets NULL, from inside ldg_redis_close. */
    struct rres blk = {0};
    CHECK(RCMD(r, &blk, "BLPOP %s 0", "dbcheck:never") == 0);
    sleep_loop(20);
    bool closed = false;
    ldg_redis_close(r, on_closed_flag, &closed);
    CHECK(blk.done && blk.null, "pending command not failed by close");
    CHECK(RUN_UNTIL(closed, 3000));
    say("CLOSE_PENDING ok");

    /* Close from inside a reply callback, with a second command pipelined behind it. */
    struct close_in_cb cc = {0};
    struct rres after = {0};
    cc.r = ldg_redis_new(&loop, &cfg, opt.password, "close-in-cb");
    CHECK(RUN_UNTIL(ldg_redis_connected(cc.r), 5000));
    in_call = true;
    CHECK(ldg_redis_command(cc.r, on_reply_then_close, &cc, "PING") == 0);
    CHECK(ldg_redis_command(cc.r, on_rres, &after, "BLPOP %s 0", "dbcheck:never") == 0);
    in_call = false;
    CHECK(RUN_UNTIL(cc.closed, 3000));
    CHECK(cc.first.done && !cc.first.null && after.done && after.null);
    say("CLOSE_IN_CALLBACK ok");

    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_redis_auth_fail(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "connect_timeout_ms = 500\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, "definitely-wrong", "authfail");
    sleep_loop(1500);
    CHECK(!ldg_redis_connected(r), "connected despite a wrong password");
    CHECK(ldg_redis_errors(r) >= 1);
    say("AUTH_REFUSED ok errors=%llu", (unsigned long long)ldg_redis_errors(r));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

static void on_sub_msg(struct ldg_redis_sub *s, const char *ch, size_t chlen, const char *msg, size_t msglen,
                       void *ud);
static long long publish(struct ldg_redis *r, const char *ch, const char *msg);

static int sc_redis_timeout(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "command_timeout_ms = 500\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, opt.password, "timeout");
    CHECK(RUN_UNTIL(ldg_redis_connected(r), 5000));
    struct rres a = {0}, b = {0};
    uint64_t t0 = now_ms();
    CHECK(RCMD(r, &a, "DEBUG SLEEP %d", 3) == 0);
    CHECK(RCMD(r, &b, "GET %s", "dbcheck:k") == 0);
    CHECK(RUN_UNTIL(a.done && b.done, 5000));
    uint64_t took = a.at - t0;
    CHECK(a.null && b.null, "a.null=%d b.null=%d type=%d str=%s", a.null, b.null, a.type, a.str);
    CHECK(took >= 400 && took < 2500, "timed out after %llu ms", (unsigned long long)took);
    CHECK(ldg_redis_errors(r) >= 2);
    say("TIMEOUT ok after_ms=%llu", (unsigned long long)took);
    uint64_t t1 = now_ms();
    CHECK(redis_ping_until_ok(r, 15000, NULL), "no recovery");
    say("RECOVERED after_ms=%llu", (unsigned long long)(now_ms() - t1));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

/* A SUBSCRIBE confirmation that does not come within command_timeout_ms drops the pub/sub
 * connection too; the channel set survives and is subscribed once the server answers again. */
static int sc_redis_sub_timeout(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "command_timeout_ms = 500\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, opt.password, "pub");
    struct ldg_redis_sub *s = ldg_redis_sub_new(&loop, &cfg, opt.password, "sub", on_sub_msg, NULL);
    CHECK(RUN_UNTIL(ldg_redis_connected(r) && ldg_redis_sub_connected(s), 5000));
    struct rres a = {0};
    CHECK(RCMD(r, &a, "DEBUG SLEEP %d", 2) == 0);
    sleep_loop(100);
    CHECK(ldg_redis_sub_subscribe(s, "dbc:t") == 0);
    CHECK(RUN_UNTIL(ldg_redis_sub_errors(s) >= 1, 3000), "confirmation deadline not enforced");
    say("SUB_CONFIRM_TIMEOUT ok");
    uint64_t dl = now_ms() + 15000;
    long long n = 0;
    while (n != 1 && now_ms() < dl) {
        n = publish(r, "dbc:t", "late");
        sleep_loop(100);
    }
    CHECK(n == 1, "dbc:t not subscribed after the server recovered");
    say("SUB_RECOVERED ok");
    bool closed = false;
    ldg_redis_sub_close(s, on_closed_flag, &closed);
    CHECK(RUN_UNTIL(closed, 5000));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_redis_reconnect(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "command_timeout_ms = 30000\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, opt.password, "reconnect");
    CHECK(RUN_UNTIL(ldg_redis_connected(r), 5000));
    CHECK(redis_ping_until_ok(r, 3000, NULL));
    struct rres blk = {0};
    CHECK(RCMD(r, &blk, "BLPOP %s 0", "dbcheck:never") == 0);
    sleep_loop(50);
    say("READY");
    CHECK(RUN_UNTIL(blk.done, 30000), "pending command never failed");
    CHECK(blk.null);
    say("PENDING_NULL ok");
    int enotconn = 0;
    CHECK(redis_ping_until_ok(r, 30000, &enotconn), "no reconnect");
    CHECK(ldg_redis_errors(r) >= 1);
    say("RECONNECTED ok enotconn_seen=%d errors=%llu", enotconn, (unsigned long long)ldg_redis_errors(r));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

struct subst {
    int msgs;
    char last[128];
    char lastch[64];
    int after; /* messages whose payload starts with "after-" */
    int on_c;  /* messages on dbc:c */
};

static void on_sub_msg(struct ldg_redis_sub *s, const char *ch, size_t chlen, const char *msg, size_t msglen,
                       void *ud)
{
    (void)s;
    struct subst *st = ud;
    if (!st)
        return;
    CHECK(!in_call);
    st->msgs++;
    snprintf(st->lastch, sizeof st->lastch, "%.*s", (int)chlen, ch);
    snprintf(st->last, sizeof st->last, "%.*s", (int)msglen, msg);
    CHECK(strcmp(st->lastch, "dbc:b") != 0 || strncmp(st->last, "after-", 6) != 0,
          "message on an unsubscribed channel");
    if (strncmp(st->last, "after-", 6) == 0)
        st->after++;
    if (strcmp(st->lastch, "dbc:c") == 0)
        st->on_c++;
}

/* PUBLISH until it reports `want` receivers (or the sub saw a message when want < 0). */
static long long publish(struct ldg_redis *r, const char *ch, const char *msg)
{
    struct rres x = {0};
    int rc = RCMD(r, &x, "PUBLISH %s %s", ch, msg);
    if (rc < 0)
        return -1;
    CHECK(RUN_UNTIL(x.done, 10000));
    return x.null ? -1 : x.integer;
}

static int sc_redis_sub(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "command_timeout_ms = 2000\n");
    struct subst st = {0};
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, opt.password, "pub");
    struct ldg_redis_sub *s = ldg_redis_sub_new(&loop, &cfg, opt.password, "sub", on_sub_msg, &st);
    CHECK(ldg_redis_sub_subscribe(s, "dbc:a") == 0);
    CHECK(ldg_redis_sub_subscribe(s, "dbc:b") == 0);
    CHECK(ldg_redis_sub_subscribe(s, "dbc:a") == 0);
    CHECK(ldg_redis_sub_subscribe(s, "") == -EINVAL);
    CHECK(ldg_redis_sub_channels(s) == 2);
    CHECK(RUN_UNTIL(ldg_redis_connected(r) && ldg_redis_sub_connected(s), 5000));

    uint64_t dl = now_ms() + 5000;
    while (st.msgs == 0 && now_ms() < dl) {
        publish(r, "dbc:a", "hello");
        sleep_loop(50);
    }
    CHECK(st.msgs > 0 && strcmp(st.lastch, "dbc:a") == 0 && strcmp(st.last, "hello") == 0);
    say("SUBSCRIBED ok");

    CHECK(ldg_redis_sub_unsubscribe(s, "dbc:b") == 0);
    CHECK(ldg_redis_sub_unsubscribe(s, "dbc:b") == -ENOENT);
    dl = now_ms() + 5000;
    while (publish(r, "dbc:b", "x") != 0 && now_ms() < dl)
        sleep_loop(50);
    CHECK(publish(r, "dbc:b", "x") == 0, "still subscribed to dbc:b");
    say("UNSUBSCRIBED ok");

    say("READY");
    CHECK(RUN_UNTIL(!ldg_redis_sub_connected(s), 30000), "never saw the disconnect");
    say("SUB_DISCONNECTED ok");
    CHECK(ldg_redis_sub_subscribe(s, "dbc:c") == 0); /* while disconnected: applied on reconnect */

    dl = now_ms() + 30000;
    int n = 0;
    while (st.after == 0 && now_ms() < dl) {
        char msg[32];
        snprintf(msg, sizeof msg, "after-%d", n++);
        publish(r, "dbc:a", msg);
        sleep_loop(100);
    }
    CHECK(st.after > 0, "no message after the restart");
    say("RESUBSCRIBED ok");
    dl = now_ms() + 5000;
    while (st.on_c == 0 && now_ms() < dl) {
        publish(r, "dbc:c", "c");
        sleep_loop(50);
    }
    CHECK(st.on_c > 0, "channel added while disconnected not subscribed");
    CHECK(publish(r, "dbc:b", "after-b") == 0, "dbc:b came back after the restart");
    CHECK(ldg_redis_sub_channels(s) == 2);
    CHECK(ldg_redis_sub_errors(s) >= 1);
    say("CHANNEL_SET ok");

    bool closed = false;
    ldg_redis_sub_close(s, on_closed_flag, &closed);
    CHECK(RUN_UNTIL(closed, 5000));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_redis_down(void)
{
    struct ldg_redis_cfg cfg;
    load_redis(&cfg, "connect_timeout_ms = 300\n");
    struct ldg_redis *r = ldg_redis_new(&loop, &cfg, NULL, "down");
    struct ldg_redis_sub *s = ldg_redis_sub_new(&loop, &cfg, NULL, "down-sub", on_sub_msg, NULL);
    sleep_loop(1000);
    struct rres x = {0};
    CHECK(!ldg_redis_connected(r) && !ldg_redis_sub_connected(s));
    CHECK(RCMD(r, &x, "PING") == -ENOTCONN);
    CHECK(ldg_redis_errors(r) >= 2, "errors=%llu", (unsigned long long)ldg_redis_errors(r));
    say("DOWN ok errors=%llu", (unsigned long long)ldg_redis_errors(r));
    bool closed = false;
    ldg_redis_sub_close(s, on_closed_flag, &closed);
    CHECK(RUN_UNTIL(closed, 3000));
    close_redis(r);
    free_cfg("redis", ldg_redis_cfg_keys, &cfg);
    finish();
    return 0;
}

/* ---- PostgreSQL helpers ------------------------------------------------------------------------ */

struct pres {
    bool done, ok, keep;
    int code;
    char sqlstate[6];
    char msg[300];
    int ntuples;
    char v0[256];
    char cmdtuples[32];
    uint64_t at;
    int seq;
    PGresult *kept;
};

static void on_pres(PGresult *res, void *ud)
{
    struct pres *x = ud;
    CHECK(!in_call, "callback ran inside a client call");
    CHECK(!x->done, "callback ran twice");
    x->done = true;
    x->at = now_ms();
    x->seq = ++seq;
    if (!res) {
        const struct ldg_pg_error *e = ldg_pg_failure();
        x->code = e->code;
        snprintf(x->sqlstate, sizeof x->sqlstate, "%s", e->sqlstate);
        snprintf(x->msg, sizeof x->msg, "%s", e->message);
        CHECK(e->code < 0);
        return;
    }
    CHECK(ldg_pg_failure()->code == 0);
    x->ok = true;
    x->ntuples = PQntuples(res);
    if (x->ntuples > 0 && PQnfields(res) > 0)
        snprintf(x->v0, sizeof x->v0, "%s", PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
    snprintf(x->cmdtuples, sizeof x->cmdtuples, "%s", PQcmdTuples(res));
    if (x->keep) {
        ldg_pg_keep(res);
        x->kept = res;
    }
}

static int pq_rc;
#define PQRY(pool, x, sql, n, params)                                                                        \
    (in_call = true, pq_rc = ldg_pgpool_query((pool), (sql), (n), (params), on_pres, (x)), in_call = false,  \
     pq_rc)
#define CQRY(conn, x, sql, n, params)                                                                        \
    (in_call = true, pq_rc = ldg_pg_query((conn), (sql), (n), (params), on_pres, (x)), in_call = false, pq_rc)

/* One pool query, waited for. */
static struct pres pool_sync(struct ldg_pgpool *p, const char *sql, int n, const char *const *params)
{
    struct pres x = {0};
    int rc = PQRY(p, &x, sql, n, params);
    CHECK(rc == 0, "rc=%d for %s", rc, sql);
    CHECK(RUN_UNTIL(x.done, 40000), "no result for %s", sql);
    return x;
}

static struct pres conn_sync(struct ldg_pg *c, const char *sql, int n, const char *const *params)
{
    struct pres x = {0};
    int rc = CQRY(c, &x, sql, n, params);
    CHECK(rc == 0, "rc=%d for %s", rc, sql);
    CHECK(RUN_UNTIL(x.done, 40000), "no result for %s", sql);
    return x;
}

struct acq {
    bool done;
    struct ldg_pg *conn;
    int err;
    uint64_t at;
};

static void on_acq(struct ldg_pg *c, int err, void *ud)
{
    struct acq *a = ud;
    CHECK(!in_call, "acquire callback ran inside a client call");
    CHECK(!a->done);
    a->done = true;
    a->conn = c;
    a->err = err;
    a->at = now_ms();
}

static int acquire(struct ldg_pgpool *p, struct acq *a)
{
    memset(a, 0, sizeof *a);
    in_call = true;
    int rc = ldg_pgpool_acquire(p, on_acq, a);
    in_call = false;
    return rc;
}

static struct ldg_pg *acquire_sync(struct ldg_pgpool *p)
{
    struct acq a;
    CHECK(acquire(p, &a) == 0);
    CHECK(!a.done);
    CHECK(RUN_UNTIL(a.done, 10000));
    CHECK(a.conn, "acquire failed: %d", a.err);
    return a.conn;
}

static void close_pool(struct ldg_pgpool *p)
{
    bool closed = false;
    ldg_pgpool_close(p, on_closed_flag, &closed);
    CHECK(RUN_UNTIL(closed, 5000));
}

/* Query "SELECT 1" until it succeeds; every failure must come back quickly. */
static void pg_recover(struct ldg_pgpool *p, uint64_t ms)
{
    uint64_t dl = now_ms() + ms, worst = 0;
    int attempts = 0;
    for (;;) {
        CHECK(now_ms() < dl, "no recovery after %d attempts", attempts);
        attempts++;
        struct pres x = {0};
        uint64_t t0 = now_ms();
        int rc = PQRY(p, &x, "SELECT 1", 0, NULL);
        if (rc < 0) {
            CHECK(rc == -ENOTCONN || rc == -EAGAIN, "rc=%d", rc);
            sleep_loop(100);
            continue;
        }
        CHECK(RUN_UNTIL(x.done, 20000));
        if (x.ok && strcmp(x.v0, "1") == 0)
            break;
        worst = LDG_MAX(worst, x.at - t0);
        sleep_loop(100);
    }
    CHECK(worst < 4000, "an error took %llu ms during the outage", (unsigned long long)worst);
    say("RECOVERED attempts=%d worst_fail_ms=%llu", attempts, (unsigned long long)worst);
}

/* ---- scenarios: PostgreSQL ----------------------------------------------------------------------- */

static int sc_pg_query(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 2\nstatement_timeout_ms = 1000\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "query");

    const char *p41[1] = {"41"};
    struct pres x = pool_sync(p, "SELECT $1::int + 1", 1, p41);
    CHECK(x.ok && strcmp(x.v0, "42") == 0, "v0=%s msg=%s", x.v0, x.msg);
    const char *pnull[1] = {NULL};
    x = pool_sync(p, "SELECT $1::text IS NULL", 1, pnull);
    CHECK(x.ok && strcmp(x.v0, "t") == 0);
    say("PARAMS ok");

    x = pool_sync(p, "SELECT 1/0", 0, NULL);
    CHECK(!x.ok && x.code == -EIO && strcmp(x.sqlstate, "22012") == 0, "code=%d state=%s", x.code,
          x.sqlstate);
    say("SERVER_ERROR ok sqlstate=%s", x.sqlstate);

    uint64_t t0 = now_ms();
    x = pool_sync(p, "SELECT pg_sleep(3)", 0, NULL);
    CHECK(!x.ok && x.code == -EIO && strcmp(x.sqlstate, "57014") == 0, "code=%d state=%s", x.code,
          x.sqlstate);
    CHECK(now_ms() - t0 < 2500);
    say("STATEMENT_TIMEOUT ok");

    /* Prepared statements through the pool and on one connection (prepared once). */
    const char *p21[1] = {"21"};
    for (int i = 0; i < 3; i++) {
        struct pres y = {0};
        in_call = true;
        CHECK(ldg_pgpool_query_prepared(p, "q_double", "SELECT $1::int * 2", 1, p21, on_pres, &y) == 0);
        in_call = false;
        CHECK(RUN_UNTIL(y.done, 5000));
        CHECK(y.ok && strcmp(y.v0, "42") == 0);
    }
    struct ldg_pg *c = acquire_sync(p);
    for (int i = 0; i < 2; i++) {
        struct pres y = {0};
        in_call = true;
        CHECK(ldg_pg_query_prepared(c, "q_triple", "SELECT $1::int * 3", 1, p21, on_pres, &y) == 0);
        in_call = false;
        CHECK(RUN_UNTIL(y.done, 5000));
        CHECK(y.ok && strcmp(y.v0, "63") == 0);
    }
    x = conn_sync(c, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'q_triple'", 0, NULL);
    CHECK(x.ok && strcmp(x.v0, "1") == 0);
    say("PREPARED ok");

    /* Unique violation keeps its SQLSTATE; busy connection refuses a second operation. */
    x = conn_sync(c, "CREATE TEMP TABLE u (x int PRIMARY KEY)", 0, NULL);
    CHECK(x.ok);
    struct pres i1 = {0}, i2 = {0};
    CHECK(CQRY(c, &i1, "INSERT INTO u VALUES (1)", 0, NULL) == 0);
    CHECK(CQRY(c, &i2, "INSERT INTO u VALUES (1)", 0, NULL) == -EBUSY);
    CHECK(RUN_UNTIL(i1.done, 5000) && i1.ok && strcmp(i1.cmdtuples, "1") == 0);
    x = conn_sync(c, "INSERT INTO u VALUES (1)", 0, NULL);
    CHECK(x.code == -EIO && strcmp(x.sqlstate, "23505") == 0);
    say("UNIQUE_VIOLATION ok");

    /* Taking ownership of a result. */
    struct pres k = {.keep = true};
    CHECK(CQRY(c, &k, "SELECT generate_series(1, 5)", 0, NULL) == 0);
    CHECK(RUN_UNTIL(k.done, 5000));
    CHECK(k.kept && PQntuples(k.kept) == 5 && strcmp(PQgetvalue(k.kept, 4, 0), "5") == 0);
    PQclear(k.kept);
    say("KEEP_RESULT ok");
    ldg_pgpool_release(p, c);

    CHECK(ldg_pgpool_errors(p) == 0, "server errors must not count: %llu",
          (unsigned long long)ldg_pgpool_errors(p));
    struct ldg_pgpool_stats stats;
    ldg_pgpool_stats(p, &stats);
    CHECK(stats.idle >= 1 && stats.lent == 0 && stats.waiters == 0 && !stats.down);
    say("STATS ok idle=%zu", stats.idle);
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

struct chain {
    struct ldg_pg *conn;
    struct pres last, next;
    int rc;
};

static void on_chain_last(PGresult *res, void *ud)
{
    struct chain *ch = ud;
    on_pres(res, &ch->last);
    /* The connection is IDLE again inside the last callback: the next operation can start. */
    ch->rc = ldg_pg_query(ch->conn, "SELECT 7", 0, NULL, on_pres, &ch->next);
}

static int sc_pg_pipeline(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 1\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "pipeline");
    struct ldg_pg *c = acquire_sync(p);

    struct pres r[5];
    memset(r, 0, sizeof r);
    const char *two[1] = {"2"};
    struct ldg_pg_stmt ok[5] = {
        {"CREATE TEMP TABLE pt (x int)", NULL, 0, NULL, on_pres, &r[0]},
        {"INSERT INTO pt VALUES (1), (2), (3)", NULL, 0, NULL, on_pres, &r[1]},
        {"SELECT sum(x) * $1::int FROM pt", "p_sum", 1, two, on_pres, &r[2]},
        {"SELECT sum(x) * $1::int FROM pt", "p_sum", 1, two, on_pres, &r[3]},
        {"SELECT count(*) FROM pt", NULL, 0, NULL, on_pres, &r[4]},
    };
    in_call = true;
    CHECK(ldg_pg_pipeline(c, ok, 5) == 0);
    CHECK(ldg_pg_query(c, "SELECT 1", 0, NULL, on_pres, &r[0]) == -EBUSY);
    in_call = false;
    CHECK(RUN_UNTIL(r[4].done, 5000));
    for (int i = 0; i < 5; i++)
        CHECK(r[i].ok && (i == 0 || r[i].seq == r[i - 1].seq + 1), "i=%d code=%d msg=%s", i, r[i].code,
              r[i].msg);
    CHECK(strcmp(r[1].cmdtuples, "3") == 0 && strcmp(r[2].v0, "12") == 0 && strcmp(r[3].v0, "12") == 0 &&
          strcmp(r[4].v0, "3") == 0);
    say("PIPELINE ok in_order=5");

    struct pres e[3];
    memset(e, 0, sizeof e);
    struct ldg_pg_stmt bad[3] = {
        {"SELECT 1", NULL, 0, NULL, on_pres, &e[0]},
        {"SELECT 1/0", NULL, 0, NULL, on_pres, &e[1]},
        {"SELECT 2", NULL, 0, NULL, on_pres, &e[2]},
    };
    in_call = true;
    CHECK(ldg_pg_pipeline(c, bad, 3) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(e[2].done, 5000));
    CHECK(e[0].ok && e[1].code == -EIO && strcmp(e[1].sqlstate, "22012") == 0 && e[2].code == -ECANCELED,
          "e0=%d e1=%d e2=%d", e[0].ok, e[1].code, e[2].code);
    say("PIPELINE_ABORT ok");

    /* A failing PREPARE is forgotten: the same name prepares again next time. */
    struct pres f = {0}, g = {0};
    in_call = true;
    CHECK(ldg_pg_query_prepared(c, "p_bad", "SELEC 1", 0, NULL, on_pres, &f) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(f.done, 5000));
    CHECK(f.code == -EIO && strcmp(f.sqlstate, "42601") == 0, "code=%d state=%s", f.code, f.sqlstate);
    in_call = true;
    CHECK(ldg_pg_query_prepared(c, "p_bad", "SELECT 5", 0, NULL, on_pres, &g) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(g.done, 5000));
    CHECK(g.ok && strcmp(g.v0, "5") == 0, "code=%d msg=%s", g.code, g.msg);
    say("PREPARE_FAILURE ok");

    struct chain ch = {.conn = c};
    struct pres first = {0};
    struct ldg_pg_stmt two_stmts[2] = {
        {"SELECT 6", NULL, 0, NULL, on_pres, &first},
        {"SELECT 6", NULL, 0, NULL, on_chain_last, &ch},
    };
    in_call = true;
    CHECK(ldg_pg_pipeline(c, two_stmts, 2) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(ch.next.done, 5000));
    CHECK(ch.rc == 0 && ch.next.ok && strcmp(ch.next.v0, "7") == 0);
    say("CHAIN_FROM_CALLBACK ok");

    /* Closing the pool fails an operation still running on a lent connection. */
    struct pres sl = {0};
    CHECK(CQRY(c, &sl, "SELECT pg_sleep(10)", 0, NULL) == 0);
    sleep_loop(50);
    bool closed = false;
    ldg_pgpool_close(p, on_closed_flag, &closed);
    CHECK(sl.done && sl.code == -ECANCELED, "code=%d", sl.code);
    ldg_pgpool_release(p, c); /* allowed until on_closed */
    CHECK(RUN_UNTIL(closed, 5000));
    say("CLOSE_WITH_LENT ok");
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_pg_waiters_bound(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 1\nmax_waiters = 2\nacquire_timeout_ms = 300\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "waiters");
    struct ldg_pg *held = acquire_sync(p);
    struct acq b, c, d;
    uint64_t t0 = now_ms();
    CHECK(acquire(p, &b) == 0);
    CHECK(acquire(p, &c) == 0);
    CHECK(acquire(p, &d) == -EAGAIN, "waiter queue not bounded");
    struct pres q = {0};
    CHECK(PQRY(p, &q, "SELECT 1", 0, NULL) == -EAGAIN);
    say("BOUND ok max_waiters=2");
    CHECK(RUN_UNTIL(b.done && c.done, 3000));
    CHECK(!b.conn && b.err == -ETIMEDOUT && !c.conn && c.err == -ETIMEDOUT);
    uint64_t waited = b.at - t0;
    CHECK(waited >= 250 && waited < 2000, "waited %llu ms", (unsigned long long)waited);
    CHECK(ldg_pgpool_errors(p) >= 3);
    say("ACQUIRE_TIMEOUT ok waited_ms=%llu", (unsigned long long)waited);

    ldg_pgpool_release(p, held);
    struct ldg_pg *again = acquire_sync(p);
    CHECK(again == held, "the idle connection was not reused");
    say("REUSE ok");

    struct acq w;
    CHECK(acquire(p, &w) == 0);
    bool closed = false;
    ldg_pgpool_close(p, on_closed_flag, &closed);
    CHECK(w.done && !w.conn && w.err == -ECANCELED);
    CHECK(acquire(p, &d) == -ECANCELED);
    ldg_pgpool_release(p, again);
    CHECK(RUN_UNTIL(closed, 5000));
    say("CLOSE_WAITERS ok");
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_pg_restart_mid_query(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 2\nstatement_timeout_ms = 30000\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "restart");
    struct pres w1 = {0}, w2 = {0};
    CHECK(PQRY(p, &w1, "SELECT pg_sleep(0.1)", 0, NULL) == 0);
    CHECK(PQRY(p, &w2, "SELECT pg_sleep(0.1)", 0, NULL) == 0);
    CHECK(RUN_UNTIL(w1.done && w2.done, 10000) && w1.ok && w2.ok);
    struct ldg_pgpool_stats stats;
    ldg_pgpool_stats(p, &stats);
    CHECK(stats.idle == 2, "idle=%zu", stats.idle); /* one stays idle and breaks in the restart */
    struct pres sl = {0};
    uint64_t t0 = now_ms();
    CHECK(PQRY(p, &sl, "SELECT pg_sleep(5)", 0, NULL) == 0);
    CHECK(RUN_UNTIL(ldg_pgpool_errors(p) > 0 || sl.done || now_ms() - t0 > 300, 1000));
    say("READY");
    CHECK(RUN_UNTIL(sl.done, 20000));
    CHECK(!sl.ok, "pg_sleep survived the restart");
    say("QUERY_ERROR ok code=%d sqlstate=%s after_ms=%llu", sl.code, sl.sqlstate,
        (unsigned long long)(sl.at - t0));
    pg_recover(p, 30000);
    CHECK(ldg_pgpool_errors(p) >= 1);
    ldg_pgpool_stats(p, &stats);
    CHECK(stats.closing == 0 && stats.lent == 0 && !stats.down);
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

/* The server cannot enforce statement_timeout when its backend is frozen (the test SIGSTOPs it):
 * the client deadline (statement_timeout_ms + margin) must fire and drop the connection. */
static int sc_pg_deadline(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 2\nstatement_timeout_ms = 500\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "deadline");
    struct pres x = pool_sync(p, "SELECT 1", 0, NULL);
    CHECK(x.ok);
    struct pres st = {0};
    uint64_t t0 = now_ms();
    CHECK(PQRY(p, &st, "SELECT 'dbcheck-freeze-me', pg_sleep(0.3)", 0, NULL) == 0);
    say("READY");
    CHECK(RUN_UNTIL(st.done, 20000));
    uint64_t took = st.at - t0;
    CHECK(!st.ok && st.code == -ETIMEDOUT, "code=%d state=%s msg=%s", st.code, st.sqlstate, st.msg);
    CHECK(took >= 2000 && took < 6000, "deadline after %llu ms", (unsigned long long)took);
    CHECK(ldg_pgpool_errors(p) >= 1);
    say("DEADLINE ok after_ms=%llu", (unsigned long long)took);
    x = pool_sync(p, "SELECT 2", 0, NULL);
    CHECK(x.ok && strcmp(x.v0, "2") == 0, "code=%d msg=%s", x.code, x.msg);
    say("AFTER_DEADLINE ok");

    /* Closing a pool whose only connection is still connecting, with a caller waiting. */
    struct ldg_pgpool *p2 = ldg_pgpool_new(&loop, &cfg, opt.password, "close-connecting");
    struct pres cq = {0};
    CHECK(PQRY(p2, &cq, "SELECT 1", 0, NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* the pump runs and starts a connection */
    struct ldg_pgpool_stats stats;
    ldg_pgpool_stats(p2, &stats);
    say("CLOSE_CONNECTING connecting=%zu", stats.connecting);
    bool closed = false;
    ldg_pgpool_close(p2, on_closed_flag, &closed);
    CHECK(cq.done && cq.code == -ECANCELED, "code=%d", cq.code);
    CHECK(RUN_UNTIL(closed, 5000));
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

struct copyst {
    bool done;
    int status;
    int n;
};

static void on_copy_put(struct ldg_pg *c, int status, void *ud)
{
    (void)c;
    struct copyst *s = ud;
    CHECK(!in_call);
    s->done = true;
    s->status = status;
    s->n++;
}

static int copy_put(struct ldg_pg *c, const char *data, size_t len, struct copyst *s)
{
    s->done = false;
    in_call = true;
    int rc = ldg_pg_copy_put(c, data, len, on_copy_put, s);
    in_call = false;
    return rc;
}

/* Build `rows` COPY text rows starting at id `from` into buf. */
static size_t make_rows(char *buf, size_t cap, int from, int rows, size_t pad)
{
    size_t o = 0;
    for (int i = 0; i < rows; i++) {
        int n = snprintf(buf + o, cap - o, "%d\t", from + i);
        CHECK(n > 0 && (size_t)n < cap - o);
        o += (size_t)n;
        CHECK(o + pad + 2 < cap);
        memset(buf + o, 'x', pad);
        o += pad;
        buf[o++] = '\n';
    }
    return o;
}

/* A complete COPY of `rows` rows in chunks of `per` rows; returns the final result. */
static struct pres copy_all(struct ldg_pg *c, const char *table, int rows, int per, size_t pad)
{
    char sql[128];
    snprintf(sql, sizeof sql, "COPY %s (id, payload) FROM STDIN", table);
    struct pres st = {0}, end = {0};
    in_call = true;
    CHECK(ldg_pg_copy_start(c, sql, on_pres, &st) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(st.done, 10000));
    CHECK(st.ok && ldg_pg_state(c) == LDG_PG_COPY_IN, "code=%d msg=%s", st.code, st.msg);
    size_t cap = (size_t)per * (pad + 16) + 64;
    char *buf = ldg_malloc(cap);
    struct copyst cs = {0};
    for (int done = 0; done < rows; done += per) {
        size_t len = make_rows(buf, cap, done + 1, LDG_MIN(per, rows - done), pad);
        CHECK(copy_put(c, buf, len, &cs) == 0);
        CHECK(copy_put(c, buf, len, &cs) == -EBUSY);
        CHECK(RUN_UNTIL(cs.done, 10000));
        CHECK(cs.status == 0);
    }
    free(buf);
    in_call = true;
    CHECK(ldg_pg_copy_end(c, NULL, on_pres, &end) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(end.done, 20000));
    return end;
}

static int sc_pg_copy(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 1\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "copy");
    struct ldg_pg *c = acquire_sync(p);
    struct pres x = conn_sync(c, "CREATE TEMP TABLE ct (id int, payload text)", 0, NULL);
    CHECK(x.ok);

    /* 20,000 rows of ~1 kB in 64 chunks: bounded memory, backpressure through the put callback. */
    struct pres end = copy_all(c, "ct", 20000, 320, 1000);
    CHECK(end.ok && strcmp(end.cmdtuples, "20000") == 0, "code=%d msg=%s tuples=%s", end.code, end.msg,
          end.cmdtuples);
    x = conn_sync(c, "SELECT count(*) FROM ct", 0, NULL);
    CHECK(x.ok && strcmp(x.v0, "20000") == 0);
    say("COPY ok rows=20000");

    /* A bad row is reported by the end callback; the connection stays usable. */
    struct pres st = {0};
    in_call = true;
    CHECK(ldg_pg_copy_start(c, "COPY ct (id, payload) FROM STDIN", on_pres, &st) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(st.done, 5000) && st.ok);
    struct copyst cs = {0};
    const char *rows = "1\tok\nnot-a-number\tbad\n";
    CHECK(copy_put(c, rows, strlen(rows), &cs) == 0);
    CHECK(RUN_UNTIL(cs.done, 5000) && cs.status == 0);
    struct pres bad = {0};
    in_call = true;
    CHECK(ldg_pg_copy_end(c, NULL, on_pres, &bad) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(bad.done, 5000));
    CHECK(bad.code == -EIO && strcmp(bad.sqlstate, "22P02") == 0, "code=%d state=%s", bad.code, bad.sqlstate);
    x = conn_sync(c, "SELECT count(*) FROM ct", 0, NULL);
    CHECK(x.ok && strcmp(x.v0, "20000") == 0);
    say("COPY_BAD_ROW ok sqlstate=%s", bad.sqlstate);

    /* Aborting a COPY on purpose. */
    memset(&st, 0, sizeof st);
    in_call = true;
    CHECK(ldg_pg_copy_start(c, "COPY ct (id, payload) FROM STDIN", on_pres, &st) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(st.done, 5000) && st.ok);
    struct pres ab = {0};
    in_call = true;
    CHECK(ldg_pg_copy_end(c, "client gave up", on_pres, &ab) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(ab.done, 5000));
    CHECK(ab.code == -EIO && strcmp(ab.sqlstate, "57014") == 0, "code=%d state=%s", ab.code, ab.sqlstate);
    say("COPY_ABORT ok");

    /* Not a COPY FROM STDIN, and a missing table. */
    struct pres nc = {0}, nt = {0};
    in_call = true;
    CHECK(ldg_pg_copy_start(c, "SELECT 1", on_pres, &nc) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(nc.done, 5000) && nc.code == -EINVAL);
    in_call = true;
    CHECK(ldg_pg_copy_start(c, "COPY no_such_table FROM STDIN", on_pres, &nt) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(nt.done, 5000) && nt.code == -EIO && strcmp(nt.sqlstate, "42P01") == 0);
    CHECK(copy_put(c, "x", 1, &cs) == -EINVAL);
    x = conn_sync(c, "SELECT 1", 0, NULL);
    CHECK(x.ok);
    say("COPY_ERRORS ok");

    ldg_pgpool_release(p, c);
    CHECK(ldg_pgpool_errors(p) == 0);
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_pg_copy_restart(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "pool_size = 1\nstatement_timeout_ms = 30000\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "copy-restart");
    struct ldg_pg *c = acquire_sync(p);
    struct pres x = conn_sync(c, "CREATE TABLE IF NOT EXISTS dbcheck_copy (id int, payload text)", 0, NULL);
    CHECK(x.ok, "msg=%s", x.msg);
    x = conn_sync(c, "TRUNCATE dbcheck_copy", 0, NULL);
    CHECK(x.ok);
    struct pres st = {0};
    in_call = true;
    CHECK(ldg_pg_copy_start(c, "COPY dbcheck_copy (id, payload) FROM STDIN", on_pres, &st) == 0);
    in_call = false;
    CHECK(RUN_UNTIL(st.done, 5000) && st.ok);

    char buf[8192];
    struct copyst cs = {0};
    int chunks = 0, err = 0;
    uint64_t dl = now_ms() + 30000;
    while (!err && now_ms() < dl) {
        size_t len = make_rows(buf, sizeof buf, chunks * 10 + 1, 10, 100);
        int rc = copy_put(c, buf, len, &cs);
        if (rc < 0) {
            err = rc;
            break;
        }
        CHECK(RUN_UNTIL(cs.done, 40000));
        if (cs.status < 0) {
            err = cs.status;
            break;
        }
        if (++chunks == 1)
            say("READY");
        sleep_loop(50);
    }
    CHECK(err < 0, "COPY never failed");
    say("COPY_ERROR ok code=%d chunks=%d", err, chunks);
    ldg_pgpool_release(p, c);

    pg_recover(p, 30000);
    c = acquire_sync(p);
    x = conn_sync(c, "TRUNCATE dbcheck_copy", 0, NULL);
    CHECK(x.ok);
    struct pres end = copy_all(c, "dbcheck_copy", 1000, 100, 50);
    CHECK(end.ok && strcmp(end.cmdtuples, "1000") == 0, "code=%d msg=%s", end.code, end.msg);
    x = conn_sync(c, "SELECT count(*) FROM dbcheck_copy", 0, NULL);
    CHECK(x.ok && strcmp(x.v0, "1000") == 0);
    say("COPY_OK rows=1000");
    ldg_pgpool_release(p, c);
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

static int sc_pg_down(void)
{
    struct ldg_pg_cfg cfg;
    load_pg(&cfg, opt.dbname, "reconnect_min_ms = 1000\nreconnect_max_ms = 2000\n");
    struct ldg_pgpool *p = ldg_pgpool_new(&loop, &cfg, opt.password, "down");
    uint64_t t0 = now_ms();
    struct pres x = pool_sync(p, "SELECT 1", 0, NULL);
    CHECK(!x.ok && x.code == -ENOTCONN, "code=%d msg=%s", x.code, x.msg);
    CHECK(x.at - t0 < 2000);
    say("FIRST_ERROR ok code=%d after_ms=%llu", x.code, (unsigned long long)(x.at - t0));
    struct pres y = {0};
    CHECK(PQRY(p, &y, "SELECT 1", 0, NULL) == -ENOTCONN, "no fast failure while down");
    struct acq a;
    CHECK(acquire(p, &a) == -ENOTCONN);
    struct ldg_pgpool_stats stats;
    ldg_pgpool_stats(p, &stats);
    CHECK(stats.down && ldg_pgpool_errors(p) >= 3);
    say("FAST_FAIL ok errors=%llu", (unsigned long long)ldg_pgpool_errors(p));
    sleep_loop(2100);
    struct pres z = pool_sync(p, "SELECT 1", 0, NULL); /* backoff over: a new attempt, failing again */
    CHECK(!z.ok && z.code == -ENOTCONN);
    say("RETRY_AFTER_BACKOFF ok");
    close_pool(p);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &cfg);
    finish();
    return 0;
}

/* ---- migrations ------------------------------------------------------------------------------------ */

static PGresult *sql1(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

static char *scalar(PGconn *conn, const char *sql)
{
    PGresult *r = sql1(conn, sql);
    CHECK(PQntuples(r) == 1);
    char *v = ldg_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static PGconn *connect_db(const char *dbname)
{
    char *ci = ldg_asprintf("host=%s port=%d user=%s dbname=%s", opt.host, opt.port, opt.user, dbname);
    PGconn *conn = PQconnectdb(ci);
    free(ci);
    CHECK(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
    return conn;
}

static void check_tables(const char *dbname, const char *const *tables)
{
    PGconn *conn = connect_db(dbname);
    for (const char *const *t = tables; *t; t++) {
        char *sql = ldg_asprintf("SELECT to_regclass('public.%s') IS NOT NULL", *t);
        char *v = scalar(conn, sql);
        CHECK(strcmp(v, "t") == 0, "table %s missing in %s", *t, dbname);
        free(v);
        free(sql);
    }
    PQfinish(conn);
}

static char *migrations_snapshot(const char *dbname)
{
    PGconn *conn = connect_db(dbname);
    char *v = scalar(conn, "SELECT count(*) || ':' || string_agg(version || '@' || applied_at::text, ',' "
                           "ORDER BY version) FROM schema_migrations");
    PQfinish(conn);
    return v;
}

static int run_migrations(const char *auth_db, const char *logs_db)
{
    struct ldg_pg_cfg a, l;
    load_pg(&a, auth_db, "");
    load_pg(&l, logs_db, "");
    char auth_dir[1024], logs_dir[1024];
    snprintf(auth_dir, sizeof auth_dir, "%s/auth", opt.schema_dir);
    snprintf(logs_dir, sizeof logs_dir, "%s/logs", opt.schema_dir);
    int rc = ldg_migrate_run(&a, opt.password, auth_dir, "auth");
    if (rc == 0)
        rc = ldg_migrate_run(&l, opt.password, logs_dir, "logs");
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &a);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &l);
    return rc;
}

static int sc_migrate_once(void)
{
    char auth_db[128], logs_db[128];
    snprintf(auth_db, sizeof auth_db, "%s_auth", opt.prefix);
    snprintf(logs_db, sizeof logs_db, "%s_logs", opt.prefix);
    int rc = run_migrations(auth_db, logs_db);
    CHECK(rc == 0, "rc=%d", rc);
    say("MIGRATE_ONCE ok");
    finish();
    return 0;
}

static int sc_migrate(void)
{
    char auth_db[128], logs_db[128];
    snprintf(auth_db, sizeof auth_db, "%s_auth", opt.prefix);
    snprintf(logs_db, sizeof logs_db, "%s_logs", opt.prefix);
    CHECK(run_migrations(auth_db, logs_db) == 0);
    char *a1 = migrations_snapshot(auth_db), *l1 = migrations_snapshot(logs_db);
    say("FIRST_RUN ok auth=%s", a1);
    CHECK(run_migrations(auth_db, logs_db) == 0);
    char *a2 = migrations_snapshot(auth_db), *l2 = migrations_snapshot(logs_db);
    CHECK(strcmp(a1, a2) == 0 && strcmp(l1, l2) == 0, "second run changed schema_migrations");
    /* "<count>:0001_init@...,...": the first migration is 0001_init in both databases. */
    CHECK(strstr(a1, ":0001_init@") && strstr(l1, ":0001_init@") && strtol(a1, NULL, 10) >= 2 &&
              strtol(l1, NULL, 10) >= 1,
          "auth=%s logs=%s", a1, l1);
    say("SECOND_RUN_NOOP ok");
    free(a1), free(a2), free(l1), free(l2);

    static const char *const auth_tables[] = {"accounts",        "projects", "api_keys",       "daily_usage",
                                              "user_dashboards", "sessions", "refresh_tokens", NULL};
    static const char *const logs_tables[] = {"logs",         "error_groups", "aggregated_metrics",
                                              "logs_2025_01", "logs_2026_01", NULL};
    check_tables(auth_db, auth_tables);
    check_tables(logs_db, logs_tables);
    PGconn *conn = connect_db(logs_db);
    char *v = scalar(conn, "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'logs'::regclass");
    CHECK(strcmp(v, "1") == 0, "logs is not partitioned");
    free(v);
    v = scalar(conn, "SELECT to_regclass(logs_ensure_partition(now())) IS NOT NULL");
    CHECK(strcmp(v, "t") == 0, "no partition for the current month");
    free(v);
    v = scalar(
        conn, "SELECT count(*) FROM pg_indexes WHERE tablename = 'logs' "
              "AND (indexdef ILIKE '%USING gin%' OR indexdef ILIKE '%trgm%' OR indexdef ILIKE '%tsvector%')");
    CHECK(strcmp(v, "0") == 0, "search index on logs");
    free(v);
    v = scalar(
        conn,
        "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'logs'");
    /* 0009 dropped logs_queue_id_key: stored_entries carries exactly-once now. */
    CHECK(strcmp(v, "idx_logs_fingerprint,idx_logs_project_timestamp,idx_logs_timestamp,logs_pkey") == 0,
          "logs indexes: %s", v);
    free(v);
    PGresult *r = PQexec(conn, "INSERT INTO logs (project_id, timestamp, level, log_type) "
                               "VALUES (1, now(), 'info', 'logger')");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(conn,
               "INSERT INTO logs (project_id, timestamp, level, log_type) VALUES (1, now(), 'nope', 'x')");
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR &&
          strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514") == 0);
    PQclear(r);
    PQfinish(conn);
    say("TABLES ok");

    /* A missing directory is an error, not a silent no-op. */
    struct ldg_pg_cfg bad;
    load_pg(&bad, logs_db, "");
    CHECK(ldg_migrate_run(&bad, opt.password, "/nonexistent/schema", "bad") == -ENOENT);
    free_cfg("pg_logs", ldg_pg_logs_cfg_keys, &bad);
    say("MISSING_DIR ok");
    finish();
    return 0;
}

/* ---- main --------------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(void);
} scenarios[] = {
    {"redis-basic", sc_redis_basic},
    {"redis-auth-fail", sc_redis_auth_fail},
    {"redis-timeout", sc_redis_timeout},
    {"redis-sub-timeout", sc_redis_sub_timeout},
    {"redis-reconnect", sc_redis_reconnect},
    {"redis-sub", sc_redis_sub},
    {"redis-down", sc_redis_down},
    {"pg-query", sc_pg_query},
    {"pg-pipeline", sc_pg_pipeline},
    {"pg-waiters-bound", sc_pg_waiters_bound},
    {"pg-restart-mid-query", sc_pg_restart_mid_query},
    {"pg-deadline", sc_pg_deadline},
    {"pg-copy", sc_pg_copy},
    {"pg-copy-restart", sc_pg_copy_restart},
    {"pg-down", sc_pg_down},
    {"migrate", sc_migrate},
    {"migrate-once", sc_migrate_once},
};

static void usage(void)
{
    fprintf(stderr,
            "usage: dbcheck SCENARIO [--host H] [--port P] [--user U] [--dbname D] [--password-file F]\n"
            "                        [--schema-dir DIR] [--prefix NAME]\nscenarios:");
    for (size_t i = 0; i < LDG_ARRAY_SIZE(scenarios); i++)
        fprintf(stderr, " %s", scenarios[i].name);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},          {"port", required_argument, NULL, 'p'},
        {"user", required_argument, NULL, 'u'},          {"dbname", required_argument, NULL, 'd'},
        {"password-file", required_argument, NULL, 'w'}, {"schema-dir", required_argument, NULL, 's'},
        {"prefix", required_argument, NULL, 'x'},        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *name = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'u':
            opt.user = optarg;
            break;
        case 'd':
            opt.dbname = optarg;
            break;
        case 'w': {
            struct ldg_cfg_err err;
            opt.password = ldg_cfg_read_secret(optarg, &err);
            if (!opt.password) {
                fprintf(stderr, "dbcheck: %s\n", err.msg);
                return 2;
            }
            break;
        }
        case 's':
            opt.schema_dir = optarg;
            break;
        case 'x':
            opt.prefix = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (getenv("LDG_DBCHECK_DEBUG"))
        ldg_log_configure(LDG_LOG_DEBUG, LDG_LOG_LOGFMT);
    for (size_t i = 0; i < LDG_ARRAY_SIZE(scenarios); i++) {
        if (strcmp(scenarios[i].name, name) != 0)
            continue;
        CHECK(uv_loop_init(&loop) == 0);
        uv_timer_init(&loop, &tick);
        uv_timer_start(&tick, on_tick, 5, 5);
        say("SCENARIO %s", name);
        int rc = scenarios[i].fn();
        free(opt.password);
        if (rc == 0)
            say("PASS %s", name);
        return rc;
    }
    usage();
    return 2;
}
