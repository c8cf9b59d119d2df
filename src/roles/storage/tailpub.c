/*
 * tailpub.c: see tailpub.h. A committed range goes, per project among its STORED rows:
 *
 *   viewers?  cached answer younger than tail_viewers_refresh_ms, else ZCOUNT of unexpired members
 *   read back SELECT <LogEntryResponse columns> of exactly those rows (project, timestamp and queue
 *             id: the (project_id, timestamp) btree finds them, as for the duplicate check)
 *   publish   PUBLISH tail:{p<id>} with messages of at most tail_publish_max_bytes each; a log
 *             larger than that is left out and counted in the next message's header.
 *
 * The read back runs after COMMIT on a pooled connection, outside the consumer's transaction, so
 * the acknowledgement of the batch never waits for the tail, and what a tail shows is what a
 * query would find.
 */
#include "roles/storage/tailpub.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/logrow.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "notify/tailmsg.h"
#include "roles/storage/consumer.h"
#include "roles/storage/storage.h"

#define CACHE_SLOTS 256  /* direct-mapped by project id */
#define MAX_JOBS 64      /* jobs in flight per consumer; more are counted as dropped */
#define MAX_PROJECTS 64  /* distinct projects handled per committed range; more are rare */

static const char readback_sql[] =
    "SELECT " LDG_LOGROW_COLS " FROM unnest($1::bigint[], $2::text[]) AS c(t, q) "
    "JOIN logs l ON l.project_id = $3::bigint "
    "AND l.\"timestamp\" = timestamptz 'epoch' + c.t * interval '1 microsecond' "
    "AND l.queue_id = c.q ORDER BY l.id";

struct slot {
    int64_t pid; /* 0: empty */
    uint64_t checked_ms;
    bool viewers;
};

struct ldg__storage_tail {
    unsigned refs;
    unsigned jobs;
    struct slot cache[CACHE_SLOTS];
};

struct job {
    struct ldg__storage_tail *t; /* counted reference */
    struct ldg_worker *w;        /* borrowed: the worker outlives its pools' callbacks */
    int64_t pid;
    size_t n;                    /* rows */
    char *ts, *ids, *pidtext;    /* owned: the read back's parameters */
};

struct ldg__storage_tail *ldg__storage_tail_new(void)
{
    struct ldg__storage_tail *t = ldg_calloc(1, sizeof *t);
    t->refs = 1;
    return t;
}

void ldg__storage_tail_release(struct ldg__storage_tail *t)
{
    if (t && --t->refs == 0)
        free(t);
}

static const struct ldg_storage_cfg *cfg(void)
{
    return ldg__storage.cfg;
}

static struct slot *slot_of(struct ldg__storage_tail *t, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
    return &t->cache[(h >> 56) & (CACHE_SLOTS - 1)];
}

static void job_free(struct job *j)
{
    j->t->jobs--;
    ldg__storage_tail_release(j->t);
    free(j->ts);
    free(j->ids);
    free(j->pidtext);
    free(j);
}

static void on_published(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r, (void)ud;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        ldg_log_warn("role=storage", "tail publish failed: %s", reply->str);
}

static void publish(struct ldg_worker *w, int64_t pid, const struct ldg_buf *msg)
{
    struct ldg_redis *r = ldg_worker_redis_for(w, pid); /* the project's channel is on its shard */
    if (!r)
        return; /* the worker is closing its clients (a read back cancelled at exit) */
    char ch[LDG_TAILMSG_NAME_MAX];
    ldg_tailmsg_channel(ch, sizeof ch, pid);
    const char *argv[] = {"PUBLISH", ch, ldg_buf_head(msg)};
    size_t argl[] = {7, strlen(ch), ldg_buf_size(msg)};
    if (ldg_redis_commandargv(r, on_published, NULL, 3, argv, argl) < 0)
        ldg_log_debug("role=storage", "tail publish not sent (Redis unavailable or busy)");
}

/* Logs that will not be published are still counted: the tails report them as dropped. */
static void publish_dropped(struct ldg_worker *w, int64_t pid, uint64_t n)
{
    struct ldg_buf msg;
    ldg_buf_init(&msg);
    ldg_tailmsg_begin(&msg, n);
    publish(w, pid, &msg);
    ldg_buf_free(&msg);
}

static void on_readback(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!res) {
        const struct ldg_pg_error *f = ldg_pg_failure();
        if (f->code != -ECANCELED)
            ldg_log_warn("role=storage", "tail read back of %zu logs failed: %s", j->n,
                         f->message ? f->message : strerror(-f->code));
        publish_dropped(j->w, j->pid, j->n);
        job_free(j);
        return;
    }
    size_t max = (size_t)cfg()->tail_publish_max_bytes;
    uint64_t dropped = j->n > (size_t)PQntuples(res) ? j->n - (size_t)PQntuples(res) : 0;
    struct ldg_buf msg, one;
    ldg_buf_init(&msg);
    ldg_buf_init(&one);
    size_t in_msg = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        ldg_buf_reset(&one);
        struct ldg_json_writer jw;
        ldg_json_writer_init(&jw, &one);
        ldg_logrow_write(&jw, res, i, 0);
        if (ldg_buf_size(&one) + 24 > max) {
            dropped++; /* one log larger than a message */
            continue;
        }
        if (in_msg && ldg_buf_size(&msg) + 1 + ldg_buf_size(&one) > max) {
            publish(j->w, j->pid, &msg);
            in_msg = 0;
        }
        if (!in_msg) {
            ldg_buf_reset(&msg);
            ldg_tailmsg_begin(&msg, dropped);
            dropped = 0;
        }
        ldg_tailmsg_add(&msg, ldg_buf_head(&one), ldg_buf_size(&one));
        in_msg++;
    }
    if (in_msg || dropped) {
        if (!in_msg) {
            ldg_buf_reset(&msg);
            ldg_tailmsg_begin(&msg, dropped);
        }
        publish(j->w, j->pid, &msg);
    }
    ldg_buf_free(&msg);
    ldg_buf_free(&one);
    job_free(j);
}

static void read_back(struct job *j)
{
    const char *params[] = {j->ts, j->ids, j->pidtext};
    struct ldg_pgpool *pool = ldg_pgroute_project(j->w, j->pid);
    if (!pool) {
        job_free(j);
        return;
    }
    if (ldg_pgpool_query_prepared(pool, "ldg_storage_tail", readback_sql, 3, params, on_readback, j) < 0) {
        ldg_log_debug("role=storage", "tail read back not sent (pool busy or closed)");
        publish_dropped(j->w, j->pid, j->n);
        job_free(j);
    }
}

static void on_viewers(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r;
    struct job *j = ud;
    struct slot *s = slot_of(j->t, j->pid);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        job_free(j); /* unknown: asked again next time */
        return;
    }
    s->pid = j->pid;
    s->checked_ms = ldg_wall_ms();
    s->viewers = reply->integer > 0;
    if (s->viewers)
        read_back(j);
    else
        job_free(j);
}

static void start_job(struct ldg__storage_consumer *c, struct ldg__storage_tail *t, int64_t pid, size_t lo,
                      size_t hi)
{
    struct slot *s = slot_of(t, pid);
    uint64_t now = ldg_wall_ms();
    bool fresh = s->pid == pid && now - s->checked_ms < (uint64_t)cfg()->tail_viewers_refresh_ms;
    if (fresh && !s->viewers)
        return;
    struct ldg_buf ts, ids;
    ldg_buf_init(&ts);
    ldg_buf_init(&ids);
    ldg_buf_put(&ts, "{", 1);
    ldg_buf_put(&ids, "{", 1);
    size_t n = 0;
    for (size_t i = lo; i < hi; i++) {
        const struct ldg_batch_entry *e = &c->batch.e[i];
        if (e->state != LDG_BATCH_STORED || e->project_id != pid)
            continue;
        const char *sep = n++ ? "," : "";
        ldg_buf_printf(&ts, "%s%" PRId64, sep, e->ts_us);
        ldg_buf_printf(&ids, "%s%s", sep, e->id); /* digits, '-' and '/': no quoting needed */
    }
    ldg_buf_put(&ts, "}", 2);
    ldg_buf_put(&ids, "}", 2);
    if (t->jobs >= MAX_JOBS) {
        ldg_log_debug(c->ctx, "tail: too many read backs in flight, project=%" PRId64 " logs=%zu dropped", pid, n);
        ldg_buf_free(&ts);
        ldg_buf_free(&ids);
        publish_dropped(c->w, pid, n);
        return;
    }
    struct job *j = ldg_calloc(1, sizeof *j);
    j->t = t;
    t->refs++;
    t->jobs++;
    j->w = c->w;
    j->pid = pid;
    j->n = n;
    j->ts = ldg_strdup(ldg_buf_head(&ts));
    j->ids = ldg_strdup(ldg_buf_head(&ids));
    ldg_buf_free(&ts);
    ldg_buf_free(&ids);
    char p[24];
    snprintf(p, sizeof p, "%" PRId64, pid);
    j->pidtext = ldg_strdup(p);
    if (fresh) {
        read_back(j);
        return;
    }
    char key[LDG_TAILMSG_NAME_MAX], min[24];
    ldg_tailmsg_viewers_key(key, sizeof key, pid);
    snprintf(min, sizeof min, "%" PRIu64, now);
    const char *argv[] = {"ZCOUNT", key, min, "+inf"};
    struct ldg_redis *r = ldg_worker_redis_for(c->w, pid);
    if (!r || ldg_redis_commandargv(r, on_viewers, j, 4, argv, NULL) < 0)
        job_free(j);
}

void ldg__storage_tail_committed(struct ldg__storage_consumer *c, size_t lo, size_t hi)
{
    int64_t seen[MAX_PROJECTS];
    size_t nseen = 0;
    for (size_t i = lo; i < hi && nseen < MAX_PROJECTS; i++) {
        const struct ldg_batch_entry *e = &c->batch.e[i];
        if (e->state != LDG_BATCH_STORED)
            continue;
        bool known = false;
        for (size_t k = 0; k < nseen && !known; k++)
            known = seen[k] == e->project_id;
        if (known)
            continue;
        seen[nseen++] = e->project_id;
        start_job(c, c->tail, e->project_id, lo, hi);
    }
}
