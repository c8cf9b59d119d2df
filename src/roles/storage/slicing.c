/*
 * slicing.c: leaves that close by size as well as by clock (see storage.h, docs/query.md).
 *
 * Worker 0 of every storage process runs a timer every slice_interval_ms; a tick takes the Redis
 * lock `ledger:storage:slicing` (SET NX PX slice_interval_ms), so one process per interval calls
 * logs_cut_open then logs_slice_ahead (schema/logs/0010): the open leaf is closed (ends at the next
 * second, a new leaf takes the rest of its range) once it holds partition_max_rows, and from the
 * current rate the hour after the open leaf is cut into slices of about partition_max_rows each. Each call is
 * one idempotent statement, run on every logs shard in turn; a failure (e.g. the month locked by a long search past the statement's
 * lock_timeout) is logged and the next tick tries again.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "roles/storage/storage.h"

#define CTX "role=storage job=slicing"
#define LOCK_KEY "ledger:storage:slicing"
#define MIN_SLICE_S "60" /* shortest slice: a week stays at most 10,080 leaves to plan */
#define HORIZON_S "3600" /* leaves cut at most this far past the open leaf */
#define MIN_LEFT_S "120" /* the open leaf is closed by size only with more than this still ahead */

struct ldg__storage_slicing {
    struct ldg_worker *w;
    uv_timer_t timer;
    bool stopping, closed;
    bool running;     /* a command is due */
    unsigned pending; /* commands sent with this struct as their data, not answered yet */
    bool orphan;      /* freed while pending: the last answer frees it */
    int shard;        /* the logs shard being cut */
};

static void slice_shard(struct ldg__storage_slicing *s);

static bool answered(struct ldg__storage_slicing *s)
{
    s->pending--;
    if (!s->orphan)
        return true;
    if (s->pending == 0)
        free(s);
    return false;
}

static void on_sliced(PGresult *res, void *ud)
{
    struct ldg__storage_slicing *s = ud;
    if (!answered(s))
        return;
    if (s->stopping) {
        s->running = false;
        return;
    }
    if (!res) {
        const struct ldg_pg_error *f = ldg_pg_failure();
        ldg_log_warn(CTX, "cutting leaves ahead failed: shard=%d %s%s%s", s->shard, f->sqlstate,
                     f->sqlstate[0] ? " " : "", f->message ? f->message : "failed");
    } else {
        const char *made = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "0";
        if (made[0] && !(made[0] == '0' && !made[1]))
            ldg_log_info(CTX,
                         "made %s leaves of about %" PRId64 " rows (open leaf closed by size, slices ahead) "
                         "shard=%d",
                         made, ldg__storage.cfg->partition_max_rows, s->shard);
    }
    if (++s->shard < ldg_pgroute_nshards(s->w)) { /* each shard is tried even after a failure */
        slice_shard(s);
        return;
    }
    s->running = false;
}

static void on_lock(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_slicing *s = ud;
    if (!answered(s))
        return;
    if (s->stopping || !reply || reply->type != REDIS_REPLY_STATUS) {
        s->running = false; /* another process has this interval, or Redis is unavailable */
        return;
    }
    s->shard = 0;
    slice_shard(s);
}

/* logs_cut_open + logs_slice_ahead on shard s->shard. */
static void slice_shard(struct ldg__storage_slicing *s)
{
    char rows[24];
    snprintf(rows, sizeof rows, "%" PRId64, ldg__storage.cfg->partition_max_rows);
    const char *params[] = {rows};
    s->pending++;
    struct ldg_pgpool *pool = ldg_pgroute_primary(s->w, s->shard);
    if (!pool || ldg_pgpool_query(pool,
                         "SELECT logs_cut_open($1::bigint, make_interval(secs => " MIN_LEFT_S "))"
                         " + logs_slice_ahead($1::bigint, make_interval(secs => " MIN_SLICE_S
                         "), make_interval(secs => " HORIZON_S "))",
                         1, params, on_sliced, s) < 0) {
        s->pending--;
        s->running = false;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct ldg__storage_slicing *s = t->data;
    if (s->stopping || s->running || !ldg_redis_connected(s->w->redis))
        return;
    char px[24], token[96];
    snprintf(px, sizeof px, "%" PRId64, ldg__storage.cfg->slice_interval_ms);
    snprintf(token, sizeof token, "%s:%ld", ldg__storage.host, (long)getpid());
    const char *argv[] = {"SET", LOCK_KEY, token, "NX", "PX", px};
    s->running = true;
    s->pending++;
    if (ldg_redis_commandargv(s->w->redis, on_lock, s, 6, argv, NULL) < 0) {
        s->pending--;
        s->running = false;
    }
}

static void on_closed(uv_handle_t *h)
{
    struct ldg__storage_slicing *s = h->data;
    s->closed = true;
}

struct ldg__storage_slicing *ldg__storage_slicing_new(struct ldg_worker *w)
{
    struct ldg__storage_slicing *s = ldg_calloc(1, sizeof *s);
    s->w = w;
    uv_timer_init(&w->loop, &s->timer);
    s->timer.data = s;
    if (w->id == 0 && ldg__storage.cfg->partition_max_rows > 0)
        uv_timer_start(&s->timer, on_tick, 1000, (uint64_t)ldg__storage.cfg->slice_interval_ms);
    return s;
}

void ldg__storage_slicing_stop(struct ldg__storage_slicing *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

bool ldg__storage_slicing_closed(const struct ldg__storage_slicing *s)
{
    return s->closed;
}

void ldg__storage_slicing_free(struct ldg__storage_slicing *s)
{
    if (s->pending) {
        s->orphan = true;
        return;
    }
    free(s);
}
